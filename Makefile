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
# The C core (slaballoc._core), built in place by the editable install.
CORE_SOURCES := setup.py $(wildcard csrc/*.c csrc/*.h)
CORE_STAMP   := $(VENV)/.core
# The sanitizer build: its own environment, the package installed (not in place).
ASAN_VENV := .venv-asan
SANITIZED := LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
             ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
             PYTHONMALLOC=malloc
ASAN_TESTS := tests/test_allocators.py tests/test_policies.py tests/test_stateful.py tests/test_misuse.py \
              tests/test_threads.py tests/test_differential.py tests/test_differential_best_fit.py \
              tests/test_shared_core.py tests/test_shared_heap.py tests/test_differential_slab_cache.py \
              tests/test_slab_cache.py tests/test_slab_cache_threads.py

.PHONY: demo test lint typecheck browser unit unit-c unit-python sanitize core check-core \
        wheel bench slabbench replay images clean

$(PACKAGE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	touch $(PACKAGE)

$(TOOLS): $(PACKAGE)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TOOLS)

# Rebuilt when a C source changes; SLABALLOC_REQUIRE_CORE turns a failed build
# into an error here (a plain `pip install` falls back to Python instead).
$(CORE_STAMP): $(PACKAGE) $(CORE_SOURCES)
	SLABALLOC_REQUIRE_CORE=1 $(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(CORE_STAMP)

core: $(CORE_STAMP)

# Fails if the tests would silently run the pure-Python fallback.
check-core: core
	$(BIN)/python -c "import slaballoc, sys; print('slaballoc.IMPLEMENTATION =', slaballoc.IMPLEMENTATION); sys.exit(slaballoc.IMPLEMENTATION != 'c')"

demo: $(PACKAGE) core
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

lint: $(TOOLS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TOOLS)
	$(BIN)/mypy

unit: unit-c unit-python

unit-c: check-core
	$(BIN)/pytest

unit-python: $(TOOLS)
	SLABALLOC_PURE=1 $(BIN)/pytest

# CPython is not leak-clean, hence detect_leaks=0; PYTHONMALLOC=malloc puts the
# PyMem_ allocations of the C core (small ones would go to pymalloc) under ASan.
# Run from tests/ only, so that the installed (instrumented) package is imported,
# not the source tree's build.
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
wheel: $(PACKAGE)
	rm -rf dist build
	SLABALLOC_REQUIRE_CORE=1 $(BIN)/python -m pip wheel --quiet --no-deps -w dist .
	rm -rf build
	$(BIN)/python -m zipfile -l dist/*.whl

bench: $(PACKAGE) core
	$(BIN)/slaballoc bench --scaling --json bench.json

slabbench: $(PACKAGE) core
	$(BIN)/slaballoc bench --slab --json slab-bench.json

replay: $(PACKAGE)
	$(BIN)/slaballoc replay $(TRACES) --json replay.json

# The pictures in the README, regenerated from the commands it documents.
images: $(TOOLS)
	$(BIN)/slaballoc map dynamic 5 -o docs/map-dynamic-reuse.svg
	$(BIN)/slaballoc map linear 4 -o docs/map-linear-free-one.svg
	$(BIN)/slaballoc replay $(PERL_TRACE) --peers none --repeats 1 --quiet \
	  --plot docs/replay-perl.png
	$(BIN)/slaballoc demo slab --svg docs/slab-map.svg
	$(BIN)/slaballoc demo shared --svg docs/shared-heap-owners.svg

clean:
	rm -rf $(VENV) $(ASAN_VENV) bench.json slab-bench.json replay.json build dist src/*.egg-info src/slaballoc/*.so .pytest_cache .mypy_cache .ruff_cache .hypothesis
