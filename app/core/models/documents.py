"""Documents attached to a shipment (import licences, customs papers, QP release plans): the bytes
in PostgreSQL with their size and SHA-256."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models.base import Base, created_at_column, new_id


class ShipmentDocument(Base):
    __tablename__ = "shipment_documents"
    __table_args__ = (
        Index("ix_shipment_documents_shipment_id_kind", "shipment_id", "kind"),
        CheckConstraint("size = octet_length(content)", name="size"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    shipment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))  # sniffed from the bytes
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))  # hex
    expires_at: Mapped[datetime | None]
    # Loaded only when the bytes are asked for (a download), never with the metadata.
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = created_at_column()
