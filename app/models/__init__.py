"""All tables, one import: `from app.models import Shipment`."""

from app.models.alerts import (
    Alert,
    AlertEvent,
    EvaluationCheckpoint,
    EvaluationPending,
    Excursion,
    ShipmentState,
)
from app.models.auth import ApiKey, AuditRecord
from app.models.base import Base, new_id, utcnow
from app.models.ingest import EvaluationQueue, IngestMessage, IngestRejection, Reading
from app.models.reference import (
    Lane,
    LaneWaypoint,
    Logger,
    Packaging,
    Product,
    Shipment,
    ShipmentEvent,
    ShipmentLogger,
    Site,
)
from app.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription

__all__ = [
    "Alert", "AlertEvent", "ApiKey", "AuditRecord", "Base", "EvaluationCheckpoint",
    "EvaluationPending", "EvaluationQueue", "Excursion",
    "IngestMessage", "IngestRejection", "Lane", "LaneWaypoint", "Logger", "Packaging", "Product", "Reading",
    "Shipment", "ShipmentEvent", "ShipmentLogger", "ShipmentState", "Site", "WebhookAttempt",
    "WebhookDelivery", "WebhookSubscription", "new_id", "utcnow",
]
