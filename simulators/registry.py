"""Register a load fleet's loggers in bulk (one audited batch, not one service call per logger)."""

from __future__ import annotations

from sqlalchemy import ARRAY, String, func, literal, select
from sqlalchemy.dialects.postgresql import insert

from app.core import audit
from app.core.db import make_engine, make_sessionmaker
from app.core.models import Logger
from app.core.settings import Settings
from simulators.fleet import FleetSpec
from simulators.provision import SIMULATOR

CHUNK = 5000


async def register_loggers(settings: Settings, spec: FleetSpec) -> int:
    """Insert the fleet's loggers that do not exist yet; returns how many were new."""
    engine = make_engine(settings.database_url or "", pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            ids = [spec.logger_id(i) for i in range(spec.loggers)]
            interval = max(1, round(spec.interval_s))
            created = 0
            for i in range(0, len(ids), CHUNK):
                chunk = ids[i : i + CHUNK]
                # Python-side column defaults (status, counters, created_at) are rendered in.
                stmt = insert(Logger).from_select(
                    ["id", "reporting_interval_s"],
                    select(func.unnest(literal(chunk, ARRAY(String))), literal(interval)),
                ).on_conflict_do_nothing().returning(Logger.id)
                created += len((await session.execute(stmt)).all())
            if created:
                await audit.record(
                    session, SIMULATOR, action="bulk_create", entity_type="logger",
                    entity_id=f"{spec.id_prefix}-*",
                    after={"id_prefix": spec.id_prefix, "count": created,
                           "reporting_interval_s": interval},
                    reason="simulated load fleet",
                )
            await session.commit()
            return created
    finally:
        await engine.dispose()
