# Two entry points for a newcomer: `make demo` and `make test`.
# Both create a local virtual environment (.venv) on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/arbeidsindikator: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

.PHONY: setup demo test
setup: $(BIN)/arbeidsindikator

demo: setup
	$(BIN)/arbeidsindikator demo --out demo-output

test: setup
	$(BIN)/pytest -q
