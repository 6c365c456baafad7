"""From database rows to the rules' values: the one adapter the engine and the release report share,
so what a QP's report states is computed from the very spec and samples the engine judged."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from alerts.rules import (
    EvalConfig,
    LaneSpec,
    ProductProfile,
    Sample,
    ShipmentEvent,
    ShipmentSpec,
    Waypoint,
    max_gap_for,
)
from app.core.models import Reading

# A stored reading as the rules take it: the columns named like the Sample's fields, in its order,
# so a row selected with SAMPLE_COLUMNS is `Sample(*row)` (faster than picking by index).
SAMPLE_FIELDS = tuple(f.name for f in dataclasses.fields(Sample))
SAMPLE_COLUMNS = tuple(getattr(Reading, name) for name in SAMPLE_FIELDS)


class LoggerRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def reporting_interval_s(self) -> int: ...


class EventRow(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def at(self) -> Any: ...
    @property
    def lane_id(self) -> uuid.UUID | None: ...


def samples(rows: Iterable[Sequence[Any]]) -> tuple[list[Sample], int]:
    """Rows that start with SAMPLE_COLUMNS as Samples (the engine's hot path), and how many were
    left out for a non-finite temperature (ingest refuses them; one must not silence a shipment)."""
    n = len(SAMPLE_FIELDS)
    return _finite([Sample(*row[:n]) for row in rows])


def samples_by_name(rows: Iterable[Any]) -> tuple[list[Sample], int]:
    """The same from rows carrying the fields by name in any order (the report's record)."""
    return _finite([Sample(*(getattr(row, name) for name in SAMPLE_FIELDS)) for row in rows])


def _finite(all_samples: list[Sample]) -> tuple[list[Sample], int]:
    kept = [s for s in all_samples if math.isfinite(s.temp_c)]
    return kept, len(all_samples) - len(kept)


def product_profile(product: Any) -> ProductProfile:
    """A `products` row (ORM object or selected row)."""
    return ProductProfile(
        temp_min_c=product.temp_min_c, temp_max_c=product.temp_max_c,
        stability_budget_s=float(product.stability_budget_s),
        alarm_delay_s=float(product.alarm_delay_s), critical_min_c=product.critical_min_c,
        critical_max_c=product.critical_max_c, shock_limit_g=product.shock_limit_g,
        light_sensitive=product.light_sensitive,
    )


def lane_spec(lane: Any, waypoints: Iterable[Any]) -> LaneSpec:
    """A `lanes` row and its `lane_waypoints` rows (any order: taken by `position`)."""
    return LaneSpec(
        expected_transit_h=lane.expected_transit_h, max_transit_h=lane.max_transit_h,
        corridor_km=lane.corridor_km,
        waypoints=tuple(
            Waypoint(w.name, w.lat, w.lon, w.radius_km, w.dwell_allowance_h)
            for w in sorted(waypoints, key=lambda w: w.position)
        ),
    )


def shipment_spec(
    shipment: Any, product: Any, qualified_hold_h: float, lanes: Mapping[uuid.UUID, LaneSpec],
    loggers: Iterable[LoggerRow], events: Iterable[EventRow], config: EvalConfig,
) -> ShipmentSpec:
    """A `shipments` row with its product, packaging hold, loggers and custody events.

    `lanes` holds the lane of registration (`planned_lane_id`) and every lane a `rerouted` event
    names (rule 6); `events` come in chain order (time, then recording), voided ones left out.
    """
    return ShipmentSpec(
        packed_at=shipment.packed_at, qualified_hold_h=qualified_hold_h,
        product=product_profile(product), lane=lanes[shipment.planned_lane_id],
        max_gap_s=tuple(
            (lg.id, max_gap_for(lg.reporting_interval_s, shipment.max_gap_s))
            for lg in sorted(loggers, key=lambda lg: lg.id)
        ),
        events=tuple(ShipmentEvent(e.type, e.at, lanes[e.lane_id] if e.lane_id else None)
                     for e in events),
        departed_at=shipment.departed_at, delivered_at=shipment.delivered_at,
        received_at=shipment.received_at, safety_margin_h=shipment.safety_margin_h,
        config=config,
    )
