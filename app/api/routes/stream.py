"""Server-Sent Events: alert transitions and shipment changes, live, scoped to what a key may see."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from sqlalchemy.exc import SQLAlchemyError
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api.deps import CurrentPrincipal, now_of, session_policy, why_no_longer_valid
from app.core.models import utcnow
from app.core.security import Principal
from app.core.settings import Settings
from app.dashboard.hub import RESET, Hub

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"])
HEARTBEAT_S = 15
RETRY_MS = 3000
SEP = "\n"  # the page splits events on a blank line: LF only (the library's default is CRLF)


def hub_of(request: Request) -> Hub:
    """The process's hub (one LISTEN connection shared by every stream of this app)."""
    hub: Hub | None = getattr(request.app.state, "stream_hub", None)
    if hub is None:
        hub = Hub(request.app.state.settings.database_url or "")
        request.app.state.stream_hub = hub
    return hub


def visible(message: dict[str, Any], principal: Principal, shipment_id: str | None) -> bool:
    if shipment_id is not None and message.get("shipment_id") != shipment_id:
        return False
    if principal.sees_all_sites:
        return True
    return principal.own_site is not None and str(principal.own_site) in (message.get("sites") or [])


def sse(event: str, data: dict[str, Any], event_id: int | None = None) -> ServerSentEvent:
    return ServerSentEvent(orjson.dumps(data).decode(), event=event,
                           id=None if event_id is None else str(event_id), sep=SEP)


Recheck = Callable[[], Awaitable[str | None]]


def _expiry_deadline(principal: Principal) -> float:
    """The key's expiry on the monotonic clock (inf when it never expires)."""
    if principal.expires_at is None:
        return math.inf
    return time.monotonic() + (principal.expires_at - utcnow()).total_seconds()


async def _events(
    hub: Hub, principal: Principal, shipment_id: str | None, recheck: Recheck, recheck_s: float,
) -> AsyncIterator[ServerSentEvent]:
    """The stream's events; its key is asked again every `recheck_s` (and at its expiry): once it
    is revoked or expired the client gets `unauthorized` and the stream ends. Keep-alive comments
    and the end of the stream at server shutdown are EventSourceResponse's."""
    expires = _expiry_deadline(principal)
    async with hub.subscribe() as sub:
        yield ServerSentEvent(retry=RETRY_MS, sep=SEP)
        # If the listener cannot connect yet it keeps retrying; the client gets `reset` then.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.listening.wait(), timeout=5.0)
        yield sse("ready", {"listening": hub.listening.is_set()})
        next_check = time.monotonic() + recheck_s
        while True:
            now = time.monotonic()
            if now >= expires or now >= next_check:
                reason = _expired(principal) if now >= expires else await _ask(recheck)
                if reason is not None:
                    yield sse("unauthorized", {"reason": reason})
                    return
                next_check = time.monotonic() + recheck_s
            if sub.overflowed:
                yield sse("reset", {"reason": "the client fell behind"})
                return
            wait = min(next_check, expires) - time.monotonic()
            try:
                event_id, message = await asyncio.wait_for(sub.queue.get(), max(wait, 0.0))
            except TimeoutError:
                continue
            if message is RESET:
                yield sse("reset", {"reason": "live updates were interrupted"}, event_id)
            elif visible(message, principal, shipment_id):
                payload = {k: v for k, v in message.items() if k != "sites"}
                yield sse(str(message.get("type", "message")), payload, event_id)


def _expired(principal: Principal) -> str:
    return "the session expired" if principal.session_id is not None else "the API key expired"


async def _ask(recheck: Recheck) -> str | None:
    """The re-check; a database that cannot answer closes the stream too (fails closed)."""
    try:
        return await recheck()
    except (OSError, SQLAlchemyError) as exc:
        log.warning("stream: cannot re-check the key (%s); closing the stream", exc)
        return "the API key could not be checked again"


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": (
        "Events `alert` (a transition: opened, updated, escalated, acknowledged, resolved), "
        "`shipment` (created, status or maintained state changed), `reset` (refetch: updates "
        "were missed) and `ready`; a comment line every 15 s keeps the connection alive. The key "
        "is checked again at least every 30 s and at its expiry: a revoked or expired key gets "
        "`unauthorized` and the stream ends."
    )}},
)
async def stream(
    request: Request, principal: CurrentPrincipal,
    shipment_id: Annotated[uuid.UUID | None, Query(description="only this shipment")] = None,
) -> EventSourceResponse:
    hub = hub_of(request)
    sessions = request.app.state.sessionmaker

    async def recheck() -> str | None:
        async with sessions() as session:
            return await why_no_longer_valid(session, principal, now=now_of(request),
                                             policy=session_policy(request.app.state.settings))

    settings: Settings = request.app.state.settings
    return EventSourceResponse(
        _events(hub, principal, str(shipment_id) if shipment_id else None, recheck,
                settings.stream_recheck_s),
        ping=HEARTBEAT_S, sep=SEP,
    )
