# Two commands: `make demo` runs the whole system, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/coldchain demo

# pytest's basetemp is the run's own (mktemp -d): runs sharing /tmp/pytest-of-$USER prune each
# other's directories. It is removed after a green run, kept (and named) after a red one.
test: $(STAMP)
	$(BIN)/python scripts/ensure_test_tools.py
	@tmp=$$(mktemp -d -t coldchain-test.XXXXXX) || exit 1; \
	$(BIN)/pytest -q --basetemp="$$tmp" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 0 ]; then rm -rf "$$tmp"; else echo "test files kept in $$tmp"; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# As root the embedded cluster lives in the service home (see README), var/postgres links to it.
clean:
	@if [ -L var/postgres ]; then cluster=$$(dirname "$$(readlink var/postgres)"); \
	  if [ -f "$$cluster/origin" ]; then rm -rf "$$cluster"; fi; fi
	rm -rf $(VENV) var .pytest_cache .hypothesis

# `make test` checks the dependency floors first: the lowest versions pyproject.toml allows,
# installed in $(VENV)/lowest, run a smoke suite (scripts/lowest_direct.sh); then every test.
.PHONY: floors
test: floors
floors: $(STAMP)
	VENV=$(VENV) bash scripts/lowest_direct.sh
