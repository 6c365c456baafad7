"""Schema changes of the dashboard domain: live-update notifications for the SSE stream.

Triggers publish small JSON payloads on the `coldchain_stream` channel when an alert transition is
recorded (alert_events), when a shipment's maintained state visibly changes (shipment_state) and
when a shipment is registered or changes status / release decision. NOTIFY is transactional: a
payload is delivered only when the writing transaction commits. Payloads carry the shipment's two
site ids so the API can scope a site key's stream without a query per event.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHANNEL = "coldchain_stream"

ALERT_EVENT_FUNCTION = f"""
CREATE OR REPLACE FUNCTION coldchain_stream_alert_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    s record;
BEGIN
    SELECT id, shipment_id, kind, severity, state INTO a FROM alerts WHERE id = NEW.alert_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT reference, origin_site_id, destination_site_id INTO s
        FROM shipments WHERE id = a.shipment_id;
    PERFORM pg_notify('{CHANNEL}', json_build_object(
        'type', 'alert', 'event', NEW.type, 'alert_event_id', NEW.id, 'alert_id', a.id,
        'shipment_id', a.shipment_id, 'reference', s.reference, 'kind', a.kind,
        'severity', a.severity, 'state', a.state, 'at', NEW.at,
        'sites', json_build_array(s.origin_site_id, s.destination_site_id))::text);
    RETURN NULL;
END $$;
"""

STATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION coldchain_stream_shipment_state() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s record;
BEGIN
    -- The engine rewrites its private engine_state on every cycle: only visible changes count.
    IF TG_OP = 'UPDATE' AND (
        OLD.last_reading_ts, OLD.last_temp_c, OLD.last_lat, OLD.last_lon, OLD.margin_h,
        OLD.at_risk, OLD.open_alerts, OLD.open_critical_alerts, OLD.expected_arrival,
        OLD.hold_deadline, OLD.stability_budget_used_s, OLD.projected_breach_at
    ) IS NOT DISTINCT FROM (
        NEW.last_reading_ts, NEW.last_temp_c, NEW.last_lat, NEW.last_lon, NEW.margin_h,
        NEW.at_risk, NEW.open_alerts, NEW.open_critical_alerts, NEW.expected_arrival,
        NEW.hold_deadline, NEW.stability_budget_used_s, NEW.projected_breach_at
    ) THEN
        RETURN NULL;
    END IF;
    SELECT reference, status, origin_site_id, destination_site_id INTO s
        FROM shipments WHERE id = NEW.shipment_id;
    PERFORM pg_notify('{CHANNEL}', json_build_object(
        'type', 'shipment', 'change', 'state', 'shipment_id', NEW.shipment_id,
        'reference', s.reference, 'status', s.status,
        'last_reading', json_build_object('ts', NEW.last_reading_ts, 'temp_c', NEW.last_temp_c,
                                          'lat', NEW.last_lat, 'lon', NEW.last_lon),
        'margin_h', NEW.margin_h, 'at_risk', NEW.at_risk, 'open_alerts', NEW.open_alerts,
        'open_critical_alerts', NEW.open_critical_alerts, 'expected_arrival', NEW.expected_arrival,
        'hold_deadline', NEW.hold_deadline,
        'stability_budget_used_s', NEW.stability_budget_used_s,
        'sites', json_build_array(s.origin_site_id, s.destination_site_id))::text);
    RETURN NULL;
END $$;
"""

SHIPMENT_FUNCTION = f"""
CREATE OR REPLACE FUNCTION coldchain_stream_shipment() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.status, OLD.release_decision)
            IS NOT DISTINCT FROM (NEW.status, NEW.release_decision) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('{CHANNEL}', json_build_object(
        'type', 'shipment', 'change', CASE WHEN TG_OP = 'INSERT' THEN 'created' ELSE 'status' END,
        'shipment_id', NEW.id, 'reference', NEW.reference, 'status', NEW.status,
        'release_decision', NEW.release_decision,
        'sites', json_build_array(NEW.origin_site_id, NEW.destination_site_id))::text);
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(ALERT_EVENT_FUNCTION)
    op.execute(STATE_FUNCTION)
    op.execute(SHIPMENT_FUNCTION)
    op.execute(
        "CREATE TRIGGER coldchain_stream_alert_events AFTER INSERT ON alert_events "
        "FOR EACH ROW EXECUTE FUNCTION coldchain_stream_alert_event()"
    )
    op.execute(
        "CREATE TRIGGER coldchain_stream_shipment_state AFTER INSERT OR UPDATE ON shipment_state "
        "FOR EACH ROW EXECUTE FUNCTION coldchain_stream_shipment_state()"
    )
    op.execute(
        "CREATE TRIGGER coldchain_stream_shipments AFTER INSERT OR UPDATE ON shipments "
        "FOR EACH ROW EXECUTE FUNCTION coldchain_stream_shipment()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS coldchain_stream_shipments ON shipments")
    op.execute("DROP TRIGGER IF EXISTS coldchain_stream_shipment_state ON shipment_state")
    op.execute("DROP TRIGGER IF EXISTS coldchain_stream_alert_events ON alert_events")
    op.execute("DROP FUNCTION IF EXISTS coldchain_stream_shipment()")
    op.execute("DROP FUNCTION IF EXISTS coldchain_stream_shipment_state()")
    op.execute("DROP FUNCTION IF EXISTS coldchain_stream_alert_event()")
