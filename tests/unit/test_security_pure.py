"""Pure security logic: the audit hash chain walker, JSONB-stable normalisation, the rate limiter."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.api.deps import check_time_range
from app.core import audit
from app.core.audit_verify import ChainRow, ChainWalker, KeptHead, kept_head_problem, verify_rows
from app.core.errors import InvalidField
from app.core.security import RateLimiter, key_prefix, new_api_key

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _chain(n: int) -> list[ChainRow]:
    rows, prev = [], audit.GENESIS
    for i in range(1, n + 1):
        fields = dict(at=T0 + timedelta(seconds=i), actor="key:0a1b2c3d", role="qp",
                      action="release", entity_type="shipment", entity_id=f"S-{i}",
                      before=None, after={"decision": "released"}, reason="ok")
        digest = audit.record_digest(prev, audit.hashed_fields(**fields))
        rows.append(ChainRow(id=i, prev_hash=prev, hash=digest, **fields))
        prev = digest
    return rows


def test_an_untouched_chain_verifies() -> None:
    result = verify_rows(_chain(4))
    assert result.ok and result.checked == 4 and result.head_id == 4
    assert result.head_hash == _chain(4)[-1].hash.hex()
    assert verify_rows([]).ok and verify_rows([]).checked == 0


@pytest.mark.parametrize(
    ("tamper", "broken_id", "words"),
    [
        (lambda rows: rows.__setitem__(1, replace(rows[1], reason="changed")), 2, "altered"),
        (lambda rows: rows.__setitem__(2, replace(rows[2], at=T0)), 3, "altered"),
        (lambda rows: rows.pop(1), 3, "does not link to record #1"),
        (lambda rows: rows.pop(0), 2, "does not link to the start"),
        (lambda rows: rows.__setitem__(1, replace(rows[1], hash=b"\x01" * 32)), 2, "altered"),
        (lambda rows: rows.insert(2, rows[1]), 2, "does not link"),
    ],
)
def test_the_first_broken_link_is_named(tamper: object, broken_id: int, words: str) -> None:
    rows = _chain(5)
    tamper(rows)  # type: ignore[operator]
    result = verify_rows(rows)
    assert not result.ok
    assert result.broken_id == broken_id
    assert words in (result.problem or "")
    assert f"#{broken_id}" in result.describe()


def _relinked(rows: list[ChainRow]) -> list[ChainRow]:
    """The rows re-hashed in order: what a forger with the database does after removing some."""
    out, prev = [], audit.GENESIS
    for row in rows:
        fields = audit.hashed_fields(
            at=row.at, actor=row.actor, role=row.role, action=row.action,
            entity_type=row.entity_type, entity_id=row.entity_id, before=row.before,
            after=row.after, reason=row.reason)
        digest = audit.record_digest(prev, fields)
        out.append(replace(row, prev_hash=prev, hash=digest))
        prev = digest
    return out


def test_missing_ids_in_a_relinked_chain_are_reported() -> None:
    rows = [r for r in _chain(12) if r.id not in (3, 4, 9)]
    result = verify_rows(_relinked(rows))
    assert (result.ok, result.broken_id, result.gaps, result.missing) == (False, 5, ((3, 4), (9, 9)), 3)
    assert result.problem is not None and result.problem.startswith("3 record(s) missing (#3–#4 first)")
    assert result.checked == 9 and result.head_id == 12  # every present link held
    leading = verify_rows(_relinked(_chain(3)[1:]))  # the first record removed
    assert (leading.ok, leading.gaps) == (False, ((1, 1),))


def test_a_walk_can_start_after_a_trusted_head() -> None:
    rows = _chain(6)
    walker = ChainWalker(KeptHead(3, rows[2].hash))
    assert all(walker.feed(r) for r in rows[3:])
    result = walker.result()
    assert (result.ok, result.checked, result.head_id) == (True, 3, 6)
    assert ChainWalker(KeptHead(3, b"\x07" * 32)).feed(rows[3]) is False  # not its successor


def test_kept_heads_parse_and_judge() -> None:
    digest = _chain(2)[1].hash
    kept = KeptHead.parse(f" 2:{digest.hex().upper()} ")
    assert kept == KeptHead(2, digest)
    for bad in ("2", "0:" + "0" * 64, "2:" + "0" * 63, "x:" + "0" * 64, "2:" + "g" * 64):
        with pytest.raises(ValueError, match="ID:HASH"):
            KeptHead.parse(bad)
    assert kept_head_problem(kept, digest) is None
    assert "no longer in the chain" in (kept_head_problem(kept, None) or "")
    assert "rewritten" in (kept_head_problem(kept, b"\x01" * 32) or "")
    good = verify_rows(_chain(2))
    assert f"--head 2:{digest.hex()}" in good.describe()


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.datetimes(timezones=st.just(UTC)), st.uuids(), st.binary(max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)
json_values = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_normalised_values_hash_identically_after_a_json_round_trip(value: object) -> None:
    normal = audit.normalise(value)
    # What JSONB gives back is (at most) a re-parse of the text; integral numbers may become ints.
    back = json.loads(audit.canonical(normal))
    assert audit.canonical(audit.normalise(back)) == audit.canonical(normal)
    assert "\x00" not in audit.canonical(normal)


def test_normalise_makes_jsonb_sensitive_values_stable() -> None:
    assert audit.normalise({"a": 5.0, "b": 1e20, "c": float("nan"), "d": Decimal("1.5")}) == {
        "a": 5, "b": 10**20, "c": "nan", "d": "1.5"}
    with pytest.raises(ValueError, match="timezone-aware"):
        audit.hashed_fields(at=datetime(2026, 1, 1), actor="a", role=None,  # noqa: DTZ001
                            action="x", entity_type="y", entity_id="z", before=None,
                            after=None, reason=None)


def test_token_bucket_allows_a_burst_then_the_refill_rate() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.acquire("k", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k", 100.0) == pytest.approx(0.5)
    assert limiter.acquire("other", 100.0) == 0.0  # buckets are per key
    assert limiter.acquire("k", 100.5) == 0.0  # half a second refills one token
    assert limiter.acquire("k", 100.5) > 0
    assert [limiter.acquire("k", 1000.0) for _ in range(3)] == [0.0, 0.0, 0.0]  # never above burst
    assert limiter.acquire("k", 1000.0) > 0


def test_token_bucket_memory_is_bounded() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_keys=10)
    for i in range(100):
        limiter.acquire(f"k{i}", 0.0)
    assert len(limiter._buckets) == 10


def test_time_ranges_are_utc_ordered_and_bounded() -> None:
    cet = datetime(2026, 11, 20, 9, 0, tzinfo=UTC).astimezone()
    window = check_time_range(cet, None, max_days=1)
    assert window.start is not None and window.start.tzinfo is UTC
    with pytest.raises(InvalidField, match="before"):
        check_time_range(T0, T0 - timedelta(seconds=1), max_days=1)
    with pytest.raises(InvalidField, match="at most 1 days"):
        check_time_range(T0, T0 + timedelta(days=2), max_days=1)
    assert check_time_range(T0, T0 + timedelta(days=900), max_days=0).end is not None
    # Found by the fuzzer: the first instant at +14:00 has no UTC time (was a 500).
    edge = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    with pytest.raises(InvalidField, match="out of the representable range") as caught:
        check_time_range(edge, None, max_days=1)
    assert caught.value.extra["errors"][0]["field"] == "from"


def test_request_timestamps_out_of_range_in_utc_are_invalid_not_a_crash() -> None:
    from pydantic import ValidationError

    from app.schemas.shipments import ShipmentEventIn

    with pytest.raises(ValidationError, match="out of the representable range"):
        ShipmentEventIn.model_validate({"type": "departed", "at": "0001-01-01T00:00:00+14:00"})
    late = ShipmentEventIn.model_validate({"type": "departed", "at": "9999-12-31T23:00:00-00:30"})
    assert late.at.tzinfo is UTC or late.at.utcoffset() == timedelta(0)


def test_key_prefixes_are_hex_and_fixed_width() -> None:
    key, prefix = new_api_key()
    assert key_prefix(key) == prefix
    assert key_prefix("cc_zzzzzzzz_secret") is None
    assert key_prefix("cc_0a1b2c3\x00_secret") is None
    assert key_prefix("not-a-key") is None
