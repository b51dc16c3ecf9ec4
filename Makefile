# Two commands do everything on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
STAMP_ASSETS := static/vendor/.installed
STAMP_SYSTEM := .data/.system-deps

.PHONY: run manage test lint typecheck format schema smoke install clean-data bench-ingest bench-usage bench-billing bench-webhooks bench-payments bench-portal bench-dunning bench-staff

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

$(STAMP_RUN): requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

$(STAMP_DEV): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@ $(STAMP_RUN)

$(STAMP_ASSETS): package.json package-lock.json scripts/assets.sh
	bash scripts/assets.sh
	touch $@

$(STAMP_SYSTEM): scripts/system_deps.sh
	bash scripts/system_deps.sh
	mkdir -p .data && touch $@

install: $(STAMP_RUN) $(STAMP_ASSETS) $(STAMP_SYSTEM)

## Run the platform on its embedded default (PostgreSQL and Redis from pip wheels, demo tenant).
run: $(STAMP_RUN) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	DJANGO_ENV=development $(PY) -m config.embedded run

## A management command on the data of `make run` (and its servers while it runs): make manage ARGS="billing_run --tenant demo"
manage: $(STAMP_RUN)
	DJANGO_ENV=development $(PY) -m config.embedded manage -- $(ARGS)

## Run the whole test suite against real PostgreSQL and Redis (embedded unless the environment names servers).
test: $(STAMP_DEV) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	DJANGO_ENV=test $(PY) -m config.embedded exec -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(MAKE) typecheck

## mypy with django-stubs, strict on the scope in pyproject.toml ([tool.mypy] files).
typecheck: $(STAMP_DEV)
	$(VENV)/bin/mypy

format: $(STAMP_DEV)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## The API contract: write docs/openapi.yaml from the code (commit it; tests/config/test_api_schema.py
## fails while the committed file differs from what the code describes).
schema: $(STAMP_DEV)
	DJANGO_ENV=test $(PY) manage.py spectacular --file docs/openapi.yaml --validate --fail-on-warn

## Start `make run` on a fresh data directory, wait for a healthy demo tenant, stop it.
smoke: $(STAMP_RUN) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	bash scripts/smoke_run.sh

clean-data:
	rm -rf .data

## Benchmarks (not part of `make test`): print figures and a same-run baseline; last line is JSON.
bench-ingest: $(STAMP_DEV) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	bash scripts/bench_deps.sh
	TEST_DATA_DIR=.data/bench DJANGO_ENV=development $(PY) -m config.embedded exec -- $(PY) bench/ingest.py

bench-usage: $(STAMP_DEV) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	TEST_DATA_DIR=.data/bench DJANGO_ENV=development $(PY) -m config.embedded exec -- $(PY) bench/usage.py

bench-billing: $(STAMP_DEV) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	TEST_DATA_DIR=.data/bench DJANGO_ENV=development $(PY) -m config.embedded exec -- $(PY) bench/billing.py

bench-webhooks: $(STAMP_DEV) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	TEST_DATA_DIR=.data/bench DJANGO_ENV=development $(PY) -m config.embedded exec -- $(PY) bench/webhooks.py

bench-payments: $(STAMP_DEV) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	TEST_DATA_DIR=.data/bench DJANGO_ENV=development $(PY) -m config.embedded exec -- $(PY) bench/payments.py

bench-portal: $(STAMP_DEV) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	TEST_DATA_DIR=.data/bench DJANGO_ENV=development $(PY) -m config.embedded exec -- $(PY) bench/portal.py

bench-dunning: $(STAMP_DEV) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	TEST_DATA_DIR=.data/bench DJANGO_ENV=development $(PY) -m config.embedded exec -- $(PY) bench/dunning.py

bench-staff: $(STAMP_DEV) $(STAMP_ASSETS) $(STAMP_SYSTEM)
	TEST_DATA_DIR=.data/bench DJANGO_ENV=development $(PY) -m config.embedded exec -- $(PY) bench/staff.py
