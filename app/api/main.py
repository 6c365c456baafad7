"""The FastAPI application: `create_app(settings)`; engine and session factory made in lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine

from app import web
from app.api import errors, hardening
from app.api.metrics import HTTP_DURATION, HTTP_REQUESTS
from app.api.problems import PROBLEM_RESPONSES
from app.api.routes import (
    alerts,
    api_keys,
    audit,
    auth,
    documents,
    health,
    ingest,
    notifications,
    readings,
    reference,
    reports,
    shipments,
    stream,
    track,
    users,
    webhooks,
)
from app.core.db import make_engine, make_sessionmaker
from app.core.models import utcnow
from app.core.settings import Settings

API_PREFIX = "/api/v1"


def operation_id(route: APIRoute) -> str:
    """The handler's name (`list_shipments`, `acknowledge_alert`): what generated clients call
    the operation; handler names are unique across the API (tests/api/test_openapi.py)."""
    return route.name


def create_app(
    settings: Settings, *, engine: AsyncEngine | None = None, uses_broker: bool = False
) -> FastAPI:
    """Build the app; pass `engine` to share one (tests, `coldchain up`), else one is made.
    `uses_broker`: the process also ingests, so /readyz checks the broker too."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        app.state.engine = engine or make_engine(
            settings.database_url or "", pool_size=settings.db_pool_size
        )
        app.state.sessionmaker = make_sessionmaker(app.state.engine)
        try:
            yield
        finally:
            if own:
                await app.state.engine.dispose()

    app = FastAPI(
        title="Cold-chain shipment monitoring",
        version=version("coldchain"),
        description="Temperature, location and hold-time monitoring of advanced-therapy shipments.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.uses_broker = uses_broker
    app.state.clock = utcnow  # sessions' and lockouts' wall clock (tests move it)
    if engine is not None:
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
    errors.install(app)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        HTTP_DURATION.labels(request.method, path).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        return response

    app.include_router(health.router)
    for module in (reference, shipments, api_keys, audit, webhooks, readings, track, stream,
                   reports, alerts, ingest, users, auth, notifications, documents):
        app.include_router(module.router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    hardening.install(app, settings)
    web.install(app)
    return app
