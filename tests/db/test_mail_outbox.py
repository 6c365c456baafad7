"""The mail outbox: rows written with the alert in its transaction, and who gets which event."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts import worker
from alerts.rules import EvalConfig
from app.core.db import make_sessionmaker
from app.core.models import AlertEvent, MailDelivery
from tests import factories
from tests.db.engine_support import Clock, alerts_of, at, round_, store
from tests.mail_support import alert_event, config, deliver, person
from tests.webhooks_support import T0, shipment


async def _mails(session: AsyncSession) -> list[MailDelivery]:
    stmt = select(MailDelivery).order_by(MailDelivery.recipient, MailDelivery.alert_event_id)
    return list(await session.scalars(stmt.execution_options(populate_existing=True)))


async def test_the_engine_writes_mail_rows_in_the_alerts_transaction_and_a_rollback_leaves_none(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    created = await factories.shipment_setup(client, departed_at=T0.isoformat(),
                                             product={"critical_max_c": 12.0})
    sid = str(created["id"])
    qp_id = (await person(db, "qp@example.org", "qp")).id
    await person(db, "nobody@example.org", notify=False)
    await store(engine, sid, "LOG-1", [(m, 15.0 if m >= 10 else 5.0) for m in range(0, 21, 5)])
    maker = make_sessionmaker(engine)
    async with maker() as session:
        async with session.begin():
            await worker.claim(session, now=at(21))
        tx = await session.begin()
        await worker.process_pending(session, now=at(21), config=EvalConfig())
        inside = await session.scalar(select(func.count()).select_from(MailDelivery))
        # Not committed: another worker's delivery cycle sees nothing to send.
        assert await deliver(engine, config(9)) == 0
        await tx.rollback()
    assert inside == 1
    assert await alerts_of(db, sid) == [] and await _mails(db) == []
    await round_(engine, Clock(at(21)))  # the same evaluation, committed
    alerts = {a.kind: a for a in await alerts_of(db, sid)}
    assert {k: a.severity for k, a in alerts.items()} == {"temperature_critical": "critical",
                                                          "temperature_high": "warning"}
    alert = alerts["temperature_critical"]
    (mail,) = await _mails(db)  # the qp wants critical ones only
    opened = await db.scalar(select(AlertEvent.id).where(AlertEvent.alert_id == alert.id,
                                                         AlertEvent.type == "opened"))
    assert (mail.user_id, mail.recipient, mail.alert_id, mail.alert_event_id, mail.event) == (
        qp_id, "qp@example.org", alert.id, opened, "opened")
    assert (mail.state, mail.attempts) == ("pending", 0)
    assert mail.subject == ("[CRITICAL] SHP-1: Temperature beyond a critical limit "
                            "(temperature_critical): alert opened")
    assert mail.notice["peak_c"] == 15.0 and mail.notice["critical_max_c"] == 12.0
    assert mail.notice["condition_since"] == at(10).isoformat()  # device time
    assert mail.notice["margin_h"] == 66.0  # packed T0 + 96 h hold − 30 h transit
    assert mail.notice["budget_left_s"] == 3600 - 11 * 60  # 10 → 21 min out of range


async def test_recipients_by_severity_and_by_what_their_site_may_see(
    client: httpx.AsyncClient, db: AsyncSession,
) -> None:
    sites = {name: await factories.site(client, name, "NL") for name in ("A", "B", "C")}
    a_to_b = (await shipment(client, sites["A"], sites["B"], "SHP-AB"))["id"]
    c_to_a = (await shipment(client, sites["C"], sites["A"], "SHP-CA"))["id"]
    people = {
        "site-a": await person(db, "a@example.org", "site", site_id=sites["A"], min_severity="info"),
        "site-b": await person(db, "b@example.org", "site", site_id=sites["B"]),
        "site-c": await person(db, "c@example.org", "site", site_id=sites["C"], min_severity="info"),
        "coord-warning": await person(db, "cw@example.org", min_severity="warning"),
        "coord-critical": await person(db, "cc@example.org"),  # the default: critical
        "qp-disabled": await person(db, "qp@example.org", "qp", min_severity="info",
                                    disabled=True),
        "admin-off": await person(db, "admin@example.org", "admin", notify=False),
    }
    events = {
        "AB warning opened": await alert_event(db, a_to_b, "opened", severity="warning"),
        "AB critical escalated": await alert_event(db, a_to_b, "escalated", severity="critical",
                                                kind="battery_low"),
        "CA raised to critical": await alert_event(
            db, c_to_a, "updated", severity="critical",
            data={"changes": {"severity": ["warning", "critical"]}}),
        "CA info opened": await alert_event(db, c_to_a, "opened", severity="info",
                                        kind="battery_low"),
        "CA critical acknowledged": await alert_event(db, c_to_a, "acknowledged", severity="critical",
                                                  kind="light_exposure"),
        "CA peak update": await alert_event(db, c_to_a, "updated", severity="critical",
                                       kind="route_deviation",
                                       data={"changes": {"peak_c": [9, 10]}}),
    }
    names = {p.id: name for name, p in people.items()}
    got: dict[str, set[str]] = {name: set() for name in events}
    labels = {e.id: name for name, e in events.items()}
    for mail in await _mails(db):
        got[labels[mail.alert_event_id]].add(names[mail.user_id])
    assert got == {
        "AB warning opened": {"site-a", "coord-warning"},
        "AB critical escalated": {"site-a", "site-b", "coord-warning", "coord-critical"},
        "CA raised to critical": {"site-a", "site-c", "coord-warning", "coord-critical"},
        "CA info opened": {"site-a", "site-c"},
        "CA critical acknowledged": set(),
        "CA peak update": set(),
    }
    raised = [m for m in await _mails(db) if m.event == "severity_raised"]
    assert {m.notice["previous_severity"] for m in raised} == {"warning"}
