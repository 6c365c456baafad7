"""The password policy (length, common list, guessability) and Argon2id hashing."""

from __future__ import annotations

import pytest

from app.core import passwords

CONTEXT = ("alice.martin@example.org", "Alice Martin")


@pytest.mark.parametrize(("password", "why"), [
    ("short-pass1", "must be at least 12 characters"),
    ("a" * 129, "must be at most 128 characters"),
    ("password1234", "is one of the most common passwords"),
    ("QWERTY123456", "is one of the most common passwords"),  # the list is case-insensitive
    ("1qaz2wsx3edc", "is one of the most common passwords"),
    ("aaaaaaaaaaaaaaaa", "is too easy to guess (repeats like \"aaa\" are easy to guess)"),
    ("alice.martin1", "is too easy to guess"),  # the account's own email
    ("coldchain2026!", "is too easy to guess"),  # the service's name
    ("river-otter-lamp-42", None),
    ("Tr0ub4dor&3-staple-horse", None),
    ("x7#Lq9!vRm2$pWz4" * 8, None),  # 128 characters: judged, not refused for length
])
def test_policy(password: str, why: str | None) -> None:
    assert passwords.weakness(password, CONTEXT) == why


def test_hash_is_argon2id_and_verifies_only_the_password() -> None:
    stored = passwords.hash_password_sync("river-otter-lamp-42")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify_password_sync(stored, "river-otter-lamp-42") is True
    assert passwords.verify_password_sync(stored, "river-otter-lamp-43") is False
    assert passwords.verify_password_sync("not a hash", "river-otter-lamp-42") is False
    assert passwords.hash_password_sync("river-otter-lamp-42") != stored  # salted
