"""Server-Sent Events: alert transitions and shipment changes, live, scoped to what a key may see."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.api.deps import CurrentPrincipal
from app.dashboard.hub import RESET, Hub
from app.db import plain_url
from app.security import Principal

router = APIRouter(tags=["live"])
HEARTBEAT_S = 15.0
RETRY_MS = 3000


def hub_of(request: Request) -> Hub:
    """The process's hub (one LISTEN connection shared by every stream of this app)."""
    hub: Hub | None = getattr(request.app.state, "stream_hub", None)
    if hub is None:
        hub = Hub(plain_url(request.app.state.settings.database_url or ""))
        request.app.state.stream_hub = hub
    return hub


def visible(message: dict[str, Any], principal: Principal, shipment_id: str | None) -> bool:
    if shipment_id is not None and message.get("shipment_id") != shipment_id:
        return False
    if principal.sees_all_sites:
        return True
    return principal.own_site is not None and str(principal.own_site) in (message.get("sites") or [])


def sse(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


async def _events(
    hub: Hub, principal: Principal, shipment_id: str | None, heartbeat_s: float
) -> AsyncIterator[bytes]:
    async with hub.subscribe() as sub:
        yield f"retry: {RETRY_MS}\n\n".encode()
        # If the listener cannot connect yet it keeps retrying; the client gets `reset` then.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.listening.wait(), timeout=5.0)
        yield sse("ready", {"listening": hub.listening.is_set()})
        while True:
            if sub.overflowed:
                yield sse("reset", {"reason": "the client fell behind"})
                return
            try:
                event_id, message = await asyncio.wait_for(sub.queue.get(), heartbeat_s)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if message is RESET:
                yield sse("reset", {"reason": "live updates were interrupted"}, event_id)
                continue
            if not visible(message, principal, shipment_id):
                continue
            payload = {k: v for k, v in message.items() if k != "sites"}
            yield sse(str(message.get("type", "message")), payload, event_id)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": (
        "Events `alert` (a transition: opened, updated, escalated, acknowledged, resolved), "
        "`shipment` (created, status or maintained state changed), `reset` (refetch: updates "
        "were missed) and `ready`; a comment line every 15 s keeps the connection alive."
    )}},
)
async def stream(
    request: Request, principal: CurrentPrincipal,
    shipment_id: Annotated[uuid.UUID | None, Query(description="only this shipment")] = None,
) -> StreamingResponse:
    hub = hub_of(request)
    return StreamingResponse(
        _events(hub, principal, str(shipment_id) if shipment_id else None, HEARTBEAT_S),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
