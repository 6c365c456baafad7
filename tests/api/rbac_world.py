"""The RBAC matrix's world: site A (the site key's) and site B, each with a shipment and its data."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import make_sessionmaker
from app.core.models import (
    Alert,
    AlertEvent,
    MailDelivery,
    Reading,
    WebhookDelivery,
    WebhookSubscription,
    utcnow,
)
from tests import factories as f
from tests.api.keys import make_key
from tests.conftest import ADMIN_KEY


@dataclass
class World:
    """Ids of site A (the site key's, `own`) and site B (`other`), keys per role, leak markers."""

    own: dict[str, str] = field(default_factory=dict)
    other: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    # A person of each role: their email, and a session cookie ("coldchain_session=…").
    emails: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)
    hub_site: str = ""
    counter: int = 0
    taken: dict[str, int] = field(default_factory=dict)
    # Causes live events on the stream: the other site's shipment first, then the own site's.
    stream_trigger: Callable[[], Awaitable[None]] | None = None

    def next(self) -> int:
        self.counter += 1
        return self.counter

    def take(self, what: str) -> int:
        """1, 2, 3, … per kind of pre-made spare object (e.g. loggers free for a new shipment)."""
        self.taken[what] = self.taken.get(what, 0) + 1
        return self.taken[what]


def _alert_events(engine: AsyncEngine, alert_ids: list[uuid.UUID]) -> Callable[[], Awaitable[None]]:
    async def trigger() -> None:
        async with make_sessionmaker(engine)() as session:
            for alert_id in alert_ids:  # one commit: notified in this order
                session.add(AlertEvent(alert_id=alert_id, type="updated", data={}))
                await session.flush()
            await session.commit()

    return trigger


async def build_world(admin: httpx.AsyncClient, engine: AsyncEngine) -> World:
    w = World()
    site_a = await f.site(admin, "Amsterdam own-site", "NL")
    site_b = await f.site(admin, "Basel other-site", "CH")
    w.hub_site = await f.site(admin, "Hub", "BE")
    shipments = {}
    for side, site, logger in (("own", site_a, "LOG-OWN-1"), ("other", site_b, "LOG-THEIRS-9")):
        # Each site has its own reference data: the other site's must stay out of sight.
        label = "Amsterdam-only" if side == "own" else "Basel-only"
        product = await f.refrigerated_product(admin, name=f"{label} product")
        packaging = (await f.post(admin, "/packaging", {"name": f"{label} box",
                                                        "qualified_hold_h": 96}))["id"]
        lane = await f.lane(admin, site, w.hub_site, name=f"{label} lane")
        await f.logger(admin, logger)
        shipment = await f.post(admin, "/shipments", {
            "reference": f"SHP-{side.upper()}-7731", "lane_id": lane, "product_id": product,
            "packaging_id": packaging, "logger_ids": [logger], "packed_at": f.T0.isoformat()})
        shipments[side] = shipment["id"]
        ids = getattr(w, side)
        ids.update(site_id=site, lane_id=lane, product_id=product, packaging_id=packaging,
                   logger_id=logger, shipment_id=shipment["id"])
    await f.lane(admin, site_b, w.hub_site, name="Basel-spare lane")  # no shipment on it yet
    for side in ("own", "other"):
        ids = getattr(w, side)
        document = await admin.post(
            f"/api/v1/shipments/{ids['shipment_id']}/documents", data={"kind": "import_license"},
            files={"file": (f"{side}-licence.txt", f"licence of {side}".encode(), "text/plain")})
        assert document.status_code == 201, document.text
        ids["document_id"] = document.json()["id"]
    for n in range(1, 11):  # spare loggers for POST /shipments bodies
        await f.logger(admin, f"SPARE-{n}")
    await f.logger(admin, "LOG-DELIVERED")
    delivered = await f.post(admin, "/shipments", {
        "reference": "SHP-OWN-DELIVERED", "lane_id": w.own["lane_id"],
        "product_id": w.own["product_id"], "packaging_id": w.own["packaging_id"],
        "logger_ids": ["LOG-DELIVERED"], "packed_at": f.T0.isoformat(),
        "departed_at": (f.T0 + timedelta(hours=1)).isoformat()})
    delivery = await f.post(admin, f"/shipments/{delivered['id']}/events", {
        "type": "delivered", "at": (f.T0 + timedelta(hours=20)).isoformat()})
    w.own["delivered_shipment_id"] = delivered["id"]
    await f.logger(admin, "LOG-DELIVERED-2")
    second = await f.post(admin, "/shipments", {  # delivered too: released by the run by session
        "reference": "SHP-OWN-DELIVERED-2", "lane_id": w.own["lane_id"],
        "product_id": w.own["product_id"], "packaging_id": w.own["packaging_id"],
        "logger_ids": ["LOG-DELIVERED-2"], "packed_at": f.T0.isoformat(),
        "departed_at": (f.T0 + timedelta(hours=1)).isoformat()})
    await f.post(admin, f"/shipments/{second['id']}/events", {
        "type": "delivered", "at": (f.T0 + timedelta(hours=20)).isoformat()})
    w.own["delivered2_shipment_id"] = second["id"]
    await f.logger(admin, "LOG-FRESH")
    fresh = await f.post(admin, "/shipments", {  # packed, not departed: for a second run
        "reference": "SHP-OWN-FRESH", "lane_id": w.own["lane_id"],
        "product_id": w.own["product_id"], "packaging_id": w.own["packaging_id"],
        "logger_ids": ["LOG-FRESH"], "packed_at": f.T0.isoformat()})
    w.own["fresh_shipment_id"] = fresh["id"]
    w.own["event_id"] = delivery["id"]
    departure = await f.post(admin, f"/shipments/{shipments['other']}/events", {
        "type": "departed", "at": (f.T0 + timedelta(hours=1)).isoformat()})
    w.other["event_id"] = departure["id"]
    events: dict[str, tuple[uuid.UUID, int]] = {}
    async with make_sessionmaker(engine)() as session:
        now = utcnow()
        for side, site in (("own", site_a), ("other", site_b)):
            shipment_id = uuid.UUID(shipments[side])
            alert = Alert(shipment_id=shipment_id, kind="temperature_high", severity="warning",
                          state="open", opened_at=now, condition_since=f.T0)
            subscription = WebhookSubscription(url=f"https://{side}.example/hook", site_id=site,
                                               secret="whsec_" + "A" * 32)
            session.add_all([alert, subscription])
            session.add(Reading(logger_id=getattr(w, side)["logger_id"], ts=f.T0 + timedelta(
                minutes=5), shipment_id=shipment_id, temp_c=4.4242 if side == "own" else 7.7177,
                lat=52.0, lon=4.0, received_at=now))
            await session.flush()
            event = AlertEvent(alert_id=alert.id, type="opened", data={"kind": alert.kind})
            session.add(event)
            await session.flush()
            delivery = WebhookDelivery(
                subscription_id=subscription.id, alert_event_id=event.id, alert_id=alert.id,
                webhook_id=f"msg_{side}_{event.id}", event_type="alert.opened", body=b"{}",
                next_attempt_at=now)
            session.add(delivery)
            await session.flush()
            if side == "own":  # acknowledged and resolved by the run by session
                second = Alert(shipment_id=shipment_id, kind="temperature_low", severity="warning",
                               state="open", opened_at=now, condition_since=f.T0)
                session.add(second)
                await session.flush()
                w.own["alert2_id"] = str(second.id)
            events[side] = (alert.id, event.id)
            getattr(w, side).update(alert_id=str(alert.id), webhook_id=str(subscription.id),
                                    subscription_id=str(subscription.id),
                                    delivery_id=str(delivery.id))
        for role in ("admin", "coordinator", "site"):  # one to delete per role that may
            for suffix in (f"@{role}", f"@{role}@session"):  # by key, by session
                victim_sub = WebhookSubscription(url=f"https://victim-{role}.example/hook",
                                                 site_id=site_a, secret="whsec_" + "B" * 32)
                session.add(victim_sub)
                await session.flush()
                w.own[f"webhook_id{suffix}"] = str(victim_sub.id)
        await session.commit()
    w.keys = {"admin": ADMIN_KEY,
              "coordinator": await make_key(admin, "coordinator"),
              "qp": await make_key(admin, "qp"),
              "site": await make_key(admin, "site", site_a)}
    victim = (await admin.post("/api/v1/api-keys", json={"role": "qp", "name": "victim"})).json()
    w.own["key_id"] = w.other["key_id"] = victim["id"]
    person = await f.post(admin, "/users", {"email": "person@example.org", "name": "A Person",
                                            "role": "coordinator", "password": "river-otter-lamp-42"})
    w.own["user_id"] = w.other["user_id"] = person["id"]
    async with make_sessionmaker(engine)() as session, session.begin():
        alert_id, event_id = events["own"]
        mail = MailDelivery(user_id=uuid.UUID(person["id"]), alert_event_id=event_id,
                            alert_id=alert_id, event="opened", recipient="person@example.org",
                            subject="[WARNING] SHP-OWN", notice={}, next_attempt_at=utcnow())
        session.add(mail)
        await session.flush()
        w.own["mail_id"] = w.other["mail_id"] = str(mail.id)  # staff only: not site-scoped
    o = w.other
    w.markers = [o["shipment_id"], "SHP-OTHER-7731", o["logger_id"], o["alert_id"],
                 o["webhook_id"], o["delivery_id"], "other.example", "Basel other-site", "7.7177",
                 "msg_other_", o["event_id"], o["lane_id"], o["product_id"], o["packaging_id"], "Basel-only",
                 "Basel-spare"]
    w.stream_trigger = _alert_events(engine, [uuid.UUID(o["alert_id"]), uuid.UUID(w.own["alert_id"])])
    return w
