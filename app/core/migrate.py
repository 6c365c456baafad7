"""Apply Alembic migrations programmatically (the `coldchain migrate` command and test fixtures)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

# The migrations package is installed beside this one (editable or not).
SCRIPT_LOCATION = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, service_url: str | None = None) -> None:
    """Migrate as `database_url`'s role (the owner); then, given the service's URL, give its role
    exactly the grants it needs (the service never owns what it writes)."""
    command.upgrade(alembic_config(database_url), revision)
    if service_url:
        from app.core.db_roles import grant_service_role

        grant_service_role(database_url, service_url)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
