# Everything a fresh clone needs: `make demo` and `make test` create the virtual
# environment on first use, so a machine with only python3 and make is enough.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Two stamps: the package alone (all `make demo` needs, seconds to install), and
# the test tools on top of it (ruff, mypy, pytest, numpy, matplotlib, selenium).
PACKAGE := $(VENV)/.installed-package
TOOLS   := $(VENV)/.installed-test

# The project's own traces sit beside the main checkout; a clone elsewhere uses
# the samples that ship with the package (`slaballoc replay --list-samples`).
SHARED_TRACES := $(wildcard ../shared/traces/*.rep)
TRACES        := $(or $(SHARED_TRACES),sample:gcc-cc1 sample:git-log sample:jq sample:perl sample:sqlite3)
PERL_TRACE    := $(or $(filter %/perl.rep,$(SHARED_TRACES)),sample:perl)

.PHONY: demo test lint typecheck browser unit bench replay images clean

$(PACKAGE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	touch $(PACKAGE)

$(TOOLS): $(PACKAGE)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TOOLS)

demo: $(PACKAGE)
	$(BIN)/slaballoc demo all

test: lint typecheck browser unit

# The browser test needs headless Chromium and its driver, from Debian's packages.
# Installed here when possible (root and apt-get); otherwise that one test is skipped.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "chromium and chromedriver are installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and chromium-driver for the browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver >/dev/null) || echo "could not install chromium: the browser test will be skipped"; \
	else \
	  echo "chromium is not installed and cannot be installed here: the browser test will be skipped"; \
	fi

lint: $(TOOLS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TOOLS)
	$(BIN)/mypy

unit: $(TOOLS)
	$(BIN)/pytest

bench: $(PACKAGE)
	$(BIN)/slaballoc bench --scaling --json bench.json

replay: $(PACKAGE)
	$(BIN)/slaballoc replay $(TRACES) --json replay.json

# The pictures in the README, regenerated from the commands it documents.
images: $(TOOLS)
	$(BIN)/slaballoc map dynamic 5 -o docs/map-dynamic-reuse.svg
	$(BIN)/slaballoc map linear 4 -o docs/map-linear-free-one.svg
	$(BIN)/slaballoc replay $(PERL_TRACE) --peers none --repeats 1 --quiet \
	  --plot docs/replay-perl.png

clean:
	rm -rf $(VENV) bench.json replay.json build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
