# Everything a fresh clone needs: `make demo` and `make test` create the virtual
# environment on first use, so a machine with only python3 and make is enough.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The C core (slaballoc._core), built in place by the editable install.
CORE_SOURCES := setup.py $(wildcard src/slaballoc/_core/*.c src/slaballoc/_core/*.h)
CORE_STAMP   := $(VENV)/.core
# The sanitizer build: its own environment, the package installed (not in place).
ASAN_VENV := .venv-asan
SANITIZED := LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
             ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
             PYTHONMALLOC=malloc
ASAN_TESTS := tests/test_allocators.py tests/test_policies.py tests/test_stateful.py tests/test_misuse.py \
              tests/test_threads.py tests/test_differential.py tests/test_differential_best_fit.py

.PHONY: demo test lint typecheck browser unit unit-c unit-python sanitize core check-core \
        wheel bench replay images clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Rebuilt when a C source changes; SLABALLOC_REQUIRE_CORE turns a failed build
# into an error here (a plain `pip install` falls back to Python instead).
$(CORE_STAMP): $(STAMP) $(CORE_SOURCES)
	SLABALLOC_REQUIRE_CORE=1 $(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(CORE_STAMP)

core: $(CORE_STAMP)

# Fails if the tests would silently run the pure-Python fallback.
check-core: core
	$(BIN)/python -c "import slaballoc, sys; print('slaballoc.IMPLEMENTATION =', slaballoc.IMPLEMENTATION); sys.exit(slaballoc.IMPLEMENTATION != 'c')"

demo: $(STAMP) core
	$(BIN)/slaballoc demo all

# The whole suite against the C core, then against the pure-Python specification,
# then the allocator tests against a build with AddressSanitizer and UBSan.
test: lint typecheck browser unit sanitize

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

unit: unit-c unit-python

unit-c: check-core
	$(BIN)/pytest

unit-python: $(STAMP)
	SLABALLOC_PURE=1 $(BIN)/pytest

# CPython is not leak-clean, hence detect_leaks=0; PYTHONMALLOC=malloc puts the
# PyMem_ allocations of the C core (small ones would go to pymalloc) under ASan.  Run from tests/ only, so that
# the installed (instrumented) package is imported, not the source tree's build.
sanitize:
	test -x $(ASAN_VENV)/bin/python || $(PYTHON) -m venv $(ASAN_VENV)
	$(ASAN_VENV)/bin/python -m pip install --quiet --upgrade pip pytest hypothesis numpy
	rm -rf build  # setuptools reuses objects found there: never mix this build with others
	SLABALLOC_REQUIRE_CORE=1 \
	SLABALLOC_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1" \
	SLABALLOC_LDFLAGS="-fsanitize=address,undefined" \
	  $(ASAN_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall --no-cache-dir .
	rm -rf build
	$(SANITIZED) $(ASAN_VENV)/bin/python -c "import slaballoc, sys; \
	  print('sanitized core:', slaballoc._implementation.core.__file__); \
	  sys.exit(slaballoc.IMPLEMENTATION != 'c' or 'site-packages' not in slaballoc.__file__)"
	$(SANITIZED) $(ASAN_VENV)/bin/python -m pytest -q -p no:cacheprovider --rootdir=tests \
	  -c /dev/null --capture=no $(ASAN_TESTS)  # no capture: a sanitizer report must reach the log

# A wheel with the compiled core, and what it holds.
wheel: $(STAMP)
	rm -rf dist build
	SLABALLOC_REQUIRE_CORE=1 $(BIN)/python -m pip wheel --quiet --no-deps -w dist .
	rm -rf build
	$(BIN)/python -m zipfile -l dist/*.whl

bench: $(STAMP)
	$(BIN)/slaballoc bench --scaling --json bench.json

replay: $(STAMP)
	$(BIN)/slaballoc replay ../shared/traces/*.rep --json replay.json

# The pictures in the README, regenerated from the commands it documents.
images: $(STAMP)
	$(BIN)/slaballoc map dynamic 5 -o docs/map-dynamic-reuse.svg
	$(BIN)/slaballoc map linear 4 -o docs/map-linear-free-one.svg
	$(BIN)/slaballoc replay ../shared/traces/perl.rep --peers none --repeats 1 --quiet \
	  --plot docs/replay-perl.png

clean:
	rm -rf $(VENV) $(ASAN_VENV) bench.json replay.json build dist src/*.egg-info src/slaballoc/*.so .pytest_cache .mypy_cache .ruff_cache .hypothesis
