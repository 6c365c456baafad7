"""Documents attached to a shipment: stored with size and SHA-256 after their type is sniffed,
audited, read by whoever may see the shipment."""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from app.core import audit
from app.core.errors import InvalidField, NotFound, UnsupportedMediaType
from app.core.models import ShipmentDocument
from app.core.security import Principal
from app.services import sniff
from app.services.shipments import get_visible_shipment

MAX_FILENAME = 255


def _filename(name: str | None) -> str:
    """The client's file name without its path and control characters (PostgreSQL text takes
    no NUL; the download's Content-Disposition encodes the rest safely)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return (base or "document")[:MAX_FILENAME]


async def add_document(
    session: AsyncSession, principal: Principal, shipment_id: uuid.UUID, *, kind: str,
    expires_at: datetime | None, filename: str | None, data: bytes | None,
) -> ShipmentDocument:
    shipment = await get_visible_shipment(session, principal, shipment_id)
    if data is None:
        raise InvalidField("file", "a document upload needs a `file` part")
    if not data:
        raise InvalidField("file", "the file is empty")
    content_type = sniff.sniff(data)
    if content_type is None:
        raise UnsupportedMediaType(
            "file: not an accepted document type (PDF, PNG, JPEG or UTF-8 plain text, judged "
            "from the file's bytes)", field="file", accepted=list(sniff.ACCEPTED))
    document = ShipmentDocument(
        shipment_id=shipment.id, kind=kind, filename=_filename(filename),
        content_type=content_type, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        expires_at=expires_at, content=data, uploaded_by=principal.actor)
    session.add(document)
    await session.flush()
    await audit.record(
        session, principal, action="document.upload", entity_type="shipment",
        entity_id=shipment.id, after=metadata(document))
    return document


def metadata(document: ShipmentDocument) -> dict[str, object]:
    return {"document_id": document.id, "kind": document.kind, "filename": document.filename,
            "content_type": document.content_type, "size": document.size,
            "sha256": document.sha256, "expires_at": document.expires_at}


async def list_documents(session: AsyncSession, shipment_id: uuid.UUID) -> list[ShipmentDocument]:
    return list(await session.scalars(
        select(ShipmentDocument).where(ShipmentDocument.shipment_id == shipment_id)
        .order_by(ShipmentDocument.uploaded_at, ShipmentDocument.id)))


async def get_document(
    session: AsyncSession, principal: Principal, shipment_id: uuid.UUID, document_id: uuid.UUID
) -> ShipmentDocument:
    """The document with its bytes, or 404 (also for a shipment the principal may not see)."""
    await get_visible_shipment(session, principal, shipment_id)
    document = await session.scalar(
        select(ShipmentDocument).options(undefer(ShipmentDocument.content))
        .where(ShipmentDocument.id == document_id, ShipmentDocument.shipment_id == shipment_id))
    if document is None:
        raise NotFound("document", document_id)
    return document
