"""The notification mail (pure): subject, both parts, escaping, the link; SMTP URLs; which events
are mailed; which SMTP failures are permanent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default

import aiosmtplib
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.mail.compose import Notice, build, notice_from_json, notice_to_json, subject
from alerts.mail.delivery import classify
from alerts.mail.outbox import notified
from app.core.settings import Settings
from app.core.smtp import SmtpAddress

T = datetime(2026, 11, 25, 14, 3, tzinfo=UTC)
SID = "0b7c5f7e-3f57-4a5a-9c43-0d6c1f1a2b3c"


def notice(**over: object) -> Notice:
    values: dict[str, object] = {
        "event": "opened", "shipment_id": SID, "kind": "temperature_high", "severity": "critical",
        "previous_severity": None, "reference": "SHP-1042", "message": "Temperature above range",
        "condition_since": T, "retroactive": False, "peak_c": 12.5, "temp_min_c": 2.0,
        "temp_max_c": 8.0, "critical_max_c": 15.0, "hold_deadline": T + timedelta(hours=40),
        "expected_arrival": T + timedelta(hours=10), "margin_h": 30.0, "budget_left_s": 4500.0,
    }
    values.update(over)
    return Notice(**values)  # type: ignore[arg-type]


def test_subject_names_severity_kind_and_reference() -> None:
    assert subject(notice()) == (
        "[CRITICAL] SHP-1042: Temperature above range (temperature_high): alert opened")
    assert subject(notice(event="escalated")) == (
        "[CRITICAL] SHP-1042: Temperature above range (temperature_high): alert escalated")
    assert subject(notice(event="severity_raised", previous_severity="warning")) == (
        "[CRITICAL] SHP-1042: Temperature above range (temperature_high): severity raised")


def test_the_mail_has_a_text_and_an_html_part_with_the_facts_and_the_link() -> None:
    msg = build(notice(), sender="coldchain@example.org", to=["qp@example.org"],
                message_id="<abc@example.org>", date=T, base_url="https://cc.example.org/")
    parsed = message_from_bytes(msg.as_bytes(), policy=default)
    # Unfolded (RFC 5322 2.2.3): a long Subject is folded right after the colon.
    assert parsed["Subject"].strip() == subject(notice())
    assert (parsed["From"], parsed["To"], parsed["Message-ID"]) == (
        "coldchain@example.org", "qp@example.org", "<abc@example.org>")
    assert parsed["Date"] == "Wed, 25 Nov 2026 14:03:00 +0000"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    link = f"https://cc.example.org/#/shipments/{SID}"
    assert text.splitlines() == [
        "Event:     Alert opened",
        "Shipment:  SHP-1042",
        "Alert:     Temperature above range (temperature_high)",
        "Severity:  critical",
        "What:      Temperature above range",
        "Since:     2026-11-25 14:03 UTC (device time)",
        "Values:    peak 12.5 °C; range 2 to 8 °C; critical above 15 °C",
        "Time left: hold-time margin 30.0 h (deadline 2026-11-27 06:03 UTC, expected arrival "
        "2026-11-26 00:03 UTC); stability budget left 1 h 15 min",
        "",
        f"Open the shipment: {link}",
    ]
    assert f'<a href="{link}">Open shipment SHP-1042</a>' in page
    assert "<th align=\"left\" valign=\"top\">Time left</th>" in page


def test_html_is_escaped_and_unknown_values_are_left_out() -> None:
    n = notice(reference="<b>SHP & co</b>", message="peak \"hot\" <script>", peak_c=None,
               temp_min_c=None, temp_max_c=None, critical_max_c=None, margin_h=None,
               hold_deadline=None, budget_left_s=None, retroactive=True,
               event="severity_raised", previous_severity="warning")
    msg = build(n, sender="a@b.c", to=["d@e.f"], message_id="<x@b.c>", date=T, base_url="http://h")
    page = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;SHP &amp; co&lt;/b&gt;" in page and "<b>SHP" not in page
    assert "Values" not in text and "Time left" not in text
    assert "Event:    Severity raised from warning to critical" in text
    assert "(device time), found in late data" in text


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        notice(condition_since=T.replace(tzinfo=None))
    with pytest.raises(ValueError, match="not a notified event"):
        notice(event="resolved")


@given(st.builds(
    notice, margin_h=st.none() | st.floats(-1000, 1000), peak_c=st.none() | st.floats(-200, 100),
    retroactive=st.booleans(), budget_left_s=st.none() | st.floats(0, 1e7),
    reference=st.text(min_size=1, max_size=40)))
def test_a_notice_survives_its_stored_form(n: Notice) -> None:
    assert notice_from_json(notice_to_json(n)) == n


@pytest.mark.parametrize(("event_type", "data", "expected"), [
    ("opened", {"severity": "warning"}, ("opened", None)),
    ("escalated", {"severity": "critical"}, ("escalated", None)),
    ("updated", {"changes": {"severity": ["warning", "critical"]}}, ("severity_raised", "warning")),
    ("updated", {"changes": {"severity": ["info", "warning"]}}, ("severity_raised", "info")),
    ("updated", {"changes": {"severity": ["critical", "warning"]}}, None),  # lowered
    ("updated", {"changes": {"peak_c": [9.0, 10.0]}}, None),
    ("updated", None, None),
    ("acknowledged", {"severity": "critical"}, None),
    ("resolved", {"severity": "critical"}, None),
])
def test_which_events_are_mailed(
    event_type: str, data: dict[str, object] | None, expected: tuple[str, str | None] | None
) -> None:
    assert notified(event_type, data) == expected


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://mail.example.org", SmtpAddress("mail.example.org", 25, "plain")),
    ("smtp+starttls://u%40x:p%3Aw@mail.example.org", SmtpAddress("mail.example.org", 587, "starttls",
                                                                 "u@x", "p:w")),
    ("smtps://mail.example.org:2465", SmtpAddress("mail.example.org", 2465, "tls")),
    ("SMTPS://[::1]", SmtpAddress("::1", 465, "tls")),
])
def test_smtp_urls(url: str, expected: SmtpAddress) -> None:
    parsed = SmtpAddress.parse(url)
    assert parsed == expected and parsed.password == expected.password
    assert "p:w" not in repr(parsed)


@pytest.mark.parametrize(("url", "error"), [
    ("http://mail.example.org", "smtp://, smtp\\+starttls:// or smtps://"),
    ("smtp://", "names no mail server"),
    ("smtp://h:99999", "invalid port"),
    ("smtp://user@h", "without a password"),
])
def test_bad_smtp_urls(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SmtpAddress.parse(url)


def test_settings_need_a_sender_with_a_mail_server() -> None:
    with pytest.raises(ValueError, match="COLDCHAIN_MAIL_FROM"):
        Settings(smtp_url="smtp://127.0.0.1")
    settings = Settings(smtp_url="smtp://127.0.0.1", mail_from="cc@example.org",
                        public_url="https://cc.example.org/")
    assert settings.smtp == SmtpAddress("127.0.0.1", 25, "plain")
    assert settings.dashboard_url == "https://cc.example.org"
    assert Settings().smtp is None and Settings().dashboard_url == "http://127.0.0.1:8000"
    with pytest.raises(ValueError, match="COLDCHAIN_PUBLIC_URL"):
        Settings(public_url="cc.example.org")


@pytest.mark.parametrize(("exc", "expected"), [
    (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown", "x")]),
     ("rejected", 550, "550 5.1.1 unknown")),
    (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(451, "4.3.0 later", "x")]),
     ("deferred", 451, "451 4.3.0 later")),
    (aiosmtplib.SMTPDataError(554, "5.7.1 spam"), ("rejected", 554, "554 5.7.1 spam")),
    (aiosmtplib.SMTPSenderRefused(452, "4.3.1 full", "a@b"), ("deferred", 452, "452 4.3.1 full")),
    # Failures of the session, not of the message: retried, whatever the code.
    (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"),
     ("connection_error", 535, "SMTPAuthenticationError: 535 5.7.8 bad credentials")),
    (aiosmtplib.SMTPConnectError("refused"), ("connection_error", None, "SMTPConnectError: refused")),
    (aiosmtplib.SMTPServerDisconnected("gone"),
     ("connection_error", None, "SMTPServerDisconnected: gone")),
    (aiosmtplib.SMTPReadTimeoutError("slow"), ("timeout", None, "SMTPReadTimeoutError: slow")),
    (ConnectionRefusedError(111, "Connection refused"),
     ("connection_error", None, "ConnectionRefusedError: [Errno 111] Connection refused")),
])
def test_permanent_and_temporary_failures(
    exc: BaseException, expected: tuple[str, int | None, str]
) -> None:
    assert classify(exc) == expected
