"""SSRF: a rebinding DNS answer, private addresses among public ones, 6to4, TLS name, echoed bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts.webhooks.delivery import DeliveryConfig, _deliver_due, make_client
from alerts.webhooks.urls import UnsafeUrl
from app.core.db import make_sessionmaker
from app.core.models import WebhookAttempt, WebhookDelivery
from simulators.receiver import Receiver
from tests import factories
from tests.net_support import PUBLIC_IP, FakeInternet, self_signed
from tests.webhooks_support import PATIENT, open_alert, shipment, subscribe

STRICT = DeliveryConfig()  # the production defaults: private targets refused, 10 s an attempt
NAME = "hooks.rebind.test"


@pytest.fixture
async def internal() -> AsyncIterator[Receiver]:
    """A service on loopback that must never be reached from a site's webhook URL."""
    async with Receiver(error_body=b"root:x:0:0:internal secret") as r:
        yield r


@pytest.fixture
async def public() -> AsyncIterator[Receiver]:
    """The site's receiver, served locally but standing for PUBLIC_IP."""
    async with Receiver(error_body=b"maintenance until 10:00") as r:
        yield r


async def _deliver(engine: AsyncEngine, config: DeliveryConfig, net: FakeInternet | None) -> int:
    """One cycle with a fresh client (a new connection, so a new lookup)."""
    kwargs: dict[str, Any] = {"resolver": net.resolve, "connector": net} if net else {}
    async with make_client(config, **kwargs) as http:
        return await _deliver_due(
            make_sessionmaker(engine), http, datetime.now(UTC), config=config, jitter=lambda: 0.5
        )


async def _attempts(db: AsyncSession) -> list[WebhookAttempt]:
    stmt = select(WebhookAttempt).order_by(WebhookAttempt.id)
    return list(await db.scalars(stmt.execution_options(populate_existing=True)))


async def _shipment(client: httpx.AsyncClient) -> dict[str, Any]:
    origin = await factories.site(client, "Leiden CTU", "NL")
    destination = await factories.site(client, "Boston infusion centre", "US")
    return await shipment(client, origin, destination, "SHP-1")


async def test_a_rebinding_answer_never_reaches_the_internal_service(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, internal: Receiver,
    public: Receiver,
) -> None:
    # The attacker's name answers a public address first, then loopback (a zero TTL is enough).
    net = FakeInternet([[PUBLIC_IP], ["127.0.0.1"]], {PUBLIC_IP: public.port})
    ship = await _shipment(client)
    sub = await subscribe(client, f"http://{NAME}:{internal.port}/hooks")
    public.secrets.append(sub["secret"])

    await open_alert(db, ship["id"])
    assert await _deliver(engine, STRICT, net) == 1
    # One lookup per connection, and the connection went to the address that lookup checked.
    assert net.lookups == [NAME] and net.connects == [(PUBLIC_IP, internal.port)]
    (received,) = public.requests
    assert received.verified and received.headers["host"] == f"{NAME}:{internal.port}"

    await open_alert(db, ship["id"], kind="shock")
    assert await _deliver(engine, STRICT, net) == 1
    assert net.lookups == [NAME, NAME] and len(net.connects) == 1  # refused before any connect
    assert internal.requests == [] and len(public.requests) == 1
    first, second = await _attempts(db)
    assert (first.status_code, first.error) == (200, None)
    assert second.status_code is None
    assert second.error == (f"'{NAME}' resolves to a non-public address (loopback); "
                            "set COLDCHAIN_WEBHOOK_ALLOW_PRIVATE=true to allow such targets")
    rows = list(await db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))
    assert [r.state for r in rows] == ["delivered", "pending"]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [([PUBLIC_IP, "10.0.0.5"], "private"),
     (["2606:4700:4700::1111", "fd00::5"], "private"),
     (["2002:7f00:1::1"], "6to4 mapping of loopback"),
     (["2002:a9fe:a9fe::"], "6to4 mapping of link-local"),
     (["::ffff:169.254.169.254"], "link-local")],
)
async def test_any_private_answer_refuses_the_host_before_connecting(
    answer: list[str], problem: str
) -> None:
    net = FakeInternet([answer], {})
    async with make_client(STRICT, resolver=net.resolve, connector=net) as http:
        with pytest.raises(UnsafeUrl) as refused:
            await http.post(f"https://{NAME}/hooks", content=b"{}")
    assert f"resolves to a non-public address ({problem});" in str(refused.value)
    assert net.connects == []


async def test_https_connects_to_the_checked_address_with_the_name_as_sni_and_host(
    tmp_path: Path,
) -> None:
    server_tls, client_tls = self_signed(tmp_path, NAME)
    server_names: list[str | None] = []
    server_tls.sni_callback = lambda _sock, name, _ctx: server_names.append(name)  # type: ignore[assignment]
    async with Receiver(tls=server_tls) as site:
        net = FakeInternet([[PUBLIC_IP]], {PUBLIC_IP: site.port})
        async with make_client(STRICT, resolver=net.resolve, connector=net, verify=client_tls) as http:
            response = await http.post(f"https://{NAME}:8443/hooks", content=b"{}")
    assert response.status_code == 200
    assert net.connects == [(PUBLIC_IP, 8443)]
    assert server_names == [NAME]  # the certificate was verified against the name, not the IP
    (received,) = site.requests
    assert received.headers["host"] == f"{NAME}:8443"


async def test_the_error_body_of_an_internal_target_is_never_echoed(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, internal: Receiver,
) -> None:
    ship = await _shipment(client)
    sub = await subscribe(client, internal.url())  # allowed here (COLDCHAIN_WEBHOOK_ALLOW_PRIVATE)
    internal.fail_next("500")
    await open_alert(db, ship["id"])
    assert await _deliver(engine, PATIENT, None) == 1
    assert len(internal.requests) == 1  # it answered with its body, which stays out of the log
    deliveries = await client.get(f"/api/v1/webhooks/{sub['id']}/deliveries")
    (delivery,) = deliveries.json()["items"]
    assert delivery["last_error"] == "HTTP 500"
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 500"]


async def test_the_error_body_of_a_public_target_is_shown_to_its_site(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, public: Receiver,
) -> None:
    ship = await _shipment(client)
    sub = await subscribe(client, f"http://{NAME}/hooks")
    public.fail_next("503")
    net = FakeInternet([[PUBLIC_IP]], {PUBLIC_IP: public.port})
    await open_alert(db, ship["id"])
    assert await _deliver(engine, STRICT, net) == 1
    deliveries = await client.get(f"/api/v1/webhooks/{sub['id']}/deliveries")
    (delivery,) = deliveries.json()["items"]
    assert delivery["last_error"] == "HTTP 503: maintenance until 10:00"
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 503: maintenance until 10:00"]
