"""All tables, one import: `from app.models import Shipment`."""

from app.models.alerts import Alert, AlertEvent, Excursion, ShipmentState
from app.models.auth import ApiKey, AuditRecord
from app.models.base import Base, new_id, utcnow
from app.models.ingest import EvaluationQueue, IngestRejection, Reading
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
    "Alert", "AlertEvent", "ApiKey", "AuditRecord", "Base", "EvaluationQueue", "Excursion",
    "IngestRejection", "Lane", "LaneWaypoint", "Logger", "Packaging", "Product", "Reading",
    "Shipment", "ShipmentEvent", "ShipmentLogger", "ShipmentState", "Site", "WebhookAttempt",
    "WebhookDelivery", "WebhookSubscription", "new_id", "utcnow",
]
