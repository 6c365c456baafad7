"""Document types from their bytes: PDF, PNG, JPEG and UTF-8 text in; everything else out."""

from __future__ import annotations

import pytest

from app.services.sniff import JPEG, PDF, PNG, TEXT, sniff


@pytest.mark.parametrize(("data", "expected"), [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", PDF),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", PNG),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", JPEG),
    (b"Import licence NL-2026-0042\r\nvalid until 2027-01-31\tok\n", TEXT),
    ("Einfuhrgenehmigung \u2192 Zoll \u00e9t\u00e9\n".encode(), TEXT),
    (b"", None),                                   # empty
    (b"<html><script>alert(1)</script>\x00", None),  # NUL: binary
    (b"MZ\x90\x00\x03\x00\x00\x00", None),           # a Windows executable
    (b"PK\x03\x04\x14\x00", None),                   # a zip (docx, xlsx)
    (b"GIF89a\x01\x00", None),                       # GIF is not on the list
    (b"caf\xe9 latin-1", None),                      # not UTF-8
    (b"text with an escape \x1b[31m", None),        # terminal escape: not plain text
    (b" %PDF-1.7", TEXT),                           # the magic must open the file
])
def test_sniff(data: bytes, expected: str | None) -> None:
    assert sniff(data) == expected
