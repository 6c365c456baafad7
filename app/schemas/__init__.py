"""Request and response shapes shared by the API, services and the CLI (no FastAPI imports)."""
