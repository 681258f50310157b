# Everything the project needs is installed from here: `make demo` and `make test` work on a
# fresh machine. The venv is rebuilt when pyproject.toml or constraints.txt change.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BASELINES := $(VENV)/.baselines-stamp
# A second, independent C2PA reader (c2pa-ts, pure TypeScript) that the tests compare ours with,
# and axe-core, which the browser tests (tests/web) run on every page of the person's site.
INTEROP := tests/interop/node_modules/.package-lock.json
# insightface 2.1 declares the GUI opencv-python (needs libGL, and overwrites the headless cv2/);
# it is installed without its dependencies, which pyproject.toml lists itself.
INSIGHTFACE := insightface==2.1
INVISIBLE_WATERMARK := invisible-watermark==0.2.0
# Debian's chromium drives the browser tests (tests/web, through Playwright); Playwright's own
# browser download is not reachable. Installed with apt-get (CI runs as root) only when missing:
# where chromium exists this names it and the rule below never runs.
CHROMIUM := $(or $(shell command -v chromium 2>/dev/null),/usr/bin/chromium)

.PHONY: demo test test-fast lint typecheck bench venv clean

venv: $(STAMP)

$(CHROMIUM):
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium

$(STAMP): pyproject.toml constraints.txt | $(CHROMIUM)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,nsfw,gateway]'
	$(BIN)/python -m pip install --quiet --no-deps $(INSIGHTFACE)
	$(BIN)/python -c "import cv2, dlib, faiss, insightface; print('environment ready: opencv', cv2.__version__, 'dlib', dlib.__version__, 'faiss', faiss.__version__)"
	touch $(STAMP)

# The invisible-watermark baselines and the diffusers editor (torch, CPU build) for tests and
# benchmarks only: the demo and the core library do not need them.
$(BASELINES): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,nsfw,gateway,baselines,diffusers]'
	$(BIN)/python -m pip install --quiet --no-deps $(INVISIBLE_WATERMARK)
	touch $(BASELINES)

demo: $(STAMP)
	$(BIN)/guard demo --out demo-out

lint: $(STAMP)
	$(BIN)/ruff check guard migrations policies tests bench examples
	$(BIN)/ruff format --check guard migrations policies tests bench examples

typecheck: $(BASELINES)
	$(BIN)/mypy guard migrations

# `npm install` (not `npm ci`) with the lock file: cbor-extract's optional per-platform binaries
# are not in it (the registry mirror has none), which `npm ci` refuses; the pure-JS fallback works.
$(INTEROP): tests/interop/package.json tests/interop/package-lock.json
	npm install --prefix tests/interop --ignore-scripts --no-audit --no-fund --loglevel=error

test: lint typecheck $(BASELINES) $(INTEROP)
	$(BIN)/python -m pytest -n 2 --dist worksteal

# The edit-test loop: unit and integration tests on SQLite, without those marked slow (the
# whole suite, e2e, PostgreSQL and the slow ones included, is `make test`).
test-fast: $(BASELINES) $(INTEROP)
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "not slow and not postgres" tests/unit tests/integration

bench: $(BASELINES)
	$(BIN)/python bench/faces.py
	$(BIN)/python bench/check_path.py
	$(BIN)/python bench/descriptor.py
	$(BIN)/python bench/editor.py
	$(BIN)/python bench/thresholds.py
	$(BIN)/python bench/watermark.py
	$(BIN)/python bench/c2pa_signing.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/tenants.py
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/provenance_false_recovery.py
	$(BIN)/python bench/service.py
	$(BIN)/python bench/diffusion.py
	$(BIN)/python bench/budget.py
	$(BIN)/python bench/blocklist.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) var demo-out .pytest_cache .mypy_cache .ruff_cache
