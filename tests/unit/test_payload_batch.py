"""Assembling deliveries into staging rows and quarantine rows (pure; no database, no broker)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from ingest import payload as p
from ingest.batch import REJECTED_PAYLOAD_MAX, Assembler, Delivery, StagedReading

RECEIVED = datetime(2026, 11, 25, 14, 10, tzinfo=UTC).timestamp()


def delivery(topic: str, payload: bytes, mid: int = 1) -> Delivery:
    return Delivery(topic.encode(), payload, mid, 0, RECEIVED)


def test_rows_carry_logger_message_hash_and_raw_bytes_once_per_message() -> None:
    batch_payload = (b'{"readings": [{"ts": "2026-11-25T14:00:00Z", "temp_c": 1},'
                     b' {"ts": "2026-11-25T14:01:00Z", "temp_c": 2}]}')
    single = b'{"ts": "2026-11-25T14:02:00Z", "temp_c": 3, "seq": 9}'
    batch = Assembler("cc").assemble([
        delivery("cc/loggers/A/telemetry", batch_payload),
        delivery("cc/loggers/B/telemetry", single, 2),
    ])
    assert batch.loggers == {"A", "B"} and batch.rejections == []
    assert [(r.logger_id, r.temp_c, r.msg, r.idx) for r in batch.rows] == [("A", 1.0, 0, 0), ("A", 2.0, 0, 1),
                                                              ("B", 3.0, 1, 0)]
    assert [r.payload for r in batch.rows] == [batch_payload, None, single]
    assert batch.rows[2].payload_sha256 == hashlib.sha256(single).digest()
    assert batch.rows[2].seq == 9
    assert batch.rows[0].received_at == datetime.fromtimestamp(RECEIVED, UTC)


def test_quarantine_rows_name_reason_topic_and_bounded_evidence() -> None:
    huge = b"[" + b"1," * (REJECTED_PAYLOAD_MAX) + b"1]"
    batch = Assembler("cc").assemble([
        delivery("cc/loggers/A/telemetry", b"{oops"),
        delivery("cc/loggers/bad id/telemetry", b"{}"),
        delivery("cc/loggers/A/telemetry", huge),
        delivery("cc/loggers/A/status", b"dozing"),
    ])
    reasons = [(r.topic, r.logger_id, r.reason, r.reading_index) for r in batch.rejections]
    assert reasons[0] == ("cc/loggers/A/telemetry", "A", p.MALFORMED_JSON, None)
    assert reasons[1] == ("cc/loggers/bad id/telemetry", None, p.INVALID_TOPIC, None)
    assert reasons[2][2] == p.INVALID_STRUCTURE  # SenML records must be objects
    assert reasons[3] == ("cc/loggers/A/status", "A", p.INVALID_STATUS, None)
    evidence, size = batch.rejections[2].payload, batch.rejections[2].payload_size
    assert len(evidence) == REJECTED_PAYLOAD_MAX and size == len(huge)


def test_a_redelivered_bad_message_has_the_same_quarantine_identity() -> None:
    assembler = Assembler("cc")
    first = assembler.assemble([delivery("cc/loggers/A/telemetry", b"{oops", 1)])
    again = assembler.assemble([delivery("cc/loggers/A/telemetry", b"{oops", 7)])
    other = assembler.assemble([delivery("cc/loggers/B/telemetry", b"{oops", 7)])
    assert first.rejections[0].dedup_key == again.rejections[0].dedup_key != other.rejections[0].dedup_key


def test_unknown_loggers_are_quarantined_once_per_message() -> None:
    batch = Assembler("cc").assemble([
        delivery("cc/loggers/A/telemetry", b'{"ts": "2026-11-25T14:00:00Z", "temp_c": 1}'),
        delivery("cc/loggers/X/telemetry",
                 b'{"readings": [{"ts": "2026-11-25T14:00:00Z", "temp_c": 1}, {"ts": 0}]}'),
        delivery("cc/loggers/X/status", b"online"),
    ])
    batch.drop_unknown({"X"})
    assert [r.logger_id for r in batch.rows] == ["A"]
    assert batch.statuses == {} and batch.loggers == {"A"}
    assert sorted((r.topic, r.reason) for r in batch.rejections) == [
        ("cc/loggers/X/status", p.UNKNOWN_LOGGER), ("cc/loggers/X/telemetry", p.UNKNOWN_LOGGER)]


def test_last_status_of_a_logger_wins() -> None:
    batch = Assembler("cc").assemble([
        delivery("cc/loggers/A/status", b"online"), delivery("cc/loggers/A/status", b"offline"),
        delivery("cc/loggers/A/status", b""),
    ])
    assert batch.statuses["A"].status == "offline" and batch.rejections == []


def test_text_columns_never_get_nul_or_surrogates() -> None:
    batch = Assembler("cc").assemble([delivery("cc/loggers/A/telemetry",
                                               b'{"ts": "2026\\u0000-\\ud800", "temp_c": 1}')])
    detail = batch.rejections[0].detail
    assert "\x00" not in detail
    detail.encode("utf-8")


def test_a_parsed_reading_is_the_middle_of_a_staged_one() -> None:
    """The hot path builds staged rows positionally from a parsed reading: the names must agree."""
    assert StagedReading._fields[1:11] == p.ParsedReading._fields
    batch = Assembler("cc").assemble([delivery("cc/loggers/A/telemetry",
                                               b'{"ts": "2026-11-25T14:02:00Z", "temp_c": 4.5, "seq": 7}')])
    (row,) = batch.rows
    assert (row.logger_id, row.temp_c, row.seq, row.lat, row.idx) == ("A", 4.5, 7, None, 0)
    assert type(row) is StagedReading
