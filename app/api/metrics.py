"""Prometheus metrics shared by the roles, defined once per process (names carry units)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from app.core.errors import Problem, RateLimited

HTTP_REQUESTS = Counter(
    "coldchain_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "coldchain_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
AUTH_FAILURES = Counter(
    "coldchain_auth_failures_total", "Requests with an unknown, revoked or expired key",
    ["outcome"],  # rejected (401) or throttled (429: too many from the client's address)
)
PEOPLE_AUTH = Counter(
    "coldchain_people_authentications_total",
    "People's passwords checked: at sign-in and when signing a decision",
    ["kind", "outcome"],  # kind: login|signature; outcome: ok, wrong, or locked (429)
)


def refused(problem: Problem) -> str:
    """PEOPLE_AUTH's outcome of a refused password: `locked` (the account answers 429) or `wrong`."""
    return "locked" if isinstance(problem, RateLimited) else "wrong"
