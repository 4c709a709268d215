# SecuShare's front door.  `make run` and `make test` work on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test lint format worker beat messages compilemessages bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

compilemessages: $(STAMP)
	$(PY) manage.py compiletranslations

run: $(STAMP) compilemessages
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py collectstatic --no-input -v 0
	$(PY) manage.py serve

test: $(STAMP) compilemessages
	$(PY) manage.py makemigrations --check --dry-run -v 1
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run -v 1

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# With REDIS_URL set: the Celery worker and the scheduler of periodic jobs.
worker: $(STAMP)
	$(VENV)/bin/celery -A secushare worker --loglevel=INFO

beat: $(STAMP)
	$(VENV)/bin/celery -A secushare beat --loglevel=INFO

messages: $(STAMP)
	$(PY) manage.py makemessages -l de --ignore=.venv --ignore=var --no-obsolete
	$(PY) manage.py makemessages -l de -d djangojs --ignore=.venv --ignore=var --no-obsolete

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) var/static
