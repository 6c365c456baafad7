"""The OpenAPI document: chosen operation ids, the package's version, operational endpoints."""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import pytest

from app.api.main import create_app
from app.core.settings import Settings


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    # No request is made: the document is built from the route table alone.
    return create_app(Settings(database_url="postgresql://unused@127.0.0.1/unused")).openapi()


def _operations(schema: dict[str, Any]) -> dict[str, str]:
    """"METHOD /path" → operationId."""
    return {f"{method.upper()} {path}": op["operationId"]
            for path, item in schema["paths"].items() for method, op in item.items()}


def test_operation_ids_are_the_handlers_names_and_unique(schema: dict[str, Any]) -> None:
    operations = _operations(schema)
    ids = list(operations.values())
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", i) for i in ids), ids
    assert operations["GET /api/v1/shipments"] == "list_shipments"
    assert operations["POST /api/v1/alerts/{alert_id}/ack"] == "acknowledge_alert"
    assert operations["GET /api/v1/stream"] == "stream"


def test_the_document_carries_the_package_version(schema: dict[str, Any]) -> None:
    assert schema["info"]["version"] == version("coldchain")


def test_metrics_is_served_but_not_an_api_operation(schema: dict[str, Any]) -> None:
    assert "/metrics" not in schema["paths"]
    assert {"/healthz", "/readyz"} <= set(schema["paths"])
