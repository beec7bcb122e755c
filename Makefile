# BMS — the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: setup run test lint typecheck worker beat bench lint-ops demo-data train clean

$(STAMP): requirements/base.txt requirements/dev.txt package.json
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements/dev.txt
	npm install --no-audit --no-fund --loglevel=error
	touch $(STAMP)

setup: $(STAMP)

demo-data: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_demo

# Embedded: one uvicorn process for HTTP and WebSockets (production: gunicorn for HTTP, docs/operations.md).
run: demo-data
	$(PY) manage.py collectstatic --noinput -v 0
	$(VENV)/bin/uvicorn bms.asgi:application --host $(HOST) --port $(PORT) --no-proxy-headers

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy .

worker: setup
	$(VENV)/bin/celery -A bms worker -l info --concurrency $${WORKER_CONCURRENCY:-2}

beat: setup
	$(VENV)/bin/celery -A bms beat -l info

bench: setup
	$(PY) bench/run_all.py

lint-ops: setup
	bash docker/lint-ops.sh

clean:
	rm -rf var
