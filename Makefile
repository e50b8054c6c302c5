# sigverify: `make run` starts the product, `make test` runs lint and the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp

HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint bench lodo crossval install clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/sigverify db upgrade
	@echo "sigverify: admin pages and API at http://$(HOST):$(PORT)/ (first start: see the admin password below)"
	$(BIN)/sigverify serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

lint: install
	$(BIN)/ruff check .

# The browser tests drive Debian's Chromium; install it when it is missing (root, apt-based systems).
chromium:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make test: installing Chromium for the browser tests (apt-get install chromium)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
			|| echo "make test: could not install Chromium; the browser tests will say so"; \
	fi

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/mypy store enroll verify
	url="$${SIGVERIFY_TEST_DATABASE_URL-$$(.ci/test-database-url)}" && \
		SIGVERIFY_TEST_DATABASE_URL="$$url" $(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench.run

lodo: install
	LODO_CARD=siamese/weights/siamese_signature.json LODO_TRAIN_ARGS="--keep last --test-time-zooms 0.9,1.1" bench/lodo.sh

crossval: install
	bench/crossval.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
