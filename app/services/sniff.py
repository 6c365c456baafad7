"""What a document's bytes are, from their magic numbers (never the client's word): the accepted
types are PDF, PNG, JPEG and plain UTF-8 text."""

from __future__ import annotations

import re

PDF, PNG, JPEG, TEXT = "application/pdf", "image/png", "image/jpeg", "text/plain; charset=utf-8"
ACCEPTED = (PDF, PNG, JPEG, TEXT)
_MAGIC = ((b"%PDF-", PDF), (b"\x89PNG\r\n\x1a\n", PNG), (b"\xff\xd8\xff", JPEG))
# Control characters besides tab, line feed, form feed and carriage return: not text.
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def sniff(data: bytes) -> str | None:
    """The content type of `data`, or None when it is none of the accepted types."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if not data or _BINARY.search(data):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return TEXT
