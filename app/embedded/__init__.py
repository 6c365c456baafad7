"""Embedded PostgreSQL and MQTT broker for `make demo` and tests when no server is configured.

Not on the production path: only `app.runtime` imports it, and only when DATABASE_URL or
MQTT_URL is unset; pgserver and amqtt come with the `embedded` extra.
"""

from app.embedded.broker import EmbeddedBroker
from app.embedded.ports import free_port, wait_for_port
from app.embedded.postgres import EmbeddedPostgres
from app.embedded.roles import OWNER_ROLE, SERVICE_ROLE
from app.embedded.service import EmbeddedUnavailable

__all__ = ["OWNER_ROLE", "SERVICE_ROLE", "EmbeddedBroker", "EmbeddedPostgres", "EmbeddedUnavailable",
           "free_port", "wait_for_port"]
