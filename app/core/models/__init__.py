"""All tables, one import: `from app.core.models import Shipment`."""

from app.core.models.alerts import (
    Alert,
    AlertEvent,
    EvaluationCheckpoint,
    EvaluationPending,
    Excursion,
    ShipmentState,
)
from app.core.models.auth import ApiKey, AuditRecord
from app.core.models.base import Base, new_id, utcnow
from app.core.models.documents import ShipmentDocument
from app.core.models.forecast import LaneForecastModel, ShipmentForecast
from app.core.models.ingest import EvaluationQueue, IngestMessage, IngestRejection, Reading
from app.core.models.mail import MailAttempt, MailDelivery
from app.core.models.people import User, UserSession
from app.core.models.reference import (
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
from app.core.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription

__all__ = [
    "Alert", "AlertEvent", "ApiKey", "AuditRecord", "Base", "EvaluationCheckpoint",
    "EvaluationPending", "EvaluationQueue", "Excursion",
    "IngestMessage", "IngestRejection", "Lane", "LaneForecastModel", "LaneWaypoint", "Logger",
    "MailAttempt", "MailDelivery", "Packaging", "Product", "Reading", "Shipment",
    "ShipmentDocument", "ShipmentEvent",
    "ShipmentForecast", "ShipmentLogger", "ShipmentState", "Site", "User", "UserSession",
    "WebhookAttempt",
    "WebhookDelivery", "WebhookSubscription", "new_id", "utcnow",
]
