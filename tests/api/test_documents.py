"""Shipment documents through the API on the real database: stored with size and SHA-256, typed
by their bytes, bounded while they stream, audited, and visible only to who may see the shipment."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.api.main import create_app
from app.core.models import AuditRecord, ShipmentDocument
from app.core.settings import Settings
from tests import factories as f
from tests.api.keys import bearer, make_key
from tests.conftest import ADMIN_KEY

API = "/api/v1"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def upload(client: httpx.AsyncClient, shipment_id: str, content: bytes, *,
                 kind: str = "import_license", filename: str = "licence.pdf",
                 client_type: str = "application/pdf", headers: dict[str, str] | None = None,
                 **fields: str) -> httpx.Response:
    return await client.post(f"{API}/shipments/{shipment_id}/documents",
                             data={"kind": kind, **fields},
                             files={"file": (filename, content, client_type)},
                             headers=headers or {})


async def _stored(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(ShipmentDocument)) or 0)


@pytest.fixture
async def shipment(client: httpx.AsyncClient) -> dict[str, Any]:
    return await f.shipment_setup(client)


async def test_a_document_is_stored_listed_downloaded_and_audited(
    client: httpx.AsyncClient, db: AsyncSession, shipment: dict[str, Any]
) -> None:
    coordinator = bearer(await make_key(client, "coordinator"))
    response = await upload(client, shipment["id"], PDF, headers=coordinator,
                            expires_at="2027-01-31T00:00:00+01:00")
    assert response.status_code == 201, response.text
    doc = response.json()
    assert (doc["kind"], doc["size"], doc["sha256"], doc["content_type"], doc["filename"]) == (
        "import_license", len(PDF), hashlib.sha256(PDF).hexdigest(), "application/pdf",
        "licence.pdf")
    assert doc["expires_at"] == "2027-01-30T23:00:00Z"
    listed = (await client.get(f"{API}/shipments/{shipment['id']}/documents")).json()
    assert [d["id"] for d in listed] == [doc["id"]]
    got = await client.get(f"{API}/shipments/{shipment['id']}/documents/{doc['id']}")
    assert got.status_code == 200
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"licence.pdf\"; filename*=UTF-8''licence.pdf")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert got.headers["repr-digest"] == (
        f"sha-256=:{base64.b64encode(hashlib.sha256(PDF).digest()).decode()}:")
    (record,) = (await db.scalars(select(AuditRecord).where(
        AuditRecord.action == "document.upload"))).all()
    assert (record.entity_id, record.after["document_id"], record.after["sha256"],
            record.after["size"]) == (shipment["id"], doc["id"], doc["sha256"], len(PDF))


async def test_the_type_comes_from_the_bytes_not_the_client(
    client: httpx.AsyncClient, db: AsyncSession, shipment: dict[str, Any]
) -> None:
    # A PNG sent as text/plain is stored as what it is.
    png = await upload(client, shipment["id"], PNG, filename="scan.txt", client_type="text/plain")
    assert png.status_code == 201, png.text
    assert png.json()["content_type"] == "image/png"
    # HTML (script) dressed up as a PDF is refused, and nothing is stored.
    html = b"<html><body><script>alert(document.cookie)</script>\x00</body></html>"
    fake = await upload(client, shipment["id"], html, filename="licence.pdf")
    assert fake.status_code == 415
    assert fake.headers["content-type"] == "application/problem+json"
    assert fake.json()["errors"][0]["field"] == "file"
    for content in (b"PK\x03\x04zip", b"GIF89a\x01\x00\x01\x00\x80\x00", b""):
        refused = await upload(client, shipment["id"], content)
        assert refused.status_code in (415, 422), refused.text
    assert await _stored(db) == 1


async def test_a_hostile_filename_is_sent_back_safely(
    client: httpx.AsyncClient, db: AsyncSession, shipment: dict[str, Any]
) -> None:
    name = '..\\..\\evil; filename=x.html\u2192.pdf'
    doc = (await upload(client, shipment["id"], PDF, filename=name)).json()
    assert doc["filename"] == "evil; filename=x.html\u2192.pdf"
    got = await client.get(f"{API}/shipments/{shipment['id']}/documents/{doc['id']}")
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"evil_ filename=x.html_.pdf\"; "
        "filename*=UTF-8''evil%3B%20filename%3Dx.html%E2%86%92.pdf")
    # NUL and other control characters in the part's header: dropped, not a database error.
    body = (b"--b\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nimport_license\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\x00b\x07.pdf\"\r\n"
            b"\r\n" + PDF + b"\r\n--b--\r\n")
    raw = await client.post(f"{API}/shipments/{shipment['id']}/documents", content=body,
                            headers={"content-type": "multipart/form-data; boundary=b"})
    assert raw.status_code == 201, raw.text
    assert raw.json()["filename"] == "ab.pdf"


async def test_bad_uploads_are_problems_and_store_nothing(
    client: httpx.AsyncClient, db: AsyncSession, shipment: dict[str, Any]
) -> None:
    url = f"{API}/shipments/{shipment['id']}/documents"
    cases: list[tuple[httpx.Response, int, str]] = [
        (await client.post(url, json={"kind": "import_license"}), 415, "body must be multipart"),
        (await upload(client, shipment["id"], PDF, kind="Import Licence"), 422, "kind"),
        (await upload(client, shipment["id"], PDF, expires_at="2027-01-31T00:00:00"), 422,
         "expires_at"),
        (await client.post(url, data={"kind": "import_license"},
                           files={"other": ("a.pdf", PDF, "application/pdf")}), 422, "other"),
        (await client.post(url, content=b"--xyz\r\nContent-Disposition: form-data; name=\"kind\""
                           b"\r\n\r\nimport_license\r\n--xyz--\r\n",
                           headers={"content-type": "multipart/form-data; boundary=xyz"}),
         422, "needs a `file` part"),
        (await client.post(url, files={"file": ("a.pdf", PDF, "application/pdf")}), 422, "kind"),
        (await client.post(url, content=b"--xyz\r\nContent-Disposition: form-data; name=\"kind\""
                           b"\r\n\r\nimport_license\r\n--xyz\r\n",
                           headers={"content-type": "multipart/form-data; boundary=xyz"}),
         422, "closing boundary"),
    ]
    for response, code, text in cases:
        assert response.status_code == code, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert text in response.text, response.text
    assert await _stored(db) == 0


@pytest.fixture
async def small_client(
    db: AsyncSession, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a 1 KiB document limit."""
    app = create_app(settings.model_copy(update={"max_document_bytes": 1024}), engine=engine)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as http:
        yield http


async def test_documents_over_the_limit_are_413_as_they_stream(
    small_client: httpx.AsyncClient, db: AsyncSession
) -> None:
    shipment = await f.shipment_setup(small_client)
    at_limit = PDF + b" " * (1024 - len(PDF))
    ok = await upload(small_client, shipment["id"], at_limit)
    assert ok.status_code == 201, ok.text
    over = await upload(small_client, shipment["id"], at_limit + b" ")
    assert over.status_code == 413
    assert over.json()["max_bytes"] == 1024
    assert over.json()["detail"] == "file: the file exceeds 1024 bytes"
    # A body without Content-Length (chunked) that never ends its file part: stopped once the
    # body passes the limit plus the multipart overhead, never read to its end.
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (b"--b\r\nContent-Disposition: form-data; name=\"junk\"\r\n\r\n")
        while sent < 50 * 1024 * 1024:
            sent += 64 * 1024
            yield b"x" * (64 * 1024)

    streamed = await small_client.post(
        f"{API}/shipments/{shipment['id']}/documents", content=endless(),
        headers={"content-type": "multipart/form-data; boundary=b"})
    assert streamed.status_code in (413, 422)
    assert sent < 1024 * 1024
    # A declared length over the limit is refused before the handler runs.
    declared = await small_client.post(
        f"{API}/shipments/{shipment['id']}/documents", content=b"x" * (1024 + 64 * 1024 + 1),
        headers={"content-type": "multipart/form-data; boundary=b"})
    assert declared.status_code == 413
    assert await _stored(db) == 1


async def test_the_default_limit_is_20_mib(
    client: httpx.AsyncClient, db: AsyncSession, shipment: dict[str, Any]
) -> None:
    limit = 20 * 1024 * 1024
    exact = PDF + b"\n" * (limit - len(PDF))
    assert (await upload(client, shipment["id"], exact)).status_code == 201
    over = await upload(client, shipment["id"], exact + b"\n")
    assert over.status_code == 413
    assert over.json()["max_bytes"] == limit
    sizes = (await db.scalars(select(ShipmentDocument.size))).all()
    assert sizes == [limit]


async def test_site_keys_reach_only_their_own_shipments_documents(
    client: httpx.AsyncClient, db: AsyncSession, shipment: dict[str, Any]
) -> None:
    own = bearer(await make_key(client, "site", shipment["destination_site_id"]))
    hostile = bearer(await make_key(client, "site", await f.site(client, "Rival CRO", "DE")))
    qp = bearer(await make_key(client, "qp"))
    mine = await upload(client, shipment["id"], PDF, headers=own)
    assert mine.status_code == 201, mine.text
    doc_id = mine.json()["id"]
    base = f"{API}/shipments/{shipment['id']}"
    # Whoever may see the shipment reads and downloads; QP may not upload.
    for headers in (own, qp):
        assert (await client.get(f"{base}/documents", headers=headers)).status_code == 200
        got = await client.get(f"{base}/documents/{doc_id}", headers=headers)
        assert got.content == PDF
    assert (await upload(client, shipment["id"], PDF, headers=qp)).status_code == 403
    # The other site: 404 everywhere, exactly as for a shipment that does not exist.
    missing = "00000000-0000-0000-0000-000000000000"
    for path in (f"{base}/documents", f"{base}/documents/{doc_id}", f"{base}/readiness"):
        answer = await client.get(path, headers=hostile)
        assert answer.status_code == 404
        assert answer.json()["detail"] == f"shipment {shipment['id']} not found"
    refused = await upload(client, shipment["id"], PDF, headers=hostile)
    assert refused.status_code == 404
    assert (await client.get(f"{API}/shipments/{missing}/documents")).status_code == 404
    # A document id under another shipment's path is not found.
    other = await f.shipment_setup(client, logger_ids=("LOG-9",), reference="SHP-9")
    cross = await client.get(f"{API}/shipments/{other['id']}/documents/{doc_id}")
    assert cross.status_code == 404
    assert await _stored(db) == 1
