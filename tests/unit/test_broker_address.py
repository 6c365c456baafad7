"""One broker URL parser for settings, readiness, ingest and simulators."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.broker import BrokerAddress
from app.core.settings import Settings


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://127.0.0.1:1884", BrokerAddress("127.0.0.1", 1884, False)),
    ("mqtt://broker", BrokerAddress("broker", 1883, False)),
    ("tcp://broker", BrokerAddress("broker", 1883, False)),
    ("mqtts://broker", BrokerAddress("broker", 8883, True)),
    ("SSL://broker:9883", BrokerAddress("broker", 9883, True)),
    ("mqtts://u%40x:p%3Aw@broker.example", BrokerAddress("broker.example", 8883, True, "u@x", "p:w")),
    ("mqtt://ingest@[::1]:1883", BrokerAddress("::1", 1883, False, "ingest")),
    (" mqtt://broker:1883 ", BrokerAddress("broker", 1883, False)),
])
def test_broker_urls(url: str, expected: BrokerAddress) -> None:
    assert BrokerAddress.parse(url) == expected


@pytest.mark.parametrize(("url", "problem"), [
    ("http://broker:1883", "must be an mqtt:// or mqtts:// URL"),
    ("broker:1883", "must be an mqtt:// or mqtts:// URL"),
    ("mqtt://", "names no broker host"),
    ("mqtt://:1883", "names no broker host"),
    ("mqtt://broker:port", "invalid port"),
    ("mqtt://broker:70000", "invalid port"),
])
def test_what_is_wrong_is_said(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        BrokerAddress.parse(url)
    with pytest.raises(ValidationError, match=problem):  # and the service refuses to start
        Settings(mqtt_url=url)


def test_the_password_stays_out_of_logs() -> None:
    address = BrokerAddress.parse("mqtts://ingest:s3cret@broker:8883")
    assert address.password == "s3cret"
    assert "s3cret" not in repr(address) and str(address) == "broker:8883"
