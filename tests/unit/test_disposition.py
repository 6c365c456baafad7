"""Content-Disposition for report downloads: RFC 6266 `filename*` with an ASCII fallback."""

from __future__ import annotations

from email.message import Message
from email.utils import collapse_rfc2231_value
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.api.disposition import ascii_fallback, content_disposition


@pytest.mark.parametrize(("name", "header"), [
    ("release-report-SHP-1.pdf",
     "inline; filename=\"release-report-SHP-1.pdf\"; filename*=UTF-8''release-report-SHP-1.pdf"),
    ("release-report-AMS→BOS-1.json",
     "attachment; filename=\"release-report-AMS_BOS-1.json\"; "
     "filename*=UTF-8''release-report-AMS%E2%86%92BOS-1.json"),
    ("Zürich \"a\";b,c%d.csv",
     "attachment; filename=\"Zurich _a__b_c_d.csv\"; "
     "filename*=UTF-8''Z%C3%BCrich%20%22a%22%3Bb%2Cc%25d.csv"),
    ("../etc\\passwd\r\nX-Evil: 1", "attachment; filename=\".._etc_passwd__X-Evil: 1\"; "
     "filename*=UTF-8''.._etc_passwd__X-Evil%3A%201"),
    ("", "attachment; filename=\"download\"; filename*=UTF-8''download"),
])
def test_header_values(name: str, header: str) -> None:
    disposition = "inline" if name.endswith(".pdf") else "attachment"
    assert content_disposition(disposition, name) == header


def test_the_standard_library_parser_reads_both_names_back() -> None:
    message = Message()
    message["Content-Disposition"] = content_disposition("attachment", "release-report-AMS→BOS-1.pdf")
    params = message.get_params(header="content-disposition")
    assert params is not None
    (_, fallback), (_, extended) = params[1:]
    assert fallback == "release-report-AMS_BOS-1.pdf"
    assert collapse_rfc2231_value(extended) == "release-report-AMS→BOS-1.pdf"


@given(st.text(max_size=60))
def test_any_name_gives_a_latin1_header_that_round_trips(name: str) -> None:
    header = content_disposition("attachment", name)
    header.encode("ascii")  # HTTP header values: ASCII only, never a 500 while encoding
    assert not any(c in header for c in "\r\n\0")
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback == ascii_fallback(name) and '"' not in fallback and "\\" not in fallback
    encoded = header.split("filename*=UTF-8''", 1)[1]
    decoded = unquote(encoded, encoding="utf-8", errors="strict")
    assert "/" not in decoded and "\\" not in decoded
    if name and all(c.isprintable() and c not in "/\\" for c in name):
        assert decoded == name
