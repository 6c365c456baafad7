"""`python -m app.cli`: the `coldchain` command."""

from app.cli.main import main

main()
