"""Where a shipment is on its lane, as the fleet overview shows it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.schemas.common import Out


class Whereabouts(Out):
    kind: Literal["origin", "stop", "leg", "destination", "unknown"] = Field(description=(
        "`origin`: packed, not departed; `stop`: the latest position is inside a waypoint's "
        "radius; `leg`: between two waypoints (the lane segment nearest the latest position); "
        "`destination`: delivered or received; `unknown`: in transit without a position"))
    label: str = Field(description="the same in words, e.g. `FRA → MXP customs`")
    waypoint: str | None = Field(description="`stop`: the waypoint's name")
    from_waypoint: str | None = Field(description="`leg`: the waypoint it left")
    to_waypoint: str | None = Field(description="`leg`: the waypoint it heads for")
