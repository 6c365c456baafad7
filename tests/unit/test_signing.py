"""Standard Webhooks signatures: the spec's vector, an independent implementation, the reference oracle."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from alerts.webhooks import signing

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def spec_sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Written from the spec, not from our code: key = base64 after `whsec_`, HMAC-SHA256, base64."""
    key = base64.b64decode(secret[len("whsec_"):])
    content = f"{msg_id}.{timestamp}.{body.decode()}".encode()
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def test_spec_vector() -> None:
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE
    assert spec_sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_spec_vector_with_the_reference_package() -> None:
    oracle = Webhook(SPEC_SECRET).sign(
        SPEC_ID, datetime.fromtimestamp(SPEC_TS, UTC), SPEC_BODY.decode()
    )
    assert oracle == SPEC_SIGNATURE


@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(min_size=1, max_size=64),
    msg_id=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                   max_size=40),
    timestamp=st.integers(min_value=0, max_value=2**32),
    body=st.text(max_size=300).map(str.encode),
)
def test_agrees_with_the_spec_and_the_oracle(
    key: bytes, msg_id: str, timestamp: int, body: bytes
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    ours = signing.sign(secret, msg_id, timestamp, body)
    assert ours == spec_sign(secret, msg_id, timestamp, body)
    assert ours == Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode()
    )
    assert signing.verify([secret], msg_id, timestamp, body, ours)
    assert not signing.verify([secret], msg_id, timestamp + 1, body, ours)


def test_headers_verify_with_the_oracle_and_carry_both_signatures_during_rotation() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = b'{"type":"alert.opened"}'
    now = signing.unix_timestamp(datetime.now(UTC))
    headers = signing.webhook_headers([new, old], "msg_x", now, body)
    assert headers["webhook-id"] == "msg_x" and headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].split(" ") == [
        spec_sign(new, "msg_x", now, body), spec_sign(old, "msg_x", now, body)
    ]
    # A receiver that knows either secret accepts the message.
    assert Webhook(new).verify(body, headers) == {"type": "alert.opened"}
    assert Webhook(old).verify(body, headers) == {"type": "alert.opened"}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    # Tampering with one byte breaks every signature.
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body.replace(b"opened", b"closed"), headers)


def test_new_secrets_are_whsec_with_32_random_bytes() -> None:
    secrets_ = {signing.new_secret() for _ in range(50)}
    assert len(secrets_) == 50
    for secret in secrets_:
        assert secret.startswith("whsec_")
        assert len(signing.secret_key(secret)) == 32


@pytest.mark.parametrize("bad", ["", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_###"])
def test_bad_secrets_are_refused(bad: str) -> None:
    with pytest.raises(signing.InvalidSecret):
        signing.sign(bad, "msg_1", 1, b"{}")


def test_unpadded_base64_secret_is_accepted_like_the_reference() -> None:
    key = b"0123456789abcdef0"  # 17 bytes: base64 needs padding
    unpadded = "whsec_" + base64.b64encode(key).decode().rstrip("=")
    assert signing.sign(unpadded, "m", 5, b"x") == Webhook(unpadded).sign(
        "m", datetime.fromtimestamp(5, UTC), "x"
    )


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        signing.unix_timestamp(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    assert signing.unix_timestamp(datetime(2021, 2, 25, 15, 2, 10, 900, tzinfo=UTC)) == SPEC_TS
