"""Shipment documents (upload, list, download) and readiness to depart."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import ValidationError

from app.api import multipart
from app.api.deps import CurrentPrincipal, SessionDep, SettingsDep, require_roles
from app.api.disposition import content_disposition
from app.core.errors import InvalidField
from app.core.models import utcnow
from app.core.security import Principal
from app.schemas.documents import DocumentFields, DocumentOut, ReadinessOut
from app.services import documents as svc
from app.services import readiness
from app.services.shipments import get_visible_shipment

router = APIRouter(tags=["documents and readiness"])
Uploader = Annotated[Principal, Depends(require_roles("coordinator", "site"))]
_UPLOAD_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["kind", "file"],
        "properties": {
            "kind": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$",
                     "description": "e.g. import_license, qp_release_plan"},
            "file": {"type": "string", "format": "binary",
                     "description": "PDF, PNG, JPEG or UTF-8 plain text (judged from the bytes)"},
            "expires_at": {"type": "string", "format": "date-time"},
        }}}},
}


def _fields(raw: dict[str, str]) -> DocumentFields:
    try:
        return DocumentFields.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(p) for p in error["loc"]) or "body"
        raise InvalidField(name, error["msg"]) from None


@router.post(
    "/shipments/{shipment_id}/documents", status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut, openapi_extra={"requestBody": _UPLOAD_BODY},
    responses={415: {"description": "Not multipart/form-data, or a file of a type not accepted"}},
)
async def upload_document(
    shipment_id: uuid.UUID, request: Request, session: SessionDep, principal: Uploader,
    settings: SettingsDep,
) -> DocumentOut:
    """Attach a document (multipart: `kind`, `file`, `expires_at`?) of at most
    `COLDCHAIN_MAX_DOCUMENT_BYTES` (20 MiB; 413 beyond, found while the body streams in). Its
    type is sniffed from the bytes (PDF, PNG, JPEG, UTF-8 text; 415 otherwise); stored with its
    size and SHA-256, audited (`document.upload`). A site key uploads to its own shipments."""
    await get_visible_shipment(session, principal, shipment_id)  # 404 before reading the body
    upload = await multipart.read_upload(
        request.headers.get("content-type"), request.stream(), file_field="file",
        max_file_bytes=settings.max_document_bytes)
    fields = _fields(upload.fields)
    document = await svc.add_document(
        session, principal, shipment_id, kind=fields.kind, expires_at=fields.expires_at,
        filename=upload.filename, data=upload.data)
    return DocumentOut.model_validate(document)


@router.get("/shipments/{shipment_id}/documents", response_model=list[DocumentOut])
async def list_documents(
    shipment_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> list[DocumentOut]:
    """The shipment's documents (metadata), oldest first."""
    await get_visible_shipment(session, principal, shipment_id)
    return [DocumentOut.model_validate(d) for d in await svc.list_documents(session, shipment_id)]


@router.get(
    "/shipments/{shipment_id}/documents/{document_id}", response_class=Response,
    responses={200: {"description": "the document's bytes, as an attachment",
                     "content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {},
                                 "text/plain": {}}}},
)
async def download_document(
    shipment_id: uuid.UUID, document_id: uuid.UUID, session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    """The bytes as stored, always as an attachment under the sniffed type, with their SHA-256
    (`Repr-Digest`, RFC 9530) and a sandboxing Content-Security-Policy."""
    document = await svc.get_document(session, principal, shipment_id, document_id)
    digest = base64.b64encode(bytes.fromhex(document.sha256)).decode()
    return Response(document.content, media_type=document.content_type, headers={
        "Content-Disposition": content_disposition("attachment", document.filename),
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Repr-Digest": f"sha-256=:{digest}:",
    })


@router.get("/shipments/{shipment_id}/readiness", response_model=ReadinessOut)
async def shipment_readiness(
    shipment_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> ReadinessOut:
    """Ready to depart: every document kind the lane in force requires is attached and valid at
    the expected arrival (documents expiring before it count as expired), and the packaging's
    requalification holds until then. `departed` while not ready is refused (409) unless a
    coordinator gives `override_reason`."""
    shipment = await get_visible_shipment(session, principal, shipment_id)
    return ReadinessOut.model_validate(
        await readiness.readiness(session, shipment, now=utcnow()))
