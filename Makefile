# Two entry points for a newcomer: `make demo` and `make test`.
# Both create a local virtual environment (.venv) on first use and install the exact versions
# of the lock files (requirements.lock for the demo, requirements-test.lock adds what the tests
# need: statsmodels, pyfixest, PySpark, Playwright, ...). `make lock` renews them with uv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.demo: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.test: requirements-test.lock requirements-oracles.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-oracles.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.demo

.PHONY: setup demo test lock
setup: $(VENV)/.demo

demo: $(VENV)/.demo
	$(BIN)/arbeidsindikator demo --out demo-output

test: $(VENV)/.test
	$(BIN)/pytest -q -n 2 --dist loadfile

# renew the lock files from pyproject.toml (needs the network; commit the result)
lock:
	$(PY) -m venv /tmp/arbeidsindikator-uv && /tmp/arbeidsindikator-uv/bin/pip install --quiet uv
	/tmp/arbeidsindikator-uv/bin/uv pip compile pyproject.toml --universal --python-version 3.11 -o requirements.lock -q
	/tmp/arbeidsindikator-uv/bin/uv pip compile pyproject.toml --extra test --universal --python-version 3.11 -o requirements-test.lock -q
