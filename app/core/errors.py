"""Domain errors carrying data; the API renders them once as RFC 9457 problem details."""

from __future__ import annotations

from typing import Any


class Problem(Exception):
    """Base of every error the API turns into `application/problem+json`."""

    status: int = 400
    title: str = "Bad request"
    type_slug: str = "bad-request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = dict(extra)
        if field is not None:
            self.extra["errors"] = [{"field": field, "message": detail}]


class NotFound(Problem):
    status, title, type_slug = 404, "Not found", "not-found"

    def __init__(self, entity: str, entity_id: object) -> None:
        super().__init__(f"{entity} {entity_id} not found", entity=entity, id=str(entity_id))


class InvalidField(Problem):
    """A semantically invalid field (the schema was fine): 422 naming the field."""

    status, title, type_slug = 422, "Invalid field", "invalid-field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class Conflict(Problem):
    status, title, type_slug = 409, "Conflict", "conflict"


class Unauthorized(Problem):
    status, title, type_slug = 401, "Unauthorized", "unauthorized"


class Forbidden(Problem):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class RateLimited(Problem):
    status, title, type_slug = 429, "Too many requests", "rate-limited"

    def __init__(self, retry_after_s: float, what: str = "rate limit exceeded") -> None:
        seconds = max(1, int(retry_after_s + 0.999))
        super().__init__(f"{what}: retry in {seconds} s", retry_after_s=seconds)
        self.headers = {"Retry-After": str(seconds)}


class PayloadTooLarge(Problem):
    status, title, type_slug = 413, "Request too large", "too-large"


class UnsupportedMediaType(Problem):
    status, title, type_slug = 415, "Unsupported media type", "unsupported-media-type"
