"""Browser test fixtures: the Chromium binary and a live server on the test database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.settings import Settings
from tests.browser.pages import CHROMIUM
from tests.live_server import running


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_test_tools.py (Debian: "
                    "apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def live(
    settings: Settings, engine: AsyncEngine, db: AsyncSession, chromium: str
) -> AsyncIterator[str]:
    async with running(settings, engine) as url:
        yield url
