"""Failed authentications are throttled per client address; valid keys never are; weak admin keys
are refused at start-up."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.api.main import create_app
from app.core.settings import Settings
from tests.api.keys import bearer, make_key
from tests.conftest import ADMIN_KEY
from tests.live_server import running

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _bogus() -> dict[str, str]:
    return bearer(f"cc_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}")


@pytest.fixture
async def app_and_clock(
    db: AsyncSession, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[tuple[object, Clock]]:
    app = create_app(settings.model_copy(update={"auth_failure_burst": 5,
                                                 "auth_failure_per_min": 6}), engine=engine)
    clock = Clock()
    app.state.monotonic = clock
    yield app, clock


def _from(app: object, address: str, **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000),  # type: ignore[arg-type]
                                    raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)


async def test_failed_authentications_are_throttled_per_address_without_locking_out_valid_keys(
    app_and_clock: tuple[object, Clock],
) -> None:
    app, clock = app_and_clock
    async with _from(app, "192.0.2.1", **bearer(ADMIN_KEY)) as admin:
        coordinator = await make_key(admin, "coordinator")
    async with _from(app, "198.51.100.7") as attacker, _from(app, "203.0.113.9") as neighbour:
        statuses = [(await attacker.get("/api/v1/sites", headers=_bogus())).status_code
                    for _ in range(6)]
        assert statuses == [401] * 5 + [429]
        throttled = await attacker.get("/api/v1/sites", headers=_bogus())
        assert throttled.status_code == 429
        assert throttled.headers["retry-after"] == "10"  # one failure back every 10 s (6 a minute)
        assert throttled.headers["content-type"] == "application/problem+json"
        assert throttled.json()["detail"] == (
            "too many failed authentications from this address: retry in 10 s"
        )
        # Valid keys from the same address are served as ever, and do not spend the budget.
        for key in (ADMIN_KEY, coordinator):
            assert (await attacker.get("/api/v1/sites", headers=bearer(key))).status_code == 200
        # Another address has its own budget; a request without any key is not a failed guess.
        assert (await neighbour.get("/api/v1/sites", headers=_bogus())).status_code == 401
        for _ in range(8):
            assert (await attacker.get("/api/v1/sites")).status_code == 401

        clock.now += 10  # one failure's worth of budget comes back
        assert (await attacker.get("/api/v1/sites", headers=_bogus())).status_code == 401
        assert (await attacker.get("/api/v1/sites", headers=_bogus())).status_code == 429


@pytest.mark.parametrize(("key", "accepted"),
                         [("k" * 31, False), ("k" * 32, True), (" " + "k" * 40, False), ("", True)])
def test_the_bootstrap_admin_key_must_be_long(key: str, accepted: bool) -> None:
    if accepted:
        assert Settings(admin_api_key=key).admin_api_key == (key or None)
    else:
        with pytest.raises(ValidationError, match="COLDCHAIN_ADMIN_API_KEY"):
            Settings(admin_api_key=key)


def test_the_suite_runs_with_an_acceptable_admin_key() -> None:
    assert Settings(admin_api_key=ADMIN_KEY).admin_api_key == ADMIN_KEY


def test_a_short_admin_key_stops_the_service_at_start_up(tmp_path: Path) -> None:
    env = {**os.environ, "COLDCHAIN_ADMIN_API_KEY": "changeme", "COLDCHAIN_DATA_DIR": str(tmp_path)}
    started = subprocess.run([sys.executable, "-m", "app.cli", "up"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 2
    assert started.stderr.strip() == (
        "error: configuration: COLDCHAIN_ADMIN_API_KEY must be at least 32 characters "
        "(e.g. the output of `openssl rand -base64 32`)"
    )
    assert not (tmp_path / "postgres").exists()  # refused before anything started


@pytest.mark.parametrize("trusted", ["127.0.0.1", ""])
async def test_behind_a_trusted_proxy_the_forwarded_client_address_counts(
    db: AsyncSession, settings: Settings, engine: AsyncEngine, trusted: str
) -> None:
    live = settings.model_copy(update={"auth_failure_burst": 2, "forwarded_allow_ips": trusted})
    async with running(live, engine) as base, httpx.AsyncClient(base_url=base) as proxy:

        async def failed(client_address: str) -> int:
            headers = {**_bogus(), "X-Forwarded-For": client_address}
            return (await proxy.get("/api/v1/sites", headers=headers)).status_code

        assert [await failed("198.51.100.1") for _ in range(3)] == [401, 401, 429]
        # Trusted: another client behind the proxy has its own budget. Untrusted: the header is
        # ignored and everyone behind the proxy shares one.
        assert await failed("198.51.100.2") == (401 if trusted else 429)
