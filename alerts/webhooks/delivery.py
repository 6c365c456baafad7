"""Webhook delivery worker (the only httpx user): claim due rows, sign, POST, record, retry later."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpcore
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.webhooks import retry, signing, store
from alerts.webhooks.metrics import (
    ATTEMPT_DURATION,
    ATTEMPTS,
    CYCLE_ERRORS,
    DELIVERIES,
    ENDPOINTS_DISABLED,
    OLDEST_PENDING_AGE,
    QUEUE_DEPTH,
)
from alerts.webhooks.outbox import CHANNEL
from alerts.webhooks.transport import CheckedBackend, CheckedTransport, Resolver, peer_address
from alerts.webhooks.urls import UnsafeUrl, address_problem, endpoint_key, resolve
from app.core.db import make_engine, make_sessionmaker
from app.core.listen import Listener
from app.core.models import utcnow
from app.core.settings import Settings
from app.core.waiting import wait_any

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
SessionFactory = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    timeout_s: float = 10.0  # hard cap on one attempt (connect, send, answer)
    connect_timeout_s: float = 5.0
    concurrency: int = 32  # requests in flight in this process
    per_endpoint: int = 4  # requests in flight per scheme://host:port
    rounds: int = 8  # rows claimed ahead per request slot (amortises the claim transaction)
    allow_private: bool = False
    loops: int = 4  # concurrent claim cycles: a slow endpoint never holds up the others' bookkeeping
    poll_s: float = 1.0  # fallback when no NOTIFY arrives (and for rows whose retry time came)
    stats_every_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            timeout_s=settings.webhook_timeout_s,
            connect_timeout_s=min(5.0, settings.webhook_timeout_s),
            concurrency=settings.webhook_concurrency,
            per_endpoint=settings.webhook_endpoint_concurrency,
            allow_private=settings.webhook_allow_private,
        )

    @property
    def lease(self) -> timedelta:
        return retry.lease_for(timeout_s=self.timeout_s, rounds=self.rounds)


class Limits:
    """This process's bounds: requests in flight (overall, per endpoint) and rows claimed ahead."""

    def __init__(self, config: DeliveryConfig) -> None:
        self.config = config
        self._total = asyncio.Semaphore(config.concurrency)
        self._endpoints: dict[str, asyncio.Semaphore] = {}
        self._claimed: Counter[str] = Counter()
        self._claimed_total = 0
        self._endpoint_of: dict[uuid.UUID, str] = {}  # subscription → endpoint, as last seen
        self.freed = asyncio.Event()  # set when claimed rows are done: room for another claim

    def _full(self, key: str) -> bool:
        return self._claimed[key] >= self.config.per_endpoint * self.config.rounds

    @property
    def has_room(self) -> bool:
        return self._claimed_total < self.config.concurrency * self.config.rounds

    def full_subscriptions(self) -> list[uuid.UUID]:
        """Subscriptions whose endpoint has no room: the claim leaves their rows alone."""
        return [sub for sub, key in self._endpoint_of.items() if self._full(key)]

    def try_reserve(self, subscription_id: uuid.UUID, url: str) -> bool:
        key = endpoint_key(url)
        self._endpoint_of[subscription_id] = key
        if self._full(key) or not self.has_room:
            return False
        self._claimed[key] += 1
        self._claimed_total += 1
        return True

    def release(self, url: str) -> None:
        self._claimed[endpoint_key(url)] -= 1
        self._claimed_total -= 1
        self.freed.set()

    @property
    def per_claim(self) -> int:
        """Rows one cycle leases per subscription: half the room, so two cycles can overlap (one
        sends while the other records)."""
        return max(1, self.config.per_endpoint * self.config.rounds // 2)

    @contextlib.asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        key = endpoint_key(url)
        endpoint = self._endpoints.setdefault(key, asyncio.Semaphore(self.config.per_endpoint))
        async with endpoint, self._total:  # endpoint first: a queued row never holds a global slot
            yield


def make_client(
    config: DeliveryConfig, *, resolver: Resolver = resolve,
    connector: httpcore.AsyncNetworkBackend | None = None, verify: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """The one shared client: timeouts, no redirects (a 3xx is a failure), no proxies from the env,
    and every connection to an address checked in the same lookup (see alerts/webhooks/transport.py)."""
    backend = CheckedBackend(
        allow_private=config.allow_private, resolver=resolver, connector=connector
    )
    limits = httpx.Limits(
        max_connections=config.concurrency, max_keepalive_connections=config.concurrency
    )
    return httpx.AsyncClient(
        transport=CheckedTransport(backend, limits=limits, verify=verify),
        timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": "coldchain-webhooks/1"},
    )


async def _http_error(response: httpx.Response, limit: int = 200) -> str:
    """What the delivery log says of a non-2xx answer: the status, and the start of the body only
    when it came from a public address. The log is shown to the site key that chose the URL, so a
    private target (allowed by COLDCHAIN_WEBHOOK_ALLOW_PRIVATE) never has its answer echoed."""
    peer = peer_address(response)
    if peer is None or address_problem(peer) is not None:
        return f"HTTP {response.status_code}"
    data = bytearray()
    async with contextlib.aclosing(response.aiter_bytes()) as chunks:  # type: ignore[type-var]
        async for chunk in chunks:
            data += chunk
            if len(data) >= limit:
                break
    snippet = bytes(data[:limit]).decode("utf-8", "replace").strip()
    return f"HTTP {response.status_code}: {snippet}".rstrip(": ")


async def _attempt(
    client: httpx.AsyncClient, claim: store.Claim, clock: Clock, config: DeliveryConfig,
    limits: Limits,
) -> store.Outcome:
    status: int | None = None
    error: str | None = None
    async with limits.slot(claim.url):
        attempted_at, started = clock(), time.perf_counter()
        try:
            async with asyncio.timeout(config.timeout_s):
                headers = signing.webhook_headers(
                    claim.secrets, claim.webhook_id, signing.unix_timestamp(attempted_at), claim.body
                )
                async with client.stream(
                    "POST", claim.url, content=claim.body, headers=headers
                ) as response:
                    status = response.status_code
                    if not retry.is_success(status):
                        error = await _http_error(response)
            kind = "success" if retry.is_success(status) else "http_error"
        except UnsafeUrl as exc:
            kind, error = "refused", str(exc)
        except (TimeoutError, httpx.TimeoutException):
            kind, error = "timeout", f"no complete answer within {config.timeout_s:g} s"
        except httpx.TransportError as exc:
            kind, error = "connection_error", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # one bad delivery never stops the worker: logged, counted, retried
            log.exception("webhook delivery %s failed unexpectedly", claim.id)
            kind, error = "error", f"{type(exc).__name__}: {exc}"
        duration = time.perf_counter() - started
    ATTEMPTS.labels(kind).inc()
    ATTEMPT_DURATION.observe(duration)
    return store.Outcome(
        claim, attempted_at, attempted_at + timedelta(seconds=duration), status, error, duration,
        kind,
    )


async def _deliver_group(
    session_factory: SessionFactory, client: httpx.AsyncClient, claims: list[store.Claim],
    clock: Clock, config: DeliveryConfig, limits: Limits, jitter: Callable[[], float],
) -> None:
    outcomes = await asyncio.gather(*(_attempt(client, c, clock, config, limits) for c in claims))
    # Two units of work: the attempts (delivery rows), then endpoint health (subscription rows).
    async with session_factory() as session, session.begin():
        finals = await store.record(session, outcomes, jitter)
    for final in finals:
        DELIVERIES.labels(final).inc()
    async with session_factory() as session, session.begin():
        disabled = await store.update_health(session, outcomes, clock())
    ENDPOINTS_DISABLED.inc(len(disabled))


async def _deliver_due(
    session_factory: SessionFactory, client: httpx.AsyncClient, now: datetime, *,
    config: DeliveryConfig | None = None, limits: Limits | None = None,
    jitter: Callable[[], float] = random.random,
) -> int:
    """One cycle: lease due rows (within this process's room), send them, record; rows attempted."""
    config = config or DeliveryConfig()
    limits = limits or Limits(config)
    reserved: list[str] = []

    def accept(subscription_id: uuid.UUID, url: str) -> bool:
        if limits.try_reserve(subscription_id, url):
            reserved.append(url)
            return True
        return False

    if not limits.has_room:
        return 0
    try:
        async with session_factory() as session, session.begin():  # the lease, committed
            claims = await store.claim(
                session, now, per_subscription=limits.per_claim, accept=accept,
                lease=config.lease, skip=limits.full_subscriptions(),
            )
        if not claims:
            return 0
        started = time.perf_counter()

        def clock() -> datetime:
            return now + timedelta(seconds=time.perf_counter() - started)

        groups: dict[str, list[store.Claim]] = defaultdict(list)
        for claim in claims:
            groups[endpoint_key(claim.url)].append(claim)
        results = await asyncio.gather(
            *(_deliver_group(session_factory, client, g, clock, config, limits, jitter)
              for g in groups.values()),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return len(claims)
    finally:
        for url in reserved:
            limits.release(url)


async def _cycle_loop(
    session_factory: SessionFactory, client: httpx.AsyncClient, now: Clock,
    config: DeliveryConfig, limits: Limits, wake: asyncio.Event, stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        wake.clear()
        limits.freed.clear()
        try:
            attempted = await _deliver_due(
                session_factory, client, now(), config=config, limits=limits
            )
        except Exception:  # e.g. the database restarting: logged, counted, tried again shortly
            log.exception("webhook delivery cycle failed")
            CYCLE_ERRORS.inc()
            attempted = 0
        if attempted == 0:  # nothing due, or no room: wait for a NOTIFY, room, or the poll
            await wait_any(stop, wake, limits.freed, within=config.poll_s)


async def _stats_loop(
    session_factory: SessionFactory, now: Clock, config: DeliveryConfig, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            async with session_factory() as session:
                depth, oldest = await store.queue_stats(session, now())
            QUEUE_DEPTH.set(depth)
            OLDEST_PENDING_AGE.set(oldest)
        except Exception:  # metrics must not stop delivery
            log.exception("webhook queue statistics failed")
            CYCLE_ERRORS.inc()
        await wait_any(stop, within=config.stats_every_s)


async def run_delivery(settings: Settings, stop: asyncio.Event, *, now: Clock = utcnow) -> None:
    """Deliver webhooks until `stop` is set; in-flight attempts finish (each capped by the timeout)."""
    config = DeliveryConfig.from_settings(settings)
    database_url = settings.database_url or ""
    engine = make_engine(database_url, pool_size=config.loops + 2)
    session_factory = make_sessionmaker(engine)
    limits = Limits(config)
    wake = asyncio.Event()
    log.info("webhook delivery started: %d in flight max, %d per endpoint, timeout %g s",
             config.concurrency, config.per_endpoint, config.timeout_s)
    try:
        # NOTIFY (sent when deliveries are committed) wakes the loops; the poll covers a gap.
        listener = Listener(database_url, CHANNEL, lambda _payload: wake.set(), on_gap=wake.set)
        async with make_client(config) as client, listener.running():
            await asyncio.gather(
                *(_cycle_loop(session_factory, client, now, config, limits, wake, stop)
                  for _ in range(config.loops)),
                _stats_loop(session_factory, now, config, stop),
            )
    finally:
        await engine.dispose()


async def post_signed(
    client: httpx.AsyncClient, url: str, secrets_: list[str], msg_id: str, at: datetime,
    body: bytes,
) -> str | None:
    """POST `body` signed like an alert webhook (Standard Webhooks); None on 2xx, else why not."""
    headers = signing.webhook_headers(secrets_, msg_id, signing.unix_timestamp(at), body)
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if retry.is_success(response.status_code) else f"HTTP {response.status_code}"
