# Everything a fresh clone needs: `make demo` and `make test` create the virtual
# environment on first use, so a machine with only python3 and make is enough.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench replay clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/slaballoc demo all

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/slaballoc bench --scaling --json bench.json

replay: $(STAMP)
	$(BIN)/slaballoc replay ../shared/traces/*.rep --json replay.json

clean:
	rm -rf $(VENV) bench.json replay.json build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
