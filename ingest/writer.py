"""One ingest batch, one transaction: COPY → staging → INSERT … ON CONFLICT, links, hand-off, loggers.

Raw asyncpg (no ORM): PITFALLS measured COPY into a temp staging table followed by
`INSERT … SELECT … ON CONFLICT DO NOTHING` as the fastest correct path. Every statement is
idempotent on the content (reading key, quarantine identity; raw bytes only kept with new
readings), so a batch retried after an unknown commit outcome, or redelivered after a crash,
changes nothing the second time. In the same transaction: shipment links by device time, the
the evaluation hand-off (app/core/handoff.py), and the loggers' last-seen/sequence state.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from app.core.handoff import enqueue_sql
from ingest.batch import PreparedBatch, RejectionRow, Source, StagedReading, rejection_row
from ingest.payload import DUPLICATE_CONFLICT, ParsedReading, Rejected

STAGE_COLUMNS = StagedReading._fields
VALUE_COLUMNS = ParsedReading._fields[1:]  # what a reading says besides its key (logger, ts)

SETUP = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    logger_id text NOT NULL, ts timestamptz NOT NULL, temp_c float8 NOT NULL, lat float8,
    lon float8, battery_pct float8, light boolean, shock_g float8, humidity_pct float8,
    ln2_level_pct float8, seq bigint, received_at timestamptz NOT NULL,
    payload_sha256 bytea NOT NULL, msg int NOT NULL, idx int NOT NULL, payload bytea
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_inserted (
    logger_id text NOT NULL, ts timestamptz NOT NULL, seq bigint, shipment_id uuid,
    payload_sha256 bytea NOT NULL
) ON COMMIT DELETE ROWS;
"""

# The shipment a logger was assigned to at the reading's device time: [assigned_from, assigned_until).
_ASSIGNMENT = """
    SELECT sl.shipment_id FROM shipment_loggers sl
    WHERE sl.logger_id = {r}.logger_id AND sl.assigned_from <= {r}.ts
      AND (sl.assigned_until IS NULL OR {r}.ts < sl.assigned_until)
    ORDER BY sl.assigned_from DESC LIMIT 1
"""

# Staged rows go in in arrival order, so the first arrival of a key wins inside a batch (sorting
# them cost 13 % of the statement; two workers racing on the same keys at worst deadlock, which
# is retried). A message's raw bytes ride on its first staged reading and are kept only if the
# message brought a new reading (a redelivery or a retry adds nothing).
INSERT_READINGS = f"""
WITH ins AS (
    INSERT INTO readings (logger_id, ts, shipment_id, temp_c, lat, lon, battery_pct, light,
                          shock_g, humidity_pct, ln2_level_pct, seq, received_at, payload_sha256)
    SELECT s.logger_id, s.ts, a.shipment_id, s.temp_c, s.lat, s.lon, s.battery_pct, s.light,
           s.shock_g, s.humidity_pct, s.ln2_level_pct, s.seq, s.received_at, s.payload_sha256
    FROM ingest_stage s LEFT JOIN LATERAL ({_ASSIGNMENT.format(r="s")}) a ON true
    ON CONFLICT (logger_id, ts) DO NOTHING
    RETURNING logger_id, ts, seq, shipment_id, payload_sha256
), kept AS (
    INSERT INTO ingest_inserted SELECT * FROM ins
), raw AS (
    INSERT INTO ingest_messages (received_at, payload_sha256, topic, payload)
    SELECT DISTINCT ON (s.payload_sha256, s.logger_id)
           s.received_at, s.payload_sha256, $1 || s.logger_id || '/telemetry', s.payload
    FROM ingest_stage s
    WHERE s.payload IS NOT NULL AND EXISTS (
        SELECT 1 FROM ins WHERE ins.payload_sha256 = s.payload_sha256 AND ins.logger_id = s.logger_id)
)
SELECT count(*) FROM ins
"""

_VALUES = ", ".join(VALUE_COLUMNS)
CONFLICTS = f"""
SELECT s.msg, s.idx, s.logger_id, s.ts, {", ".join("s." + c for c in VALUE_COLUMNS)},
       {", ".join("r." + c + " AS stored_" + c for c in VALUE_COLUMNS)}
FROM ingest_stage s JOIN readings r ON r.logger_id = s.logger_id AND r.ts = s.ts
WHERE ({", ".join("r." + c for c in VALUE_COLUMNS)})
      IS DISTINCT FROM ({", ".join("s." + c for c in VALUE_COLUMNS)})
ORDER BY s.msg, s.idx
"""

_REJECTION_TYPES = {
    "received_at": "timestamptz", "topic": "text", "logger_id": "text", "reason": "text",
    "detail": "text", "payload": "bytea", "payload_size": "int", "payload_sha256": "bytea",
    "reading_index": "int", "dedup_key": "bytea",
}
INSERT_REJECTIONS = f"""
INSERT INTO ingest_rejections ({", ".join(RejectionRow._fields)})
SELECT * FROM unnest({", ".join(f"${i}::{_REJECTION_TYPES[c]}[]"
                                for i, c in enumerate(RejectionRow._fields, 1))})
ON CONFLICT (dedup_key) DO NOTHING
RETURNING reason
"""

# Taken before the readings are linked, and held to the commit: whatever changes a logger's
# assignments locks the same rows, so it either commits first (the INSERT below, a later
# statement, links by the new assignments) or waits for this batch and then sees its readings.
# Shipment receipt takes FOR UPDATE on them before ending the assignments (and unlinking what
# lies after); registering a shipment takes FOR KEY SHARE through its shipment_loggers foreign
# key, which FOR UPDATE (not NO KEY UPDATE) conflicts with.
LOCK_LOGGERS = "SELECT id FROM loggers WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"

# Unlinked new readings of loggers that have assignments: none while every change of assignments
# takes the loggers' locks (above); kept as the safety net for one that does not.
UNLINKED = """
SELECT i.logger_id, min(i.ts), max(i.ts) FROM ingest_inserted i
WHERE i.shipment_id IS NULL
  AND i.logger_id IN (SELECT sl.logger_id FROM shipment_loggers sl)
GROUP BY i.logger_id
"""

RELINK = f"""
WITH fixed AS (
    UPDATE readings r SET shipment_id = ({_ASSIGNMENT.format(r="r")})
    WHERE r.logger_id = $1 AND r.ts BETWEEN $2 AND $3 AND r.shipment_id IS NULL
      AND EXISTS ({_ASSIGNMENT.format(r="r")})
    RETURNING r.ts, r.shipment_id
)
UPDATE ingest_inserted i SET shipment_id = f.shipment_id
FROM fixed f WHERE i.logger_id = $1 AND i.ts = f.ts
"""

# Every shipment the batch gave new readings, from its earliest one (app/core/handoff.py).
ENQUEUE = enqueue_sql(
    "SELECT shipment_id, min(ts) AS since FROM ingest_inserted "
    "WHERE shipment_id IS NOT NULL GROUP BY shipment_id"
)

UPDATE_STATUS = """
UPDATE loggers l SET status = s.status, status_at = s.at
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS s(id, status, at)
WHERE l.id = s.id AND (l.status_at IS NULL OR l.status_at <= s.at)
"""

# Sequence gaps: numbers skipped while a logger's device time advances, minus late readings that
# fill them (store-and-forward, or a stream split across workers). Runs under the loggers lock, so
# the values read here are the latest committed ones. `seq` goes up to 2^63-1 (bigint): `seq - prev`
# of two non-negative bigints cannot overflow where `prev + 1` would, and the sum is numeric.
UPDATE_LOGGERS = """
WITH seen AS (
    SELECT logger_id, max(received_at) AS received_at FROM ingest_stage GROUP BY logger_id
), fresh AS (
    SELECT i.logger_id, i.ts, i.seq, l.last_reading_ts AS old_ts, l.last_seq AS old_seq
    FROM ingest_inserted i JOIN loggers l ON l.id = i.logger_id
), adv AS (
    SELECT logger_id, ts, seq, COALESCE(lag(seq) OVER w, old_seq) AS prev
    FROM fresh WHERE (old_ts IS NULL OR ts > old_ts) AND seq IS NOT NULL
    WINDOW w AS (PARTITION BY logger_id ORDER BY ts)
), seqs AS (
    SELECT logger_id, (array_agg(seq ORDER BY ts DESC))[1] AS newest_seq,
           COALESCE(sum(seq - prev - 1) FILTER (WHERE seq - prev > 1), 0) AS skipped
    FROM adv GROUP BY logger_id
), times AS (
    SELECT logger_id, max(ts) FILTER (WHERE old_ts IS NULL OR ts > old_ts) AS newest_ts,
           count(*) FILTER (WHERE ts < old_ts AND seq < old_seq) AS filled
    FROM fresh GROUP BY logger_id
)
UPDATE loggers l SET
    last_received_at = GREATEST(l.last_received_at, seen.received_at),
    last_reading_ts = GREATEST(l.last_reading_ts, times.newest_ts),
    last_seq = COALESCE(seqs.newest_seq, l.last_seq),
    seq_gaps = LEAST(GREATEST(l.seq_gaps + COALESCE(seqs.skipped, 0) - COALESCE(times.filled, 0), 0),
                     2147483647)
FROM seen LEFT JOIN times USING (logger_id) LEFT JOIN seqs USING (logger_id)
WHERE l.id = seen.logger_id
"""

KNOWN_LOGGERS = "SELECT id FROM loggers WHERE id = ANY($1::text[])"


@dataclass(slots=True)
class BatchResult:
    """What one committed batch did (metrics, tests, the in-process commit hook)."""

    messages: int
    readings: int
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    shipments: dict[uuid.UUID, datetime] = field(default_factory=dict)


class Writer:
    """Owns one asyncpg connection (re-made after a failure) and writes prepared batches.

    Every statement is bounded by `timeout_s`: on the server (statement_timeout, lock waits
    included) and on the client (command_timeout, a little later: a server or network that no
    longer answers at all cannot deliver its own timeout). A hung database then fails the write,
    which is retried on a new connection, instead of holding the batch and its acks forever.
    """

    def __init__(self, dsn: str, prefix: str, *, timeout_s: float = 30.0) -> None:
        self._dsn = dsn
        self._topic_head = f"{prefix}/loggers/"
        self._timeout_s = timeout_s
        self._conn: asyncpg.Connection | None = None
        self._known: set[str] = set()

    async def connect(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        limit_ms = str(max(int(self._timeout_s * 1000), 1))
        # JIT compiles a large batch's statements for ~60 ms and never pays back here (measured).
        conn = await asyncpg.connect(
            self._dsn, timeout=self._timeout_s, command_timeout=self._timeout_s + 1.0,
            server_settings={
                "timezone": "UTC", "application_name": "coldchain-ingest", "jit": "off",
                "statement_timeout": limit_ms,
                # A frozen worker must not keep the loggers' row locks (shipment receipt waits on them).
                "idle_in_transaction_session_timeout": limit_ms,
            })
        try:
            await conn.execute(SETUP)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close(timeout=5)

    def discard(self) -> None:
        """Drop the connection after an error; the next write reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def write(self, batch: PreparedBatch) -> BatchResult:
        """Store one batch in one transaction; raises (nothing committed) if anything fails."""
        await self.connect()
        conn = self._conn
        assert conn is not None
        result = BatchResult(messages=len(batch.deliveries), readings=batch.readings)
        async with conn.transaction():
            unknown = batch.loggers - self._known
            if unknown:
                found = {r[0] for r in await conn.fetch(KNOWN_LOGGERS, list(unknown))}
                self._known |= found
                if unknown - found:
                    batch.drop_unknown(unknown - found)
                    result.readings = batch.readings
            if batch.loggers:
                await conn.execute(LOCK_LOGGERS, sorted(batch.loggers))
            rejections = batch.rejections
            if batch.rows:
                await conn.copy_records_to_table("ingest_stage", records=batch.rows, columns=STAGE_COLUMNS)
                result.stored = await conn.fetchval(INSERT_READINGS, self._topic_head)
                if result.stored < len(batch.rows):
                    conflicts = await conn.fetch(CONFLICTS)
                    result.conflicts = len(conflicts)
                    rejections = rejections + [_conflict_row(batch.sources, c) for c in conflicts]
                result.duplicates = len(batch.rows) - result.stored - result.conflicts
            if rejections:
                columns = [list(col) for col in zip(*rejections, strict=True)]
                result.rejected.update(r[0] for r in await conn.fetch(INSERT_REJECTIONS, *columns))
            if batch.loggers:
                if result.stored:
                    unlinked = await conn.fetch(UNLINKED)
                    if unlinked:
                        await conn.executemany(RELINK, [tuple(r) for r in unlinked])
                    result.shipments = {r[0]: r[1] for r in await conn.fetch(ENQUEUE)}
                if batch.statuses:
                    ids = list(batch.statuses)
                    await conn.execute(UPDATE_STATUS, ids, [batch.statuses[i].status for i in ids],
                                       [batch.statuses[i].at for i in ids])
                if batch.rows:
                    await conn.execute(UPDATE_LOGGERS)
        return result


def _conflict_row(sources: list[Source], row: Any) -> RejectionRow:
    """A duplicate key whose values differ from the stored reading: quarantined, never overwritten."""
    src = sources[row["msg"]]
    changed = [
        f"{c} stored {row['stored_' + c]!r}, received {row[c]!r}"
        for c in VALUE_COLUMNS if row[c] != row["stored_" + c]
    ]
    detail = f"reading {row['logger_id']} @ {row['ts'].isoformat()} differs: " + "; ".join(changed)
    element = None
    if len(src.payload) > 65536 or row["idx"] != 0:
        fields = ", ".join(f'"{c}": {_json(row[c])}' for c in VALUE_COLUMNS)
        element = f'{{"ts": "{row["ts"].isoformat()}", {fields}}}'.encode()
    return rejection_row(src.topic, src.logger_id, src.payload, src.sha256, src.received_at,
                         Rejected(DUPLICATE_CONFLICT, detail[:2000], row["idx"], element))


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
