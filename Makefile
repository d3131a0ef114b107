# Leaseline — one Makefile for set-up, running and testing. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM ?= /usr/lib/chromium/chromium
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: peers lighthouse lock outdated
.PHONY: help install run test test-unit test-integration test-e2e lint format bench translations chromium system-deps clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Installs are locked with hashes (issue 14): a fresh clone installs exactly what was tested, whatever
# PyPI published since. `make lock` regenerates the three files from pyproject.toml; `make outdated` shows
# what a refresh would bring. Build tools come from their own lock and every build runs without isolation,
# so nothing unhashed is fetched for an sdist's build either.
LOCK := requirements.lock
LOCK_BUILD := requirements-build.lock
LOCK_NODEPS := requirements-nodeps.lock
PIP := $(BIN)/python -m pip --quiet

$(STAMP): $(LOCK) $(LOCK_BUILD) $(LOCK_NODEPS) pyproject.toml
	@# requires-python (pyproject.toml): rapidocr-onnxruntime 1.4.4 has no release for Python 3.13+
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info < (3, 13))' || \
	  { echo "Python 3.11 or 3.12 is needed ($(PYTHON))"; exit 1; }
	@test -x $(BIN)/pip || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); } || \
	  { echo "python3 -m venv failed: on Debian, install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(PIP) install --require-hashes -r $(LOCK_BUILD)
	$(PIP) install --require-hashes --no-build-isolation -r $(LOCK)
	@# face-recognition pins dlib, which has no wheels; dlib-bin provides it prebuilt (RECIPES.md).
	@# rapidocr-onnxruntime asks for opencv-python, which needs libGL: opencv-python-headless (pyproject) serves cv2.
	$(PIP) install --require-hashes --no-deps -r $(LOCK_NODEPS)
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --no-header

lock: ## Regenerate the hash-locked requirements from pyproject.toml (needs the network to PyPI)
	@test -x $(BIN)/uv || { test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV); $(PIP) install uv; }
	$(UV_COMPILE) pyproject.toml --extra test --extra dev -o $(LOCK)
	@# pip, setuptools and wheel at the versions the project lock chose (setuptools) or the newest (pip, wheel)
	grep -E '^setuptools==' $(LOCK) | cut -d' ' -f1 | cat - <(printf 'pip\nwheel\n') | \
	  $(UV_COMPILE) - -o $(LOCK_BUILD)
	printf 'face-recognition==1.3.0\nrapidocr-onnxruntime==1.4.4\n' | $(UV_COMPILE) --no-deps - -o $(LOCK_NODEPS)

outdated: ## What a refresh of the lock would bring (nothing is changed)
	@test -x $(BIN)/uv || $(MAKE) --no-print-directory install
	@$(UV_COMPILE) --upgrade pyproject.toml --extra test --extra dev -o /tmp/leaseline-outdated.lock
	@diff <(grep -E '^[a-z0-9]' $(LOCK) | cut -d' ' -f1) <(grep -E '^[a-z0-9]' /tmp/leaseline-outdated.lock | cut -d' ' -f1) \
	  | grep -E '^[<>]' || echo "The lock is current."

install: system-deps $(STAMP) translations ## Create .venv and install Leaseline with its test and dev tools

translations: $(STAMP) ## Compile the zh_CN message catalogue
	@$(BIN)/pybabel compile -d bff/translations >/dev/null

run: install ## Migrate, load demo data and start every service (http://127.0.0.1:8000)
	$(BIN)/leaseline up

TESSDATA_CHI_SIM := $(firstword $(wildcard /usr/share/tesseract-ocr/*/tessdata/chi_sim.traineddata))

system-deps: ## Install Tesseract OCR, CJK fonts, poppler-utils (pdfsig) and HarfBuzz subsetting (WeasyPrint) when missing (Debian)
	@if ! command -v tesseract >/dev/null || [ -z "$(TESSDATA_CHI_SIM)" ] || ! command -v pdfsig >/dev/null || \
	     [ -z "$(wildcard /usr/lib/*/libharfbuzz-subset.so.0)" ] || \
	     ! fc-list :lang=zh file 2>/dev/null | grep -qiE 'wqy-zenhei|NotoSansCJK'; then \
	  echo "Installing tesseract-ocr (+ chi_sim), CJK fonts, poppler-utils and libharfbuzz-subset0…"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends tesseract-ocr tesseract-ocr-chi-sim fonts-wqy-zenhei fonts-noto-cjk poppler-utils libharfbuzz-subset0 >/dev/null; \
	fi

chromium: ## Install Debian's Chromium for the browser tests when it is missing
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  echo "Installing Debian's chromium (about a minute)…"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

lint: install ## ruff, import-linter contracts, mypy on the pure packages
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

PEERS := tests/peers/oidc/node_modules/.package-lock.json

$(PEERS): tests/peers/oidc/package-lock.json
	cd tests/peers/oidc && npm ci --no-audit --no-fund --loglevel=error

peers: $(PEERS) ## Install the test peers (a real OpenID provider: npm oidc-provider)

test: install chromium peers lint ## Lint, then the whole suite (unit, integration, e2e)
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test-unit: install ## Unit tests only (pure, no sockets)
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

test-integration: install peers ## Integration tests (real HTTP, real databases, real OpenID provider)
	$(BIN)/python -m pytest -p no:cacheprovider tests/integration $(PYTEST_ARGS)

test-e2e: install chromium peers ## Browser tests (Debian's Chromium, Pixel 7 emulation)
	$(BIN)/python -m pytest -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

.PHONY: screenshots
TOUR := docs/tour

screenshots: install chromium peers ## Regenerate the README's tours (docs/tour/*.png, docs/tour/servicing/*.png): the end-to-end journey tests, one small screenshot per step
	rm -rf $(TOUR).new
	LEASELINE_SCREENSHOTS=$(TOUR).new $(BIN)/python -m pytest -p no:cacheprovider tests/e2e/test_journey.py tests/e2e/test_servicing_journey.py $(PYTEST_ARGS)
	mkdir -p $(TOUR)/servicing && rm -f $(TOUR)/*.png $(TOUR)/servicing/*.png
	mv $(TOUR).new/servicing/*.png $(TOUR)/servicing/ && rmdir $(TOUR).new/servicing
	mv $(TOUR).new/*.png $(TOUR)/ && rmdir $(TOUR).new
	@ls -s $(TOUR) $(TOUR)/servicing

bench: install ## Measure plans, KYC, risk assessments, contracts (render, sign, verify), the evidence log, sessions, the whole journey, the close of business and the books
	$(BIN)/python bench/plans.py
	$(BIN)/python bench/kyc.py
	$(BIN)/python bench/risk.py
	$(BIN)/python bench/contract.py
	$(BIN)/python bench/ledger_store.py
	$(BIN)/python bench/sessions.py
	$(BIN)/python bench/journey.py
	$(BIN)/python bench/servicing.py
	$(BIN)/python bench/books.py

LIGHTHOUSE := bench/node/node_modules/.package-lock.json

$(LIGHTHOUSE): bench/node/package-lock.json
	@echo "Installing Lighthouse 12 (npm ci in bench/node)…" >&2
	@cd bench/node && npm ci --no-audit --no-fund --loglevel=error >&2

lighthouse: install chromium $(LIGHTHOUSE) ## Lighthouse 12 on the builder, sign-in and KYC pages (LIGHTHOUSE_ARGS="--json --runs 3")
	@CHROME_PATH=$${CHROME_PATH:-/usr/bin/chromium} $(BIN)/python bench/lighthouse.py $(LIGHTHOUSE_ARGS)

format: install ## Format and fix imports
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the virtualenv and local state
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
