"""Configuration from the environment (12-factor), names as in CONTRACT.md."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLDCHAIN_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "COLDCHAIN_DATABASE_URL")
    )
    mqtt_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MQTT_URL", "COLDCHAIN_MQTT_URL")
    )
    data_dir: Path = Path("./var")
    topic_prefix: str = "coldchain/v1"
    admin_api_key: str | None = None
    webhook_allow_private: bool = False

    host: str = "127.0.0.1"
    port: int = 8000
    db_pool_size: int = 10
    # Ingest: shared-subscription group, bounded batches flushed when input pauses.
    ingest_group: str = "coldchain-ingest"
    ingest_client_id: str | None = None
    ingest_batch_max: int = 5000
    ingest_batch_wait_ms: int = 50
    ingest_queue_max: int = 20000
    # Evaluation and delivery loops.
    evaluator_period_s: float = 5.0
    escalation_after_s: int = 900
    webhook_timeout_s: float = 10.0
    # Request hardening.
    max_request_bytes: int = 2 * 1024 * 1024

    @field_validator("topic_prefix")
    @classmethod
    def _strip_prefix(cls, value: str) -> str:
        value = value.strip("/")
        if not value or "+" in value or "#" in value:
            raise ValueError("topic prefix must be non-empty and contain no MQTT wildcards")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_db_url(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme.split("+")[0] not in ("postgresql", "postgres"):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return value or None

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError("MQTT_URL must be an mqtt:// or mqtts:// URL")
        return value or None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
