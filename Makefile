# aekit — `make demo` trains and shows a model, `make test` runs the tests.
# Everything installs into .venv at the repo root; torch is pinned to the CPU build on local disk.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
TORCH   ?= torch==2.13.0
STAMP   := $(VENV)/.aekit-installed
FMNIST  := /usr/share/datasets/fashion-mnist

.PHONY: setup dataset browser demo test test-slow bench lint clean

setup: $(STAMP) dataset browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

# The Fashion-MNIST IDX files come from Debian's package; only root can install it.
dataset:
	@if [ -d $(FMNIST) ]; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
	  || echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will be skipped"; \
	else echo "note: not root, Fashion-MNIST not installed; demo uses 'digits', its tests are skipped"; fi

# Headless Chromium + ChromeDriver for the report's browser test (Debian packages; root only).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1)) \
	  || echo "note: could not install chromium; the report's browser test will be skipped"; \
	else echo "note: not root, chromium not installed; the report's browser test is skipped"; fi

demo: setup
	$(BIN)/python -m aekit.demo

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

bench: setup
	$(BIN)/python -m bench.run_all

lint: setup
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
