#!/usr/bin/env bash
# Keep the dependency floors honest: install the lowest versions pyproject.toml allows for each
# direct dependency (`uv pip install --resolution lowest-direct`) into a virtualenv of their own
# and run a smoke suite that exercises every one of them. Part of `make test`; needs the package
# index only (uv comes from the dev extra; Python is .venv's own interpreter, never downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."

main=${VENV:-.venv}  # the project's virtualenv (make's VENV): its uv and its interpreter
venv=$main/lowest
uv=$main/bin/uv
export UV_PYTHON_DOWNLOADS=never

# A few tests that between them exercise every direct dependency (the whole suite runs next, on
# current versions); kept short: about a minute of tests (three under load from other jobs).
smoke=(
  tests/unit/test_install.py               # typer/click (the console script), pydantic-settings
  tests/unit/test_passwords.py             # argon2-cffi, zxcvbn
  tests/unit/test_dashboard_pure.py        # pandas, numpy
  tests/unit/test_signing.py               # standardwebhooks (the reference signature)
  tests/api/test_openapi.py                # fastapi, pydantic
  tests/api/test_reference.py              # starlette, sqlalchemy, asyncpg, alembic, prometheus-client, orjson
  tests/e2e/test_roles.py                  # uvicorn, sse-starlette: real processes, shutdown
  "tests/api/test_reports_release.py::test_pdf_has_one_page_per_section_and_the_text"  # reportlab, pypdf
  "tests/db/test_webhooks_delivery.py::test_delivered_event_verifies_with_the_spec_and_the_reference_package"  # httpx
  "tests/db/test_mail_delivery.py::test_starttls_and_implicit_tls_with_login_against_a_certificate_of_a_test_ca"  # aiosmtplib, aiosmtpd, trustme
  "tests/e2e/test_ingest.py::test_senml_pack_is_accepted"                   # paho-mqtt, the broker
  "tests/api/test_documents.py::test_bad_uploads_are_problems_and_store_nothing"  # python-multipart
  "tests/e2e/test_embedded.py::test_embedded_broker_round_trip"             # amqtt (pgserver, psutil: the fixtures)
  "tests/unit/test_rules_properties.py::test_budget_used_never_exceeds_elapsed_time_and_mkt_within_min_max"  # hypothesis
)
if [ ! -f "$venv/.installed" ] || [ pyproject.toml -nt "$venv/.installed" ]; then
  python=$("$main/bin/python" -c 'import sys; print(sys._base_executable)')
  "$uv" venv --quiet --clear --python "$python" "$venv"
  VIRTUAL_ENV="$venv" "$uv" pip install --quiet --resolution lowest-direct -e '.[embedded,test]'
  touch "$venv/.installed"
fi
# What was installed for each declared dependency: the floors (or the lowest that can be had).
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
import re

installed = []
for req in md.requires("coldchain") or []:
    if "extra" in req and not re.search(r'extra == "(embedded|test)"', req):
        continue
    name = re.match(r"[A-Za-z0-9._-]+", req).group()
    installed.append(f"{name}=={md.version(name)}")
print("lowest-direct:", " ".join(sorted(set(installed), key=str.lower)))
PY
# A basetemp of the run's own, as for the main run (concurrent runs sharing /tmp/pytest-of-$USER
# prune each other's directories); kept after a failure.
tmp=$(mktemp -d -t coldchain-floors.XXXXXX)
if "$venv/bin/python" -m pytest -q -p no:cacheprovider --basetemp="$tmp" "${smoke[@]}"; then
  rm -rf "$tmp"
else
  rc=$?
  echo "lowest-direct smoke run failed; test files kept in $tmp"
  exit $rc
fi
