"""Domain services: take `session` first, flush, never commit (the request or job edge does)."""
