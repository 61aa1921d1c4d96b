# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test install lint format migrate seed bench smoke fuzz clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

## Web (gunicorn on 127.0.0.1:$PORT, default 8000), one Celery worker and beat; Ctrl-C stops all.
run: seed
	$(PY) -m controlplane.supervisor all

## The test suite: Postgres and Redis when reachable, else the embedded default.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

## The smoke subset on the embedded default (SQLite, filesystem broker).
smoke: install
	CONTROLPLANE_TEST_EMBEDDED=1 CONTROLPLANE_VAR_DIR=$(CURDIR)/var/smoke $(PY) -m pytest -m smoke $(PYTEST_ARGS)

## The API fuzzing of `make test` with many more examples per operation (takes minutes).
fuzz: install
	CONTROLPLANE_FUZZ_EXAMPLES=$${CONTROLPLANE_FUZZ_EXAMPLES:-50} $(PY) -m pytest tests/controlplane/test_schema_fuzz.py $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/breaker.py
	$(PY) bench/pipeline.py
	$(PY) bench/budget.py
	$(PY) bench/embedded.py
	$(PY) bench/schema.py

clean:
	rm -rf $(VENV) var
