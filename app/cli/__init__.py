"""The `coldchain` command line (typer): every command of every role."""
