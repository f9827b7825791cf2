# Everything a fresh clone needs: `make demo` and `make test` create the virtual
# environment on first use, so a machine with only python3 and make is enough.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck browser unit bench slabbench replay images clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
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

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/slaballoc bench --scaling --json bench.json

slabbench: $(STAMP)
	$(BIN)/slaballoc bench --slab --json slab-bench.json

replay: $(STAMP)
	$(BIN)/slaballoc replay ../shared/traces/*.rep --json replay.json

# The pictures in the README, regenerated from the commands it documents.
images: $(STAMP)
	$(BIN)/slaballoc map dynamic 5 -o docs/map-dynamic-reuse.svg
	$(BIN)/slaballoc map linear 4 -o docs/map-linear-free-one.svg
	$(BIN)/slaballoc replay ../shared/traces/perl.rep --peers none --repeats 1 --quiet \
	  --plot docs/replay-perl.png

clean:
	rm -rf $(VENV) bench.json slab-bench.json replay.json build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
