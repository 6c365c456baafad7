"""Release report: JSON content and verdict, CSV round trip, PDF parsed back, EPCIS structure, CLI."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pypdf
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts import worker
from alerts.rules import EvalConfig
from app.cli import report as report_cli
from app.core.db import make_sessionmaker
from app.core.handoff import enqueue_evaluation
from app.core.models import Alert, AlertEvent, Reading, utcnow
from app.core.settings import Settings
from app.reports import csv_export
from app.reports.data import READING_COLUMNS
from tests import factories as f
from tests.api import dashboard_world as w
from tests.api.keys import bearer, make_key
from tests.api.people import PASSWORD, qp_person, signed

T0 = f.T0
EPCIS_SCHEMA = Path(__file__).with_name("epcis_sensor_schema.json")


async def _delivered(client: httpx.AsyncClient, sid: str, hours: float = 2.0) -> None:
    """The journey's events, entered by a coordinator after the logger data (late entries)."""
    coordinator = bearer(await make_key(client, "coordinator"))
    for kind, at in (("departed", T0 + timedelta(minutes=1)),
                     ("delivered", T0 + timedelta(hours=hours)),
                     ("received", T0 + timedelta(hours=hours, minutes=10))):
        ok = await client.post(f"/api/v1/shipments/{sid}/events", headers=coordinator, json={
            "type": kind, "at": at.isoformat(), "note": f"{kind} ok",
            "correction_reason": "courier's scans entered from the paper log"})
        assert ok.status_code == 201, ok.text


async def _excursion_shipment(client: httpx.AsyncClient, db: AsyncSession) -> dict[str, Any]:
    """1-min logger: 5 °C with 15 °C from minute 10 to 12, silent from 30 to 45, until 100."""
    world = await w.fleet(client, ["SHP-Q"])
    s = world["shipments"]["SHP-Q"]
    logger_id = s["logger_ids"][0]
    temps = [15.0 if 10 <= i <= 12 else 5.0 + (i % 3) * 0.25 for i in range(101)]
    points = [p for i, p in enumerate(w.minutes(T0, temps)) if not 30 < i < 45]
    positions = [(52.31 - i * 0.01, 4.76 - i * 0.2) for i in range(len(points))]
    await w.add_readings(db, s["id"], logger_id, points, positions=positions)
    alert_id = await w.add_excursion_and_alert(
        db, s["id"], logger_id, T0 + timedelta(minutes=10), T0 + timedelta(minutes=13), 15.0)
    await db.execute(update(Alert).where(Alert.id == alert_id).values(
        state="acknowledged", acknowledged_by="key:coord01", ack_comment="box re-iced at hub",
        acknowledged_at=T0 + timedelta(minutes=20)))
    await db.execute(insert(AlertEvent).values(
        alert_id=alert_id, type="acknowledged", actor="key:coord01",
        comment="box re-iced at hub", data={}))
    await db.commit()
    await _delivered(client, s["id"])
    return {**world, "shipment": s, "points": points}


async def _report(client: httpx.AsyncClient, sid: str, fmt: str) -> httpx.Response:
    response = await client.get(f"/api/v1/shipments/{sid}/report", params={"format": fmt})
    assert response.status_code == 200, response.text
    return response


async def test_json_report_has_every_section_and_the_verdict(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await _excursion_shipment(client, db)
    r = (await _report(client, world["shipment"]["id"], "json")).json()
    assert r["shipment"]["reference"] == "SHP-Q" and r["shipment"]["status"] == "received"
    assert r["lane"]["name"] == "AMS-BOS" and r["lane"]["origin"]["name"] == "Leiden CTU"
    assert r["lane"]["transit_h"] == (120 - 1) / 60
    assert r["packaging"]["qualified_hold_h"] == 96.0
    assert r["packaging"]["hold_deadline"] == "2026-11-24T08:00:00Z"
    assert [e["type"] for e in r["custody_chain"]] == ["departed", "delivered", "received"]
    assert r["custody_chain"][0]["note"] == "departed ok"
    stats = r["statistics"]
    assert stats["reading_count"] == len(world["points"]) == 87
    assert (stats["min_c"], stats["max_c"]) == (5.0, 15.0)
    # Three readings at 15 °C hold one minute each: 180 s out of range of a 3600 s budget.
    assert stats["time_out_of_range_s"] == 180.0
    assert math.isclose(stats["stability_budget_used_pct"], 5.0)
    assert stats["mkt_c"] is not None and stats["mkt_c"] > stats["mean_c"]
    # The silence from 30 to 45 min, and from 3 min after the last reading until receipt.
    assert [(g["start"], g["end"]) for g in r["data_gaps"]["shipment"]] == [
        ("2026-11-20T08:33:00Z", "2026-11-20T08:45:00Z"),
        ("2026-11-20T09:43:00Z", "2026-11-20T10:10:00Z")]
    assert len(r["excursions"]) == 1 and r["excursions"][0]["peak_c"] == 15.0
    alert = r["alerts"][0]
    assert alert["ack_comment"] == "box re-iced at hub"
    assert [e["type"] for e in alert["events"]] == ["opened", "acknowledged"]
    assert r["verdict"]["line"] == "excursions require assessment"
    assert any("out of range" in reason for reason in r["verdict"]["reasons"])
    assert any("data gaps" in reason for reason in r["verdict"]["reasons"])
    assert len(r["readings"]) == 87 and r["readings"][0]["ts"] == "2026-11-20T08:00:00Z"
    csv_text = (await _report(client, world["shipment"]["id"], "csv")).text
    assert r["readings_csv_sha256"] == __import__("hashlib").sha256(csv_text.encode()).hexdigest()


async def test_clean_shipment_is_within_specification_and_mkt_follows_usp(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    shipment = await f.shipment_setup(client, reference="SHP-MKT")
    sid = shipment["id"]
    # 5 °C and 15 °C each held 10 minutes (max gap 15 min), the last reading at delivery so it
    # holds no further: MKT ≈ 11.39 °C, not 10.
    await w.add_readings(db, sid, "LOG-1", w.minutes(T0, [5.0, 15.0, 5.0], 600))
    await _delivered(client, sid, hours=20 / 60)
    stats = (await _report(client, sid, "json")).json()["statistics"]
    assert math.isclose(stats["mkt_c"], 11.39, abs_tol=0.01)
    assert math.isclose(stats["mean_c"], 10.0)
    clean = await f.shipment_setup(client, reference="SHP-OK", logger_ids=("LOG-OK",))
    await w.add_readings(db, clean["id"], "LOG-OK", w.minutes(T0, [4.0, 5.0, 6.0] * 8, 300))
    await _delivered(client, clean["id"])
    ok = (await _report(client, clean["id"], "json")).json()
    assert ok["verdict"] == {"line": "within specification", "within_specification": True,
                             "reasons": []}


async def test_the_report_states_what_the_engine_judged(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    """One spec, one set of samples, one judgement: the report's figures are the engine's, the
    latest reading held by rule 2 included (5 °C 10 + 15 min, 15 °C 10 min: MKT ≈ 9.21 °C)."""
    sid = (await f.shipment_setup(client, reference="SHP-SAME"))["id"]
    await w.add_readings(db, sid, "LOG-1", w.minutes(T0, [5.0, 15.0, 5.0], 600))
    async with make_sessionmaker(engine)() as session, session.begin():
        await enqueue_evaluation(session, uuid.UUID(sid), T0)
    assert await worker.run_cycle(make_sessionmaker(engine), EvalConfig(), utcnow, sweep=False) == 1
    judged = (await client.get(f"/api/v1/shipments/{sid}")).json()
    stats = (await _report(client, sid, "json")).json()["statistics"]
    for name in ("reading_count", "min_c", "max_c", "mkt_c", "time_out_of_range_s",
                 "stability_budget_used_s"):
        assert stats[name] == judged[name], name
    assert math.isclose(stats["mkt_c"], 9.21, abs_tol=0.01)
    assert stats["time_out_of_range_s"] == 600.0  # 15 °C held until the next reading


async def test_csv_round_trips_exactly_to_the_stored_readings(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await _excursion_shipment(client, db)
    sid = world["shipment"]["id"]
    # Values whose decimal text is not short: repr keeps every bit.
    await w.add_readings(db, sid, "L-SHP-Q", [(T0 + timedelta(minutes=101, seconds=1),
                                               1 / 3 + 4)])
    response = await _report(client, sid, "csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "SHP-Q" in response.headers["content-disposition"]
    stored = [tuple(r) for r in (await db.execute(
        select(*(getattr(Reading, c) for c in READING_COLUMNS))
        .where(Reading.shipment_id == sid).order_by(Reading.ts, Reading.logger_id))).all()]
    assert csv_export.parse(response.text) == stored
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(stored) == 88
    assert float(rows[-1]["temp_c"]) == 1 / 3 + 4
    assert rows[0]["ts"] == "2026-11-20T08:00:00.000000Z"


async def test_pdf_has_one_page_per_section_and_the_text(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await _excursion_shipment(client, db)
    response = await _report(client, world["shipment"]["id"], "pdf")
    assert response.headers["content-type"] == "application/pdf"
    pdf = pypdf.PdfReader(io.BytesIO(response.content))
    texts = [page.extract_text() for page in pdf.pages]
    headings = ["Summary", "Temperature chart", "Custody chain", "Excursions and alerts",
                "Data gaps", "Reading record"]
    assert len(texts) == 6  # 87 readings fit one record page
    for text, heading in zip(texts, headings, strict=True):
        assert f"{heading} - SHP-Q" in text, text[:80]
    assert "Release report - SHP-Q" in texts[0]
    assert "Verdict: excursions require assessment" in texts[0]
    assert "Leiden CTU -> Boston infusion centre" in texts[0]
    assert "qualified hold 96 h" in texts[0]
    assert "red: excursions" in texts[1]
    assert "departed ok" in texts[2] and "received" in texts[2]
    assert "box re-iced at hub" in texts[3] and "temperature_high" in texts[3]
    assert "08:33:00" in texts[4] and "08:45:00" in texts[4]
    assert "87 readings" in texts[5] and "11-20 08:10:00" in texts[5] and "15.00" in texts[5]
    assert pdf.metadata is not None and pdf.metadata.title == "Release report SHP-Q"


async def test_long_record_continues_over_pages(client: httpx.AsyncClient, db: AsyncSession) -> None:
    shipment = await f.shipment_setup(client, reference="SHP-LONG")
    await w.add_readings(db, shipment["id"], "LOG-1", w.minutes(T0, [5.0] * 500, 60))
    pdf = pypdf.PdfReader(io.BytesIO((await _report(client, shipment["id"], "pdf")).content))
    record = [p.extract_text() for p in pdf.pages][5:]
    assert len(pdf.pages) == 5 + math.ceil(500 / 186) and len(record) == 3
    assert all("Reading record - SHP-LONG" in t for t in record)
    assert "500" in record[-1]  # the last row's number


async def test_epcis_export_follows_the_standard_structure(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    import json

    world = await _excursion_shipment(client, db)
    sid = world["shipment"]["id"]
    response = await _report(client, sid, "epcis")
    assert response.headers["content-type"].startswith("application/ld+json")
    doc = response.json()
    jsonschema.validate(doc, json.loads(EPCIS_SCHEMA.read_text()),
                        format_checker=jsonschema.FormatChecker())
    assert doc["@context"] == ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
    events = doc["epcisBody"]["eventList"]
    steps = [e["bizStep"] for e in events if e["bizStep"] != "sensor_reporting"]
    assert steps == ["packing", "departing", "arriving", "receiving"]
    sensors = [e for e in events if e["bizStep"] == "sensor_reporting"]
    assert len(sensors) == 2  # one per logger and hour
    elements = [el for e in sensors for el in e["sensorElementList"]]
    values = [r["value"] for el in elements for r in el["sensorReport"]
              if r["type"] == "gs1:Temperature"]
    assert values == [t for _, t in world["points"]]
    first = elements[0]
    assert first["sensorMetadata"]["time"] == "2026-11-20T08:00:00.000Z"
    assert first["sensorMetadata"]["deviceID"].endswith("/api/v1/loggers/L-SHP-Q")
    assert first["sensorReport"][0] == {"type": "gs1:Temperature", "value": 5.0, "uom": "CEL"}
    assert sensors[0]["readPoint"]["id"].startswith("geo:")
    assert all(e["epcList"] == [f"http://test/api/v1/shipments/{sid}"] for e in events)
    assert len({e["eventID"] for e in events}) == len(events)
    times = [e["eventTime"] for e in events]
    assert times == sorted(times)


async def test_release_is_signed_by_a_qp_person_and_the_manifest_shown_everywhere(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    shipment = await f.shipment_setup(client, reference="SHP-REL")
    sid = shipment["id"]
    qp_key = bearer(await make_key(client, "qp"))
    coordinator = bearer(await make_key(client, "coordinator"))
    url = f"/api/v1/shipments/{sid}/release"
    reason = "record complete, within specification"
    body = signed("released", reason)
    async with qp_person(client, email="Quinn.Parker@example.org", name="Quinn <Q> Parker & Co") as qp:
        early = await qp.post(url, json=body)
        assert early.status_code == 409 and early.json()["errors"][0]["field"] == "decision"
        await _delivered(client, sid)
        assert (await client.post(url, json=body, headers=coordinator)).status_code == 403
        by_key = await client.post(url, json=body, headers=qp_key)  # keys cannot sign
        assert by_key.status_code == 403
        assert "API keys cannot sign" in by_key.json()["detail"]
        unsigned = await qp.post(url, json={"decision": "released", "reason": reason})
        assert unsigned.status_code == 422
        assert unsigned.json()["errors"][0]["field"] == "signature"
        wrong = await qp.post(url, json=signed("released", reason, "not-my-password-9"))
        assert wrong.status_code == 403
        assert wrong.json()["detail"] == "the signature is not valid: wrong email or password"
        other = await qp.post(url, json=signed("released", reason, email="someone@example.org"))
        assert other.status_code == 403  # the ID component must be the signer's own
        assert (await qp.post(url, json={"decision": "released"})).status_code == 422
        done = await qp.post(url, json=signed("released", reason, email="QUINN.PARKER@example.org"))
        assert done.status_code == 200, done.text
        detail = done.json()
        again = await qp.post(url, json=signed("rejected", "changed mind"))
        assert again.status_code == 409
    manifest = {"signer_name": "Quinn <Q> Parker & Co", "signer_email": "quinn.parker@example.org",
                "signed_at": detail["released_at"], "meaning": "Released for clinical use"}
    assert detail["signature"] == manifest
    assert (detail["release_decision"], detail["release_reason"], detail["released_by"]) == (
        "released", reason, "user:quinn.parker@example.org")
    assert (await client.get(f"/api/v1/shipments/{sid}")).json()["signature"] == manifest
    trail = (await client.get("/api/v1/audit", params={"entity_type": "shipment",
                                                       "entity_id": sid})).json()["items"]
    [release] = [a for a in trail if a["action"] == "release.released"]
    assert release["reason"] == reason and release["actor"] == "user:quinn.parker@example.org"
    assert release["after"]["signature"] == {  # the audit trail's own ISO 8601 form
        **manifest, "signed_at": manifest["signed_at"].replace("Z", "+00:00")}
    assert PASSWORD not in str(trail)
    report = (await _report(client, sid, "json")).json()
    assert report["release"]["release_decision"] == "released"
    assert report["release"]["signature"] == manifest
    summary = pypdf.PdfReader(io.BytesIO((await _report(client, sid, "pdf")).content)).pages[0]
    text = summary.extract_text()
    assert "Quinn <Q> Parker & Co (quinn.parker@example.org)" in text  # markup printed as text
    assert "Released for clinical use" in text
    epcis = (await _report(client, sid, "epcis")).json()["epcisBody"]["eventList"]
    assert epcis[-1]["disposition"] == "conformant"


async def test_wrong_signatures_lock_the_account_and_end_its_sessions(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    shipment = await f.shipment_setup(client, reference="SHP-LOCK")
    await _delivered(client, shipment["id"])
    url = f"/api/v1/shipments/{shipment['id']}/release"
    labels = {"kind": "signature", "outcome": "wrong"}
    wrong_before = REGISTRY.get_sample_value("coldchain_people_authentications_total", labels) or 0
    async with qp_person(client) as qp:
        for _ in range(5):
            wrong = await qp.post(url, json=signed("rejected", "excursion", "not-my-password-9"))
            assert wrong.status_code == 403
        ended = await qp.get(f"/api/v1/shipments/{shipment['id']}")
        assert ended.status_code == 401
        assert ended.json()["detail"] == "the session was ended (account locked): sign in again"
        relogin = await qp.post("/api/v1/auth/login", json={"email": "qp-all@example.org",
                                                            "password": PASSWORD})
        assert relogin.status_code == 429 and relogin.headers["retry-after"] == "900"
    wrong_after = REGISTRY.get_sample_value("coldchain_people_authentications_total", labels)
    assert wrong_after == wrong_before + 5
    [lock] = (await client.get("/api/v1/audit", params={"action": "lock"})).json()["items"]
    assert lock["reason"] == "5 failed signature attempts in a row"
    assert (await client.get(f"/api/v1/shipments/{shipment['id']}")).json()["signature"] is None


async def test_report_cli_writes_the_same_record(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    world = await _excursion_shipment(client, db)
    api_csv = (await _report(client, world["shipment"]["id"], "csv")).text
    out = tmp_path / "record.csv"
    code = await asyncio.to_thread(report_cli.run, settings, "SHP-Q", "csv", str(out))
    assert code == 0 and out.read_text() == api_csv
    pdf_out = tmp_path / "report.pdf"
    code = await asyncio.to_thread(report_cli.run, settings, world["shipment"]["id"], "pdf",
                                   str(pdf_out))
    assert code == 0 and len(pypdf.PdfReader(pdf_out).pages) == 6
    assert await asyncio.to_thread(report_cli.run, settings, "NO-SUCH", "json", None) == 1
    assert await asyncio.to_thread(report_cli.run, settings, "SHP-Q", "docx", None) == 2


async def test_report_is_scoped_and_validated(client: httpx.AsyncClient, db: AsyncSession) -> None:
    from tests.api.keys import bearer, make_key

    shipment = await f.shipment_setup(client, reference="SHP-SCOPE")
    elsewhere = await f.site(client, "Elsewhere", "DE")
    outsider = bearer(await make_key(client, "site", elsewhere))
    url = f"/api/v1/shipments/{shipment['id']}/report"
    assert (await client.get(url, headers=outsider)).status_code == 404
    assert (await client.get(url, params={"format": "xml"})).status_code == 422
    empty = (await client.get(url)).json()
    assert empty["statistics"]["reading_count"] == 0
    assert "no temperature record" in empty["verdict"]["reasons"]


async def test_a_non_ascii_reference_downloads_under_its_own_name(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    from email.message import Message
    from email.utils import collapse_rfc2231_value

    shipment = await f.shipment_setup(client, reference="AMS→BOS-1")
    for fmt, suffix in (("json", ".json"), ("csv", "-readings.csv"), ("pdf", ".pdf"),
                        ("epcis", ".epcis.jsonld")):
        header = (await _report(client, shipment["id"], fmt)).headers["content-disposition"]
        message = Message()
        message["Content-Disposition"] = header
        params = message.get_params(header="content-disposition")
        assert params is not None
        (kind, _), (_, fallback), (_, extended) = params
        assert kind == ("inline" if fmt == "pdf" else "attachment")
        assert fallback == f"release-report-AMS_BOS-1{suffix}"
        assert collapse_rfc2231_value(extended) == f"release-report-AMS→BOS-1{suffix}"


@pytest.mark.parametrize("reference", ["SHP\x07-1", "SHP\x7f", "SHP-1\r\nX-Injected: 1", "SHP\t1",
                                       "SHP-\u202e1-PHS", "SHP-\u200b1", "SHP\x85X"])
async def test_references_and_names_with_control_characters_are_refused(
    client: httpx.AsyncClient, db: AsyncSession, reference: str
) -> None:
    refused = await client.post("/api/v1/shipments", json={
        "reference": reference, "lane_id": str(uuid.uuid4()), "product_id": str(uuid.uuid4()),
        "packaging_id": str(uuid.uuid4()), "logger_ids": ["LOG-1"],
        "packed_at": T0.isoformat()})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in refused.json()["errors"]] == ["reference"], refused.text
    assert "control or invisible" in refused.json()["errors"][0]["message"]
    site = await client.post("/api/v1/sites", json={"name": f"Site {reference}", "country": "NL"})
    assert site.status_code == 422 and site.json()["errors"][0]["field"] == "name"
