"""Content-Disposition for downloads named after user text (RFC 6266 with RFC 8187 `filename*`)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

# RFC 8187 attr-char besides letters and digits: everything else is percent-encoded.
_ATTR_CHARS = "!#$&+-.^_`|~"
# Kept out of the quoted-string fallback: quoting and escaping characters, separators some
# clients still honour, and anything outside printable ASCII.
_UNSAFE_IN_FALLBACK = frozenset('"\\/;,%')


def _safe_name(filename: str) -> str:
    """No path separators or control characters, whatever the name was built from."""
    cleaned = "".join(
        "_" if c in "/\\" or unicodedata.category(c)[0] == "C" else c for c in filename
    )
    return cleaned or "download"


def ascii_fallback(filename: str) -> str:
    """The name for clients without RFC 8187: accents dropped (é → e), anything else → `_`."""
    out = []
    for c in unicodedata.normalize("NFKD", _safe_name(filename)):
        if unicodedata.combining(c):
            continue
        out.append(c if " " <= c <= "~" and c not in _UNSAFE_IN_FALLBACK else "_")
    return "".join(out)


def content_disposition(disposition: str, filename: str) -> str:
    """`attachment; filename="AMS_BOS-1.pdf"; filename*=UTF-8''AMS%E2%86%92BOS-1.pdf`."""
    name = _safe_name(filename)
    encoded = quote(name, safe=_ATTR_CHARS, encoding="utf-8")
    return f"{disposition}; filename=\"{ascii_fallback(name)}\"; filename*=UTF-8''{encoded}"
