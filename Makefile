# The two commands a newcomer needs on a fresh Debian machine (as root):
#   make demo   — install what is missing, then run the demo on the simulated station
#   make test   — install what is missing, then lint, type-check and run the whole suite
# Everything else here serves those two.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-packages
PROD_PKGS   := apdu sscard hsm_stub printer personalize simulator

# Debian packages: pcscd + vsmartcard-vpcd (virtual readers), libpcsclite-dev + swig + gcc
# (to build pyscard when no wheel fits), python3-venv/-dev (a venv and headers for Debian's
# python3), fonts-wqy-microhei (Chinese text in PDFs and card faces), poppler-utils
# (pdftotext/pdftoppm, with which tests read PDFs back), faketime (tests run `sscard` with the
# clock pinned: no test depends on the day it is run), zbar-tools (zbarimg decodes the
# barcodes printed on documents), openssl (the independent implementation that the crypto
# tests re-run: tests/unit/test_independent_vectors.py; single DES needs its legacy provider,
# which Debian's libssl3 ships), opensc + pcsc-tools (opensc-tool, pcsc_scan and scriptor:
# third-party tools that drive the virtual cards in tests and in the testers' guide),
# postgresql (initdb/pg_ctl of PostgreSQL 15: the tests start a private server of their own,
# tests/pgserver.py; the cluster Debian's package creates is stopped and set to start manually),
# chromium (the browser Playwright drives in the console's tests: Playwright cannot download
# its own here).
APT_PACKAGES := pcscd vsmartcard-vpcd libpcsclite-dev swig gcc python3-venv python3-dev \
                fonts-wqy-microhei poppler-utils faketime zbar-tools openssl opensc pcsc-tools \
                postgresql chromium

.PHONY: demo test lint typecheck unit integration bench deps system-deps clean

demo: deps
	$(VENV)/bin/sscard demo --out out

test: deps lint typecheck
	$(PY) -m pytest -v tests

lint: deps
	$(VENV)/bin/ruff check $(PROD_PKGS) tests bench

typecheck: deps
	$(VENV)/bin/mypy --strict $(PROD_PKGS)

unit: deps
	$(PY) -m pytest -v tests/unit

integration: deps
	$(PY) -m pytest -v tests/integration

bench: deps
	$(PY) bench/apdu_overhead.py
	$(PY) bench/hsm_throughput.py
	$(PY) bench/personalize_chip.py
	$(PY) bench/print_job.py
	$(PY) bench/reissue_e2e.py

deps: $(STAMP)

system-deps: $(SYSTEM_STAMP)

$(SYSTEM_STAMP): Makefile
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing — run as root or: sudo apt-get install$$missing" >&2; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing || exit 1; \
	  case " $$missing " in *" postgresql "*) \
	    for conf in /etc/postgresql/*/main/start.conf; do \
	      [ -f "$$conf" ] || continue; echo manual > "$$conf"; \
	      v=$${conf#/etc/postgresql/}; pg_ctlcluster "$${v%%/*}" main stop 2>/dev/null || true; \
	    done;; \
	  esac; \
	fi
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@touch $@

$(STAMP): pyproject.toml $(SYSTEM_STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

clean:
	rm -rf $(VENV) out build *.egg-info .mypy_cache .ruff_cache .pytest_cache
