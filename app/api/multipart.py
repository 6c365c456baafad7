"""A streamed multipart/form-data body read into one bounded file part and a few short text
fields (python-multipart's push parser; nothing unbounded is held in memory or spooled to disk)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.core.errors import InvalidField, PayloadTooLarge, UnsupportedMediaType

MAX_FIELD_BYTES = 4096
MAX_HEADER_BYTES = 8192
MAX_PARTS = 8
# Boundaries, part headers and the text fields around the file.
OVERHEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upload:
    fields: dict[str, str]
    filename: str | None
    data: bytes | None


@dataclass(slots=True)
class _Part:
    header_bytes: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    is_file: bool = False
    body: bytearray = field(default_factory=bytearray)
    _field: bytearray = field(default_factory=bytearray)
    _value: bytearray = field(default_factory=bytearray)


class _Reader:
    """The parser's callbacks: bounded parts, the file part by name."""

    def __init__(self, file_field: str, max_file_bytes: int) -> None:
        self.file_field, self.max_file_bytes = file_field, max_file_bytes
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.data: bytes | None = None
        self.parts = 0
        self.ended = False
        self.part = _Part()

    def callbacks(self) -> dict[str, object]:
        return {"on_part_begin": self.begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.data_in,
                "on_part_end": self.part_end, "on_end": self.end}

    def begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidField("body", f"at most {MAX_PARTS} form fields")
        self.part = _Part()

    def _header_bytes(self, n: int) -> None:
        self.part.header_bytes += n
        if self.part.header_bytes > MAX_HEADER_BYTES:
            raise InvalidField("body", f"a part's headers exceed {MAX_HEADER_BYTES} bytes")

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes(end - start)
        self.part._field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes(end - start)
        self.part._value += data[start:end]

    def header_end(self) -> None:
        part = self.part
        part.headers[bytes(part._field).strip().lower()] = bytes(part._value).strip()
        part._field, part._value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        part = self.part
        kind, params = parse_options_header(part.headers.get(b"content-disposition", b""))
        name = params.get(b"name")
        if kind != b"form-data" or name is None:
            raise InvalidField("body", "every part needs Content-Disposition: form-data; name=…")
        part.name = name.decode("utf-8", "replace")
        if part.name in self.fields or (part.name == self.file_field and self.data is not None):
            raise InvalidField(part.name, "given more than once")
        part.is_file = part.name == self.file_field
        filename = params.get(b"filename")
        part.filename = filename.decode("utf-8", "replace") if filename is not None else None

    def data_in(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        part.body += data[start:end]
        if part.is_file and len(part.body) > self.max_file_bytes:
            raise PayloadTooLarge(f"{self.file_field}: the file exceeds {self.max_file_bytes} "
                                  "bytes", max_bytes=self.max_file_bytes)
        if not part.is_file and len(part.body) > MAX_FIELD_BYTES:
            raise InvalidField(part.name, f"longer than {MAX_FIELD_BYTES} bytes")

    def part_end(self) -> None:
        part = self.part
        if part.is_file:
            self.filename, self.data = part.filename, bytes(part.body)
            return
        try:
            self.fields[part.name] = part.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidField(part.name, "not UTF-8 text") from exc

    def end(self) -> None:
        self.ended = True


async def read_upload(
    content_type: str | None, chunks: AsyncIterator[bytes], *, file_field: str,
    max_file_bytes: int,
) -> Upload:
    """Parse the body as it streams in: 413 as soon as the file part (or the whole body) is over
    its bound, 415 when the body is not multipart/form-data, 422 when it is malformed."""
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType("the body must be multipart/form-data (with a boundary)")
    reader = _Reader(file_field, max_file_bytes)
    parser = MultipartParser(boundary, reader.callbacks())  # type: ignore[arg-type]
    limit, total = max_file_bytes + OVERHEAD_BYTES, 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes", max_bytes=limit)
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise InvalidField("body", f"malformed multipart body: {exc}") from exc
    parser.finalize()
    if not reader.ended:
        raise InvalidField("body", "the multipart body ends before its closing boundary")
    return Upload(reader.fields, reader.filename, reader.data)
