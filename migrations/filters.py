"""What autogenerate compares: the models, not the readings partitions the migrations create."""

from __future__ import annotations

from typing import Any


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and reflected and (name or "").startswith("readings_p"))
