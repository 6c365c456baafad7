"""Pure webhook policy: backoff schedule and give-up, endpoint disabling, subscription matching, URLs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.webhooks import retry
from alerts.webhooks.outbox import Target, matches
from alerts.webhooks.urls import UnsafeUrl, address_problem, check_syntax, check_url, endpoint_key

T = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("failures", "nominal"),
    [(1, 5), (2, 30), (3, 120), (4, 600), (5, 1800), (6, 3600), (7, 10800), (20, 10800)],
)
def test_backoff_schedule_and_jitter_bounds(failures: int, nominal: int) -> None:
    assert retry.retry_delay(failures, 0.5) == timedelta(seconds=nominal)
    assert retry.retry_delay(failures, 0.0) == timedelta(seconds=nominal * 0.8)
    assert retry.retry_delay(failures, 0.999999) < timedelta(seconds=nominal * 1.2)


@given(st.lists(st.floats(min_value=0, max_value=0.999999), min_size=40, max_size=40))
def test_a_failing_delivery_is_retried_for_at_least_24_hours_then_given_up(
    jitters: list[float]
) -> None:
    scheduled = failed = T
    attempts = 0
    while True:
        attempts += 1
        next_at = retry.next_attempt_at(
            failures=attempts, scheduled_at=scheduled, failed_at=failed, jitter=jitters[attempts]
        )
        if next_at is None:
            break
        assert next_at > failed
        failed = next_at
    assert failed - scheduled >= retry.GIVE_UP_AFTER
    assert failed - scheduled < retry.GIVE_UP_AFTER + retry.STEADY_DELAY * 1.2
    assert 12 <= attempts <= 17


def test_settle_an_attempt_into_the_next_state() -> None:
    t0 = datetime(2026, 11, 25, 12, tzinfo=UTC)

    def never() -> float:
        raise AssertionError("no retry is computed for a final outcome")

    def settle(
        *, ok: bool = False, permanent: bool = False, failures: int = 1,
        finished_at: datetime = t0, jitter: Callable[[], float] = lambda: 0.5,
    ) -> tuple[str, datetime | None]:
        return retry.settle(ok=ok, permanent=permanent, failures=failures, scheduled_at=t0,
                            finished_at=finished_at, jitter=jitter)

    assert settle(ok=True, jitter=never) == ("delivered", None)
    assert settle(permanent=True, jitter=never) == ("failed", None)
    assert settle() == ("pending", t0 + timedelta(seconds=5))
    assert settle(failures=9, finished_at=t0 + retry.GIVE_UP_AFTER) == ("failed", None)


def test_invalid_policy_inputs() -> None:
    with pytest.raises(ValueError):
        retry.retry_delay(0, 0.5)
    with pytest.raises(ValueError):
        retry.retry_delay(1, 1.0)
    with pytest.raises(ValueError):
        retry.next_attempt_at(failures=1, scheduled_at=T.replace(tzinfo=None), failed_at=T,
                              jitter=0.5)


@pytest.mark.parametrize(
    ("status", "ok"), [(200, True), (204, True), (299, True), (301, False), (404, False),
                       (500, False), (None, False), (199, False)],
)
def test_only_2xx_is_success(status: int | None, ok: bool) -> None:
    assert retry.is_success(status) is ok


def test_endpoint_disabled_only_after_a_long_streak_of_many_failures() -> None:
    long_ago = T - retry.DISABLE_AFTER
    assert retry.should_disable(failing_since=long_ago, consecutive_failures=10, now=T)
    assert not retry.should_disable(failing_since=long_ago, consecutive_failures=9, now=T)
    assert not retry.should_disable(
        failing_since=T - retry.DISABLE_AFTER + timedelta(seconds=1), consecutive_failures=99, now=T
    )
    assert not retry.should_disable(failing_since=None, consecutive_failures=99, now=T)


def test_the_lease_outlasts_the_queue_wait_and_the_attempt() -> None:
    assert retry.lease_for(timeout_s=10, rounds=4) > timedelta(seconds=2 * 4 * 10)


SITE_A, SITE_B, SITE_C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


@pytest.mark.parametrize(
    ("site", "kinds", "min_severity", "kind", "severity", "expected"),
    [
        (None, None, "info", "shock", "info", True),
        (SITE_A, None, "info", "shock", "info", True),  # origin
        (SITE_B, None, "info", "shock", "info", True),  # destination
        (SITE_C, None, "info", "shock", "info", False),  # another site's shipment
        (None, ("temperature_high",), "info", "shock", "critical", False),
        (None, ("temperature_high", "shock"), "info", "shock", "warning", True),
        (None, None, "warning", "shock", "info", False),
        (None, None, "warning", "shock", "warning", True),
        (None, None, "critical", "shock", "warning", False),
        (None, None, "critical", "temperature_critical", "critical", True),
    ],
)
def test_subscription_matching(
    site: uuid.UUID | None, kinds: tuple[str, ...] | None, min_severity: str, kind: str,
    severity: str, expected: bool,
) -> None:
    target = Target(uuid.uuid4(), site, kinds, min_severity)
    assert matches(
        target, kind=kind, severity=severity, origin_site_id=SITE_A, destination_site_id=SITE_B
    ) is expected


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/x", "file:///etc/passwd", "javascript:alert(1)", "http://", "example.org",
     "https://user:pw@example.org/", "https://example.org/#frag", "http://example.org:99999/",
     "http://exa mple.org/", "https://example.org/\n", "http://" + "a" * 2050 + ".org/"],
)
def test_syntax_refusals(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_syntax(url)


@pytest.mark.parametrize(
    ("address", "problem"),
    [("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
     ("10.0.0.8", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
     ("169.254.169.254", "link-local"), ("fe80::1%eth0", "link-local"), ("fd00::1", "private"),
     ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
     ("100.64.0.1", "not globally routable"), ("93.184.216.34", None),
     ("2606:4700:4700::1111", None), ("2002:7f00:1::1", "6to4 mapping of loopback"),
     ("2002:c0a8:101::", "6to4 mapping of private"), ("2002:5db8:d822::1", None),
     ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo mapping of loopback"),
     ("64:ff9b::a00:1", "NAT64 mapping of private")],
)
def test_address_classification(address: str, problem: str | None) -> None:
    assert address_problem(address) == problem


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/", "http://10.1.2.3/",
     "http://169.254.169.254/latest/meta-data", "http://2130706433/", "http://0x7f.1/",
     "http://[::ffff:7f00:1]/", "http://[2002:a00:1::1]/", "http://nothing-here.invalid/"],
)
async def test_private_and_unresolvable_targets_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await check_url(url, allow_private=False)
    if not url.endswith(".invalid/"):
        await check_url(url, allow_private=True)  # tests and the demo allow loopback


async def test_public_address_is_accepted() -> None:
    await check_url("https://93.184.216.34/hooks?x=1", allow_private=False)


def test_endpoint_key_normalises_default_ports_and_case() -> None:
    assert endpoint_key("HTTPS://Example.ORG/a") == endpoint_key("https://example.org:443/b")
    assert endpoint_key("http://example.org/") != endpoint_key("http://example.org:8080/")


def test_valid_syntax() -> None:
    assert check_syntax("https://example.org/x?y=1").hostname == "example.org"
    assert check_syntax("http://[2001:db8::1]:8443/").port == 8443
