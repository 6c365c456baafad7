"""Liveness, readiness (database, and broker where used) and Prometheus metrics; unauthenticated."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.core.broker import BrokerAddress
from app.core.db_roles import check_role

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _broker_reachable(url: str | None) -> bool:
    if not url:
        return False
    address = BrokerAddress.parse(url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address.host, address.port), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers, and the broker too where this process ingests
    (`coldchain up`; an API-only process never talks to the broker); `warnings` name what is
    unsafe but running (a service role that could rewrite the audit trail)."""
    checks: dict[str, str] = {}
    warnings: list[str] = []
    try:
        async with request.app.state.engine.connect() as conn:
            warnings = await asyncio.wait_for(check_role(conn), 2)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported as such
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if request.app.state.uses_broker:
        broker_ok = await _broker_reachable(request.app.state.settings.mqtt_url)
        checks["broker"] = "ok" if broker_ok else "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks, "warnings": warnings},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", include_in_schema=False)  # Prometheus text, for scrapers, not clients
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
