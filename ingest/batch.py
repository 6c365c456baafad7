"""Turn MQTT deliveries into staging rows, raw-message rows and quarantine rows (pure, no I/O)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from ingest import payload as p

log = logging.getLogger(__name__)
REJECTED_PAYLOAD_MAX = 64 * 1024
PROCESSING_ERROR = "processing_error"
_ROUTE_CACHE_MAX = 200_000
_sha256 = hashlib.sha256


class Delivery(NamedTuple):
    """One PUBLISH off the wire; `generation` numbers the broker connection (acks are per connection)."""

    topic: bytes
    payload: bytes
    mid: int
    generation: int
    received: float  # Unix seconds


class Oversized(NamedTuple):
    """A PUBLISH whose payload was over the contract's limit, read as a stream and never held
    whole: its first REJECTED_PAYLOAD_MAX bytes (as `payload`), its size and its SHA-256."""

    topic: bytes
    payload: bytes
    mid: int
    generation: int
    received: float
    size: int
    sha256: bytes


Message = Delivery | Oversized  # what the inbox holds and a batch is made of


class Route(NamedTuple):
    topic: str
    kind: str | None  # "telemetry" | "status" | None (invalid topic)
    logger_id: str | None
    rejected: p.Rejected | None


class Source(NamedTuple):
    """Where a message came from, kept per batch for quarantine rows built after parsing."""

    topic: str
    logger_id: str
    payload: bytes
    sha256: bytes
    received_at: datetime
    kind: str


class StagedReading(NamedTuple):
    """A reading on its way into `ingest_stage`: field order is that table's column order."""

    logger_id: str
    ts: datetime
    temp_c: float
    lat: float | None
    lon: float | None
    battery_pct: float | None
    light: bool | None
    shock_g: float | None
    humidity_pct: float | None
    ln2_level_pct: float | None
    seq: int | None
    received_at: datetime
    payload_sha256: bytes
    msg: int  # index into the batch's `sources`
    idx: int  # the reading's index in its message
    payload: bytes | None  # the raw message, on its first reading only


class RejectionRow(NamedTuple):
    """An `ingest_rejections` row (field order = the INSERT's columns), see `rejection_row`."""

    received_at: datetime
    topic: str
    logger_id: str | None
    reason: str
    detail: str
    payload: bytes | None  # the evidence: the payload's head, or the rejected element
    payload_size: int
    payload_sha256: bytes
    reading_index: int | None
    dedup_key: bytes


class LoggerStatus(NamedTuple):
    status: str  # online | offline
    at: datetime


# Rows built without the NamedTuples' Python-level __new__: as cheap as a plain tuple (hot path).
_row = tuple.__new__


@dataclass(slots=True)
class PreparedBatch:
    deliveries: list[Message]
    rows: list[StagedReading] = field(default_factory=list)
    rejections: list[RejectionRow] = field(default_factory=list)
    statuses: dict[str, LoggerStatus] = field(default_factory=dict)
    loggers: set[str] = field(default_factory=set)
    sources: list[Source] = field(default_factory=list)

    @property
    def readings(self) -> int:
        return len(self.rows)

    def drop_unknown(self, unknown: set[str]) -> None:
        """Quarantine every message of a logger that is not registered (one row per message)."""
        self.rows = [r for r in self.rows if r.logger_id not in unknown]
        self.rejections = [r for r in self.rejections if r.logger_id not in unknown]
        for logger_id in unknown:
            self.statuses.pop(logger_id, None)
        self.loggers -= unknown
        for src in self.sources:
            if src.logger_id in unknown:
                self.rejections.append(rejection_row(
                    src.topic, src.logger_id, src.payload, src.sha256, src.received_at,
                    p.Rejected(p.UNKNOWN_LOGGER, f"logger {src.logger_id} is not registered"),
                ))


def rejection_row(
    topic: str, logger_id: str | None, payload: bytes, sha: bytes, received_at: datetime,
    rejected: p.Rejected, *, size: int | None = None,
) -> RejectionRow:
    """An ingest_rejections row; identity (topic, payload, reading) makes a redelivery a no-op.

    `size` is the payload's full size when `payload` is only its head (an oversized message).
    """
    index = rejected.index
    evidence = rejected.element if rejected.element is not None else payload[:REJECTED_PAYLOAD_MAX]
    key = _sha256(b"%b\x00%b\x00%d" % (topic.encode(), sha, -1 if index is None else index)).digest()
    return RejectionRow(received_at, topic, logger_id, rejected.reason, clean_text(rejected.detail),
                        evidence, len(payload) if size is None else size, sha, index, key)


def clean_text(text: str) -> str:
    """PostgreSQL text takes neither NUL nor lone surrogates."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


class Assembler:
    """Routes topics (cached), parses payloads and lays out the rows of one batch."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._routes: dict[bytes | str, Route] = {}
        self._clock = (-1.0, datetime.fromtimestamp(0, UTC))

    def route(self, topic: bytes | str) -> Route:
        route = self._routes.get(topic)
        if route is None:
            if len(self._routes) >= _ROUTE_CACHE_MAX:
                self._routes.clear()
            text = topic if isinstance(topic, str) else topic.decode("utf-8", "backslashreplace")
            parsed = p.parse_topic(text, self._prefix)
            if isinstance(parsed, p.Rejected):
                route = Route(clean_text(text), None, None, parsed)
            else:
                route = Route(text, parsed[0], parsed[1], None)
            self._routes[topic] = route
        return route

    def assemble(self, deliveries: list[Message]) -> PreparedBatch:
        batch = PreparedBatch(deliveries)
        for delivery in deliveries:
            try:
                self._add(batch, delivery)
            except Exception as exc:  # a parser bug must not stop the stream: quarantine
                log.exception("could not process a message on %r", delivery.topic)
                route = self.route(delivery.topic)
                batch.rejections.append(rejection_row(
                    route.topic, None, delivery.payload, _sha256(delivery.payload).digest(),
                    self._received_at(delivery.received),
                    p.Rejected(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"[:500]),
                ))
        return batch

    def _received_at(self, when: float) -> datetime:
        last, at = self._clock
        if when != last:
            at = datetime.fromtimestamp(when, UTC)
            self._clock = (when, at)
        return at

    def _add(self, batch: PreparedBatch, delivery: Message) -> None:
        route = self.route(delivery.topic)
        received_at = self._received_at(delivery.received)
        payload = delivery.payload
        topic, logger_id, kind = route.topic, route.logger_id, route.kind
        if type(delivery) is Oversized:  # judged before the topic: its bytes are gone
            batch.rejections.append(rejection_row(
                topic, logger_id, payload, delivery.sha256, received_at,
                p.Rejected(p.PAYLOAD_TOO_LARGE,
                           f"{delivery.size} bytes, the limit is {p.MAX_PAYLOAD_BYTES}"),
                size=delivery.size,
            ))
            return
        sha = _sha256(payload).digest()
        if logger_id is None:
            batch.rejections.append(
                rejection_row(topic, None, payload, sha, received_at, route.rejected)  # type: ignore[arg-type]
            )
            return
        msg = len(batch.sources)
        batch.sources.append(_row(Source, (topic, logger_id, payload, sha, received_at, kind)))
        if kind == "status":
            status = p.parse_status(payload)
            if isinstance(status, p.Rejected):
                batch.rejections.append(rejection_row(topic, logger_id, payload, sha, received_at, status))
            elif status is not None:
                batch.statuses[logger_id] = LoggerStatus(status, received_at)
                batch.loggers.add(logger_id)
            return
        parsed = p.parse_message(payload, received_at)
        if type(parsed) is p.ParsedReading:  # the usual message: one valid reading
            batch.loggers.add(logger_id)
            batch.rows.append(_row(StagedReading, (logger_id, *parsed, received_at, sha, msg, 0, payload)))
            return
        if parsed.readings:  # type: ignore[union-attr]
            batch.loggers.add(logger_id)
            rows = batch.rows
            raw: bytes | None = payload
            for reading, index in zip(parsed.readings, parsed.indexes, strict=True):  # type: ignore[union-attr]
                rows.append(_row(StagedReading, (logger_id, *reading, received_at, sha, msg, index, raw)))
                raw = None
        for rejected in parsed.rejected:  # type: ignore[union-attr]
            batch.rejections.append(rejection_row(topic, logger_id, payload, sha, received_at, rejected))

