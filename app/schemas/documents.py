"""Shipment documents and readiness: what is attached, what a departure still needs."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from app.schemas.common import DocumentKind, Out, StrictBody, UtcDatetime


class DocumentFields(StrictBody):
    """The text fields of a document upload (the `file` part is the document)."""

    kind: DocumentKind
    expires_at: UtcDatetime | None = None


class DocumentOut(Out):
    id: uuid.UUID
    shipment_id: uuid.UUID
    kind: str
    filename: str
    content_type: str = Field(description="sniffed from the bytes, not the client's header")
    size: int
    sha256: str = Field(description="hex SHA-256 of the stored bytes")
    expires_at: datetime | None
    uploaded_by: str
    uploaded_at: datetime


class Unready(Out):
    """A required document, or the packaging's requalification, that lapses before arrival."""

    kind: str = Field(description="the document kind, or `packaging_requalification`")
    expires_at: datetime = Field(description="when it lapses (a requalification: the end of "
                                             "its last day, UTC)")
    document_id: uuid.UUID | None = None
    packaging_id: uuid.UUID | None = None
    requalified_until: date | None = None


class ReadinessOut(Out):
    ready: bool
    missing: list[str] = Field(description="required document kinds with no document")
    expired: list[Unready] = Field(description="what lapses before the expected arrival")
    required_documents: list[str] = Field(description="the kinds the lane in force requires")
    expected_arrival: datetime = Field(description="what documents must stay valid until")
