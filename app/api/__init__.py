"""HTTP API (FastAPI): imported only by entry points."""
