"""Audit checkpoints: the verified head, to the log and signed to the operator's receiver; a rewrite
between checkpoints is reported at the next one, and every one after."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from standardwebhooks import Webhook

from alerts.checkpoints import Checkpointer, _Leadership, publish, run_checkpoints
from alerts.webhooks.delivery import DeliveryConfig, make_client, post_signed
from alerts.webhooks.signing import new_secret
from app.core.db import make_sessionmaker, plain_url
from app.core.settings import Settings
from simulators.receiver import Receiver
from tests.db import audit_support as chain


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver([new_secret()]) as r:
        yield r


def _live(settings: Settings, receiver: Receiver, **over: Any) -> Settings:
    return settings.model_copy(update={"audit_checkpoint_url": receiver.url("/checkpoints"),
                                       "audit_checkpoint_secret": receiver.secrets[0], **over})


async def _publish(checkpointer: Checkpointer, settings: Settings) -> str:
    async with make_client(DeliveryConfig(allow_private=True)) as client:

        async def send(*args: Any) -> str | None:
            return await post_signed(client, *args)

        return await publish(await checkpointer.take(), settings, send)


async def test_checkpoints_publish_the_verified_head_signed_and_catch_a_later_rewrite(
    db: AsyncSession, engine: AsyncEngine, owner_engine: AsyncEngine, settings: Settings,
    receiver: Receiver, caplog: pytest.LogCaptureFixture,
) -> None:
    live = _live(settings, receiver)
    checkpointer = Checkpointer(make_sessionmaker(engine))
    await chain.append(engine, 3)
    before = int(time.time())  # whole seconds, as the webhook timestamp
    with caplog.at_level(logging.INFO, logger="alerts.checkpoints"):
        assert await _publish(checkpointer, live) == "published"
    after = time.time()
    first = await chain.head(engine)
    (request,) = receiver.requests
    payload = Webhook(receiver.secrets[0]).verify(request.body, request.headers)  # signed, fresh
    assert payload["type"] == "audit.checkpoint"
    taken = datetime.fromisoformat(payload["timestamp"]).timestamp()
    assert before <= taken <= after and before <= request.timestamp <= after  # this publication
    data = payload["data"]
    assert (data["ok"], data["head_id"], data["head_hash"], data["verified_records"]) == (
        True, 3, first.hash.hex(), 3)
    assert data["previous_head_id"] is None
    assert f"audit checkpoint: head #3 sha256 {first.hash.hex()}" in caplog.text

    await chain.append(engine, 2, start=10)
    assert await _publish(checkpointer, live) == "published"
    second = json.loads(receiver.requests[1].body)["data"]
    assert (second["head_id"], second["verified_records"]) == (5, 2)  # only the new ones walked
    assert (second["previous_head_id"], second["previous_head_hash"]) == (3, first.hash.hex())

    # Between checkpoints the owner rewrites the trail so that it verifies on its own.
    await chain.rehash(owner_engine, rewrite=2)
    assert (await chain.verify(engine)).ok
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="alerts.checkpoints"):
        for _ in range(2):  # reported again and again, not once
            assert await _publish(checkpointer, live) == "broken"
    for request in receiver.requests[2:]:
        data = json.loads(request.body)["data"]
        assert (data["ok"], data["broken_id"], data["previous_head_id"]) == (False, 5, 5)
        assert data["problem"].startswith("record #5 no longer has the kept hash")
    assert caplog.text.count("audit checkpoint: chain BROKEN at record #5") == 2
    assert len({r.webhook_id for r in receiver.requests}) == 4


async def test_without_a_url_checkpoints_go_to_the_log_and_an_undelivered_one_is_counted(
    db: AsyncSession, engine: AsyncEngine, settings: Settings, receiver: Receiver,
) -> None:
    checkpointer = Checkpointer(make_sessionmaker(engine))
    assert await _publish(checkpointer, settings) == "logged"
    receiver.fail_next("503")
    assert await _publish(checkpointer, _live(settings, receiver)) == "failed"
    await receiver.refuse()
    assert await _publish(checkpointer, _live(settings, receiver)) == "failed"


async def test_one_alerts_worker_publishes_and_another_takes_over_when_it_goes(
    db: AsyncSession, engine: AsyncEngine, settings: Settings, receiver: Receiver,
) -> None:
    dsn = plain_url(settings.database_url or "")
    first, second = _Leadership(dsn), _Leadership(dsn)
    try:
        assert await first.check() and not await second.check()
        assert await first.check() and not await second.check()  # held, not stacked
        await first.close()
        assert await second.check() and not await first.check()
    finally:
        await first.close()
        await second.close()

    live = _live(settings, receiver, audit_checkpoint_interval_s=0.05)
    await chain.append(engine, 2)
    stop = asyncio.Event()
    workers = [asyncio.create_task(run_checkpoints(live, stop)) for _ in range(2)]
    await receiver.wait_delivered(3)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*workers), 10)
    publishers = {json.loads(r.body)["data"]["publisher"] for r in receiver.requests}
    assert len(publishers) == 1  # both ran; only the leader published


def test_a_checkpoint_url_needs_a_signing_secret() -> None:
    with pytest.raises(ValidationError, match="COLDCHAIN_AUDIT_CHECKPOINT_SECRET"):
        Settings(audit_checkpoint_url="https://audit.example/checkpoints")
    Settings(audit_checkpoint_url="https://audit.example/checkpoints",
             audit_checkpoint_secret=new_secret())
