"""Logger model: interval, skew, battery, store-and-forward batches, duplicates, channels."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from simulators.logger import MAX_BATCH, LoggerSpec, Truth, run_logger
from simulators.payloads import device_time


def world(coverage=lambda t: True, light=lambda t: False):
    return lambda t: Truth(5.0, (50.0, 8.0), coverage(t), light=light(t), shock_g=0.0,
                           ln2_level_pct=70.0)


def test_one_reading_per_interval_with_increasing_seq():
    spec = LoggerSpec("L1", interval_s=60)
    txs, taken = run_logger(spec, world(), 0, 3600, random.Random(1))
    assert len(taken) == 61
    assert [r.seq for r in taken] == list(range(1, 62))
    assert all(not tx.batch and len(tx.readings) == 1 for tx in txs)
    assert [tx.send_s for tx in txs] == [r.offset_s for r in taken]


def test_store_and_forward_sends_the_gap_as_one_batch_when_coverage_returns():
    spec = LoggerSpec("L1", interval_s=60)
    txs, taken = run_logger(spec, world(coverage=lambda t: not 600 <= t < 1800), 0, 3600,
                            random.Random(1))
    batches = [tx for tx in txs if tx.batch]
    assert len(batches) == 1
    batch = batches[0]
    assert batch.send_s == 1800
    assert [r.offset_s for r in batch.readings] == [float(t) for t in range(600, 1800, 60)]
    sent = sorted(r.offset_s for tx in txs for r in tx.readings)
    assert sent == [r.offset_s for r in taken]  # everything arrives exactly once


def test_readings_still_buffered_at_the_end_were_never_sent():
    spec = LoggerSpec("L1", interval_s=60)
    txs, taken = run_logger(spec, world(coverage=lambda t: t < 1200), 0, 3600, random.Random(1))
    assert len(taken) == 61
    assert sum(len(tx.readings) for tx in txs) == 20


def test_a_silence_buffers_like_lost_coverage():
    spec = LoggerSpec("L1", interval_s=5)
    txs, _ = run_logger(spec, world(), 0, 120, random.Random(1), silences=[(30, 70)])
    batch = next(tx for tx in txs if tx.batch)
    assert batch.send_s == 70 and len(batch.readings) == 8
    assert not any(30 < tx.send_s < 70 for tx in txs)


def test_large_gaps_are_chunked_to_the_batch_limit():
    spec = LoggerSpec("L1", interval_s=1, channels=frozenset())
    txs, _ = run_logger(spec, world(coverage=lambda t: t >= 25_000), 0, 25_000, random.Random(1))
    sizes = [len(tx.readings) for tx in txs if tx.batch]
    assert sizes == [MAX_BATCH, MAX_BATCH, 5000]


def test_battery_drains_and_a_flat_logger_dies_with_its_buffer():
    spec = LoggerSpec("L1", interval_s=60, battery_start_pct=10, battery_drain_pct_per_h=10)
    txs, taken = run_logger(spec, world(coverage=lambda t: t < 1800), 0, 7200, random.Random(1))
    assert taken[-1].offset_s < 3600
    assert [r.battery_pct for r in taken][:2] == [10.0, 10.0]
    assert taken[-1].battery_pct <= 1.0
    assert max(tx.send_s for tx in txs) < 1800  # the buffer died with it


def test_duplicates_resend_the_same_readings():
    spec = LoggerSpec("L1", interval_s=60, duplicate_rate=1.0, duplicate_copies=3, fmt="mixed")
    txs, taken = run_logger(spec, world(), 0, 600, random.Random(3))
    assert len(txs) == 4 * len(taken)
    for r in taken:
        assert sum(1 for tx in txs if r in tx.readings) == 4
    assert {tx.fmt for tx in txs} == {"object", "senml"}
    assert txs == sorted(txs, key=lambda tx: tx.send_s)


def test_reupload_at_end_sends_the_whole_memory_again():
    spec = LoggerSpec("L1", interval_s=60, reupload_at_end=True)
    txs, taken = run_logger(spec, world(), 0, 600, random.Random(1))
    again = [r for tx in txs if tx.duplicate for r in tx.readings]
    assert sorted(again, key=lambda r: r.offset_s) == taken


def test_channels_are_reported_only_when_fitted():
    bare = LoggerSpec("L1", channels=frozenset())
    full = LoggerSpec("L2", channels=frozenset({"position", "battery", "light", "shock",
                                                "humidity", "ln2_level"}))
    _, (b, *_) = run_logger(bare, world(), 0, 0, random.Random(1))
    _, (f, *_) = run_logger(full, world(light=lambda t: True), 0, 0, random.Random(1))
    assert (b.lat, b.battery_pct, b.light, b.shock_g, b.humidity_pct, b.ln2_level_pct) == (
        None, None, None, None, None, None)
    assert f.lat is not None and f.light is True and f.ln2_level_pct == 70.0
    assert f.shock_g is not None and f.humidity_pct is not None


def test_clock_skew_shifts_device_time():
    spec = LoggerSpec("L1", interval_s=60, skew_s=-30)
    _, taken = run_logger(spec, world(), 0, 120, random.Random(1))
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert device_time(t0, taken[1], spec.skew_s) == datetime(2026, 11, 25, 12, 0, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        device_time(datetime(2026, 11, 25), taken[0], 0)  # noqa: DTZ001


def test_seeded_runs_are_identical():
    spec = LoggerSpec("L1", interval_s=60, duplicate_rate=0.3, fmt="mixed")
    a = run_logger(spec, world(), 0, 3600, random.Random(9))
    b = run_logger(spec, world(), 0, 3600, random.Random(9))
    assert a == b


def test_bad_specs_are_refused():
    for kwargs in ({"interval_s": 0}, {"fmt": "xml"}, {"ts_format": "iso"},
                   {"channels": frozenset({"radar"})}):
        with pytest.raises(ValueError):
            LoggerSpec("L1", **kwargs)
