"""The `coldchain` commands that need no server: what they say and their exit codes."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner

from alerts.webhooks import signing
from app.cli.main import cli

runner = CliRunner()


def test_simulate_lists_the_library_one_scenario_a_line() -> None:
    result = runner.invoke(cli, ["simulate", "--list"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 11
    assert "customs-hold-at-risk\tdwell_exceeded, hold_time_at_risk\tDry-ice shipper held 57 h" \
        in result.stdout
    assert ("customs-hold-recharged\tdwell_exceeded (live: dwell_exceeded open +27.5 h, "
            "hold_time_at_risk open +60.5 h, hold_time_at_risk resolved +62 h, dwell_exceeded "
            "resolved +67.5 h)\tDry-ice shipper held 52 h") in result.stdout
    assert all(len(line.split("\t")) == 3 for line in lines)


@pytest.mark.parametrize(("args", "says"), [
    (["simulate"], "usage: coldchain simulate --list"),
    (["simulate", "no-such-scenario"], "unknown scenario 'no-such-scenario'"),
    (["simulate", "clean-2-8", "--speed", "0"], "--speed must be positive"),
    (["simulate", "clean-2-8", "--speed", "60", "--backfill"], "exclude each other"),
    (["simulate", "fleet", "--interval", "1"], "Missing option '--loggers'"),
    (["simulate", "history", "--n", "5"], "Missing option '--lane'"),
    (["simulate", "history", "--lane", "L", "--n", "0"], "Invalid value for '--n'"),
    (["receiver", "--secret", "not-a-secret"], "whsec_"),
    (["report", "SHP-1", "--format", "docx"], "unknown format 'docx'"),
])
def test_bad_arguments_exit_2_saying_why(args: list[str], says: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert says in result.stderr


def test_the_receiver_verifies_and_prints_each_event() -> None:
    secret = signing.new_secret()
    with subprocess.Popen(
        [sys.executable, "-m", "app.cli", "receiver", "--port", "0", "--secret", secret],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("receiving webhooks at http://127.0.0.1:")
            url = first.split(" at ", 1)[1].strip()
            body = b'{"type": "alert.opened"}'
            for msg_id, secrets_, status in (("msg_1", [secret], 200),
                                             ("msg_2", [signing.new_secret()], 401)):
                headers = signing.webhook_headers(
                    secrets_, msg_id, signing.unix_timestamp(datetime.now(UTC)), body)
                assert httpx.post(url, content=body, headers=headers, timeout=10).status_code == status
            assert [proc.stdout.readline().strip() for _ in range(2)] == [
                '200 msg_1 verified=True {"type": "alert.opened"}',
                '401 msg_2 verified=False {"type": "alert.opened"}',
            ]
        finally:
            proc.terminate()
