"""Process runtime: resolve embedded servers, run roles (api, ingest, alerts) in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import uvicorn
from prometheus_client import start_http_server

from app.core.settings import Settings

if TYPE_CHECKING:
    from app.embedded import EmbeddedBroker, EmbeddedPostgres

log = logging.getLogger(__name__)
RoleRunner = Callable[[Settings, asyncio.Event], Awaitable[None]]


class RoleUnavailable(RuntimeError):
    """A role whose package is not installed or not built yet."""


class ServersUnavailable(RuntimeError):
    """DATABASE_URL or MQTT_URL is unset and no embedded server can stand in for it."""


@dataclass
class Embedded:
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    started: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.stop()


@contextlib.contextmanager
def resolved(settings: Settings, *, broker: bool = True) -> Iterator[Settings]:
    """Settings with DATABASE_URL / MQTT_URL filled in by embedded servers where unset."""
    embedded = Embedded()
    try:
        yield _start_embedded(settings, embedded, broker=broker)
    finally:
        embedded.stop()


def _start_embedded(settings: Settings, embedded: Embedded, *, broker: bool) -> Settings:
    if settings.database_url and (settings.mqtt_url or not broker):
        return settings
    # Imported only here: with both URLs set, nothing needs the module or the `embedded` extra.
    from app.embedded import EmbeddedBroker, EmbeddedPostgres, EmbeddedUnavailable

    updates: dict[str, object] = {}
    try:
        if not settings.database_url:
            embedded.postgres = EmbeddedPostgres(settings.data_dir / "postgres")
            updates["database_url"] = embedded.postgres.start()
            updates["migration_database_url"] = embedded.postgres.owner_url
            log.warning("DATABASE_URL unset: embedded PostgreSQL at %s (migrations as %s)",
                        updates["database_url"], updates["migration_database_url"])
        if broker and not settings.mqtt_url:
            embedded.broker = EmbeddedBroker(settings.data_dir / "mqtt")
            updates["mqtt_url"] = embedded.broker.start()
            if not embedded.broker.supports_mqtt5:
                # The pure-Python fallback broker has no shared subscriptions: one plain subscriber.
                updates["ingest_group"] = ""
            log.warning("MQTT_URL unset: embedded broker at %s", updates["mqtt_url"])
    except EmbeddedUnavailable as exc:
        raise ServersUnavailable(str(exc)) from exc
    return settings.model_copy(update=updates)


def role_runner(name: str) -> RoleRunner:
    """`ingest` → ingest.worker.run, `alerts` → alerts.worker.run."""
    try:
        module = importlib.import_module(f"{name}.worker")
        runner: RoleRunner = module.run
    except (ImportError, AttributeError) as exc:
        raise RoleUnavailable(f"the {name} role is not available yet ({exc})") from exc
    return runner


def uvicorn_config(settings: Settings, app: Any, **over: Any) -> uvicorn.Config:
    """The API server's configuration (`over` for tests: port, log level)."""
    trusted = settings.forwarded_allow_ips
    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "log_level": "info", "lifespan": "on",
        # X-Forwarded-For/-Proto only from the proxies named: the client address is what the
        # failed-authentication throttle counts against.
        "proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None,
        "ws": "none",  # no WebSocket routes: nothing to load (nor its deprecation warnings)
        **over,
    }
    return uvicorn.Config(app, **options)


def _api_runner(uses_broker: bool) -> RoleRunner:
    async def serve_api(settings: Settings, stop: asyncio.Event) -> None:
        from app.api.main import create_app

        app = create_app(settings, uses_broker=uses_broker)
        server = uvicorn.Server(uvicorn_config(settings, app))
        # Everything imported so far lives for the whole process: keep it out of the collector's
        # full passes, which otherwise show up as ~70 ms pauses in the API's p99.
        gc.collect()
        gc.freeze()
        task = asyncio.create_task(server.serve())
        # While it serves, uvicorn holds SIGINT/SIGTERM itself and raises them again once it has
        # stopped (then `stop` is set for the other roles); sse-starlette watches the server's
        # exit flag and ends open live streams, so shutdown never waits for browsers to leave.
        await stop.wait()
        server.should_exit = True
        await task

    return serve_api


@contextlib.contextmanager
def metrics_endpoint(settings: Settings, roles: list[str]) -> Iterator[int | None]:
    """A process without the API serves /metrics on its role's port, when one is set
    (`COLDCHAIN_INGEST_METRICS_PORT`, `COLDCHAIN_ALERTS_METRICS_PORT`); yields the port."""
    ports = {"ingest": settings.ingest_metrics_port, "alerts": settings.alerts_metrics_port}
    port = None if "api" in roles else next((ports[r] for r in roles if ports.get(r)), None)
    if port is None:
        yield None
        return
    server, _ = start_http_server(port, addr=settings.host)
    log.info("metrics at http://%s:%d/metrics", settings.host, port)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


async def run_roles(
    settings: Settings, roles: list[str], extra: list[RoleRunner] | None = None
) -> None:
    """Run the roles until SIGINT/SIGTERM; one failing role stops the others (and is raised)."""
    serve_api = _api_runner(uses_broker="ingest" in roles)
    runners: list[RoleRunner] = [
        serve_api if role == "api" else role_runner(role) for role in roles
    ]
    runners += extra or []
    if settings.database_url:
        from app.core.db_roles import warn_at_start_up

        await warn_at_start_up(settings.database_url)
    # After the role modules are imported: their metrics exist before /metrics first answers.
    with metrics_endpoint(settings, roles):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(r(settings, stop)) for r in runners]
        try:
            await asyncio.wait(
                [*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
