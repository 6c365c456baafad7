"""Readiness to depart, judged: documents valid at the expected arrival, the requalification too."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.readiness import Doc, Lapse, judge

ARRIVAL = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)
PKG = uuid.UUID(int=99)


def doc(n: int, kind: str, expires: datetime | None = None) -> Doc:
    return Doc(uuid.UUID(int=n), kind, expires)


@pytest.mark.parametrize(("docs", "missing", "expired"), [
    ([], ("import_license", "qp_release_plan"), ()),
    ([doc(1, "import_license")], ("qp_release_plan",), ()),
    ([doc(1, "import_license"), doc(2, "qp_release_plan", ARRIVAL)], (), ()),  # valid at arrival
    ([doc(1, "import_license"), doc(2, "qp_release_plan", ARRIVAL - timedelta(seconds=1))],
     (), (Lapse("qp_release_plan", ARRIVAL - timedelta(seconds=1), document_id=uuid.UUID(int=2)),)),
    # Of several documents of a kind the longest-lived counts: a renewal makes it valid again.
    ([doc(1, "import_license"), doc(2, "qp_release_plan", ARRIVAL - timedelta(days=3)),
      doc(3, "qp_release_plan", ARRIVAL + timedelta(days=30))], (), ()),
    ([doc(1, "import_license"), doc(2, "qp_release_plan", ARRIVAL - timedelta(days=3)),
      doc(3, "qp_release_plan", ARRIVAL - timedelta(days=1))],
     (), (Lapse("qp_release_plan", ARRIVAL - timedelta(days=1), document_id=uuid.UUID(int=3)),)),
    ([doc(1, "import_license"), doc(2, "qp_release_plan", ARRIVAL - timedelta(days=1)),
      doc(3, "qp_release_plan")], (), ()),  # one without an expiry never lapses
    # Documents of kinds the lane does not require change nothing.
    ([doc(1, "invoice", ARRIVAL - timedelta(days=9))], ("import_license", "qp_release_plan"), ()),
])
def test_documents(docs: list[Doc], missing: tuple[str, ...], expired: tuple[Lapse, ...]) -> None:
    judged = judge(["import_license", "qp_release_plan"], docs, expected_arrival=ARRIVAL,
                   packaging_id=PKG, requalified_until=None)
    assert (judged.missing, judged.expired, judged.ready) == (
        missing, expired, not missing and not expired)


@pytest.mark.parametrize(("until", "lapsed"), [
    (date(2026, 11, 21), False),   # qualified through the arrival's day
    (date(2026, 11, 20), True),    # ends the day before: lapses at midnight, before arrival
    (None, False),
])
def test_packaging_requalification(until: date | None, lapsed: bool) -> None:
    judged = judge([], [], expected_arrival=ARRIVAL, packaging_id=PKG, requalified_until=until)
    expected = (Lapse("packaging_requalification", datetime(2026, 11, 21, tzinfo=UTC),
                      packaging_id=PKG, requalified_until=until),) if lapsed else ()
    assert judged.expired == expected
    assert judged.ready is not lapsed


def test_naive_arrival_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        judge([], [], expected_arrival=datetime(2026, 11, 21), packaging_id=PKG,  # noqa: DTZ001
              requalified_until=None)


kinds = st.sampled_from(["a", "b", "c"])
moments = st.one_of(st.none(), st.integers(-72, 72).map(lambda h: ARRIVAL + timedelta(hours=h)))


@given(st.lists(kinds, unique=True), st.lists(st.tuples(kinds, moments), max_size=6))
def test_every_required_kind_is_exactly_one_of_ok_missing_expired(
    required: list[str], raw: list[tuple[str, datetime | None]]
) -> None:
    docs = [doc(i, k, e) for i, (k, e) in enumerate(raw)]
    judged = judge(required, docs, expected_arrival=ARRIVAL, packaging_id=PKG,
                   requalified_until=None)
    lapsed = {e.kind for e in judged.expired}
    assert not set(judged.missing) & lapsed
    for kind in required:
        of_kind = [d for d in docs if d.kind == kind]
        valid = any(d.expires_at is None or d.expires_at >= ARRIVAL for d in of_kind)
        assert (kind in judged.missing) == (not of_kind)
        assert (kind in lapsed) == (bool(of_kind) and not valid)
    # A later arrival never makes a shipment more ready.
    later = judge(required, docs, expected_arrival=ARRIVAL + timedelta(hours=1),
                  packaging_id=PKG, requalified_until=None)
    assert judged.ready or not later.ready
