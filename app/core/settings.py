"""Configuration from the environment (12-factor), names as in CONTRACT.md."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.broker import BrokerAddress
from app.core.smtp import SmtpAddress

# The bootstrap admin key is compared as given (no hashing, no expiry): it must not be guessable.
MIN_ADMIN_KEY_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLDCHAIN_", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "COLDCHAIN_DATABASE_URL")
    )
    # The role that owns the schema and runs migrations; the service itself connects as
    # DATABASE_URL's role, which should own nothing (README, "Database roles").
    migration_database_url: str | None = None
    mqtt_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MQTT_URL", "COLDCHAIN_MQTT_URL")
    )
    data_dir: Path = Path("./var")
    topic_prefix: str = "coldchain/v1"
    admin_api_key: str | None = None
    webhook_allow_private: bool = False

    host: str = "127.0.0.1"
    port: int = 8000
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or networks).
    forwarded_allow_ips: str = ""
    db_pool_size: int = 10
    # Ingest: bounded batches flushed when input pauses.
    # Empty: one plain persistent subscription (the safe default: mosquitto 2.0 forgets shared
    # subscriptions across its own restart, and messages published before the worker is back are
    # then dropped). Set a group to share the stream between several workers (see README).
    ingest_group: str = ""
    ingest_client_id: str | None = None
    ingest_batch_max: int = 5000
    ingest_batch_wait_ms: int = 50
    # Bytes of messages received and not yet acknowledged; reading pauses at this bound.
    ingest_buffer_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    ingest_keepalive_s: int = Field(default=30, ge=2, le=65535)
    # Longest a batch's statement may take (lock waits included) before the write is retried on
    # a new connection: a hung database must not hold the batch, and its acks, forever.
    ingest_statement_timeout_s: float = Field(default=30.0, gt=0)
    # Standalone `coldchain ingest` / `coldchain alerts`: serve /metrics on these ports (a process
    # that runs the API, such as `coldchain up`, has the API's /metrics instead).
    ingest_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    alerts_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Evaluation and delivery loops.
    evaluator_period_s: float = 5.0
    escalation_after_s: int = 900
    # The fleet's `at_risk` also takes shipments whose forecast on-time probability is below this.
    risk_probability: float = Field(default=0.9, ge=0.0, le=1.0)
    webhook_timeout_s: float = 10.0
    webhook_concurrency: int = 32  # requests in flight per delivery process
    webhook_endpoint_concurrency: int = 4  # … and per endpoint (scheme://host:port)
    # Request hardening.
    max_request_bytes: int = 2 * 1024 * 1024
    # A shipment document's file (streamed, not buffered by the request guard).
    max_document_bytes: int = Field(default=20 * 1024 * 1024, ge=1, le=512 * 1024 * 1024)
    # Per API key token bucket: `burst` requests at once, refilled at `per_s`; 0 disables.
    rate_limit_per_s: float = 100.0
    rate_limit_burst: int = 300
    # Failed authentications per client address: `burst` at once, then `per_min` (then 429).
    auth_failure_burst: int = 20
    auth_failure_per_min: float = 10.0
    # The event stream re-checks its key this often (at most 30 s) and closes once it is revoked
    # or expired; an expiry time also closes it on the dot.
    stream_recheck_s: float = Field(default=30.0, gt=0, le=30)
    # People's sessions: ended after this long without activity, and 12 h after sign-in whatever
    # happens; the cookie is `Secure` (HTTPS only) when secure_cookies is true.
    session_idle_s: int = Field(default=1800, ge=60, le=12 * 3600)
    session_max_s: int = Field(default=12 * 3600, ge=60, le=12 * 3600)
    secure_cookies: bool = False
    # Audit checkpoints: the chain's head, verified, to the log and (signed) to this URL.
    audit_checkpoint_url: str | None = None
    audit_checkpoint_secret: str | None = None  # whsec_… (Standard Webhooks, as alert webhooks)
    audit_checkpoint_interval_s: float = 3600.0
    # E-mail notifications: off unless COLDCHAIN_SMTP_URL is set.
    smtp_url: str | None = Field(default=None, repr=False)  # may carry a password
    mail_from: str | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    # Where people open the dashboard: links in mails (default: the API's own bind address).
    public_url: str | None = None
    # Widest from/to window a time-range query may ask for (readings, audit).
    max_time_range_days: int = 400

    @field_validator("topic_prefix")
    @classmethod
    def _strip_prefix(cls, value: str) -> str:
        value = value.strip("/")
        if not value or "+" in value or "#" in value:
            raise ValueError("topic prefix must be non-empty and contain no MQTT wildcards")
        return value

    @field_validator("admin_api_key")
    @classmethod
    def _check_admin_key(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value != value.strip():
            raise ValueError("COLDCHAIN_ADMIN_API_KEY has leading or trailing whitespace")
        if len(value) < MIN_ADMIN_KEY_LENGTH:
            raise ValueError(
                f"COLDCHAIN_ADMIN_API_KEY must be at least {MIN_ADMIN_KEY_LENGTH} characters "
                "(e.g. the output of `openssl rand -base64 32`)"
            )
        return value

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _check_db_url(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme.split("+")[0] not in ("postgresql", "postgres"):
            raise ValueError("DATABASE_URL and COLDCHAIN_MIGRATION_DATABASE_URL must be postgresql:// URLs")
        return value or None

    @model_validator(mode="after")
    def _checkpoint_needs_a_secret(self) -> Settings:
        if self.audit_checkpoint_url and not (self.audit_checkpoint_secret or "").startswith("whsec_"):
            raise ValueError("COLDCHAIN_AUDIT_CHECKPOINT_URL needs COLDCHAIN_AUDIT_CHECKPOINT_SECRET "
                             "(whsec_…, as alert webhooks are signed)")
        return self

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: str | None) -> str | None:
        if value:
            SmtpAddress.parse(value)  # its ValueError says what is wrong
        return value or None

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
            raise ValueError("COLDCHAIN_PUBLIC_URL must be an http:// or https:// URL")
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _mail_needs_a_sender(self) -> Settings:
        if self.smtp_url and "@" not in (self.mail_from or ""):
            raise ValueError("COLDCHAIN_SMTP_URL needs COLDCHAIN_MAIL_FROM (the sender address, "
                             "e.g. coldchain@example.org)")
        return self

    @property
    def smtp(self) -> SmtpAddress | None:
        """The mail server, or None: e-mail notifications off."""
        return SmtpAddress.parse(self.smtp_url) if self.smtp_url else None

    @property
    def dashboard_url(self) -> str:
        """The web page's address as people reach it (links in mails)."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def migration_url(self) -> str | None:
        """Where migrations run: the owner's URL, by default DATABASE_URL itself."""
        return self.migration_database_url or self.database_url

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if value:
            BrokerAddress.parse(value)  # its ValueError says what is wrong
        return value or None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
