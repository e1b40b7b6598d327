# The two commands: `make demo` and `make test`. Everything else is a step they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_DIR := /tmp/stakeledger-make-test-pg
PG_PORT ?= 55433
DEMO_DB ?= demo.db
# The suite runs on every core: each test has its own schema, file and port.
TEST_WORKERS ?= auto

.PHONY: demo test lint install install-test bench clean web-assets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python web-assets
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python tools/ozverify/node_modules web-assets
	$(BIN)/pip install --quiet -e ".[test,evm]"

# The npm package @openzeppelin/merkle-tree checks our Merkle dumps in the tests.
tools/ozverify/node_modules: tools/ozverify/package-lock.json
	npm ci --prefix tools/ozverify --no-audit --no-fund --loglevel=error
	touch $@

# The web page's chart library (uPlot) and its keccak256 bundle (@noble/hashes through esbuild),
# from the npm registry at the versions tools/web/package-lock.json pins, into the package's
# static folder: the page loads nothing from anywhere but the server.
WEB_VENDOR := api/web/static/vendor
web-assets: $(WEB_VENDOR)/keccak.js

$(WEB_VENDOR)/keccak.js: tools/web/package-lock.json tools/web/build.mjs tools/web/keccak.mjs
	npm ci --prefix tools/web --no-audit --no-fund --loglevel=error
	node tools/web/build.mjs $(WEB_VENDOR)

demo: install
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	$(BIN)/stakeledger --db sqlite:///$(DEMO_DB) demo

# One line length, one import order, no unused names: the formatter and linter as configured
# in pyproject.toml. `make lint` alone checks; `.venv/bin/ruff format .` fixes the layout.
lint: install-test
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .

# Lints, starts a throwaway PostgreSQL on loopback, runs the whole suite on every backend,
# and stops the server whatever the outcome.
test: install-test lint
	@.ci/chromium.sh
	@url=$$(.ci/postgres.sh start $(PG_DIR) $(PG_PORT)) || exit 1; \
	STAKELEDGER_TEST_POSTGRES_URL=$$url $(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS); status=$$?; \
	.ci/postgres.sh stop $(PG_DIR); exit $$status

# Every benchmark against one throwaway PostgreSQL; each prints a table and JSON and
# writes bench/results/NAME.json. `make bench BENCH_ARGS=--quick` for a smoke run,
# `make bench BENCHES="ledger projections"` for some of them.
BENCHES ?= lmsr ledger trading settlement projections api export feed
BENCH_ARGS ?=
# After them bench/goals.py checks every ratio of issue 17 against 80 % of its goal and
# fails the target if one falls short (or a benchmark left no result).
bench: install-test
	@url=$$(.ci/postgres.sh start $(PG_DIR) $(PG_PORT)) || exit 1; status=0; started=$$(date +%s); \
	for name in $(BENCHES); do \
	  echo "== bench/$$name.py $(BENCH_ARGS)"; \
	  STAKELEDGER_BENCH_POSTGRES_URL=$$url $(BIN)/python bench/$$name.py $(BENCH_ARGS) || status=$$?; \
	done; \
	.ci/postgres.sh stop $(PG_DIR); \
	echo "== bench/goals.py (elapsed $$(( $$(date +%s) - started )) s)"; \
	$(BIN)/python bench/goals.py --since $$started $(foreach name,$(BENCHES),--only $(name)) || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache $(DEMO_DB)*

# The fault-injecting simulation (tests/simulation/vopr.py) from more seeds than CI runs, on
# every backend against one throwaway PostgreSQL: `make simulate SEEDS=2000`, and
# `make simulate SIM_ARGS="--backend sqlite --first 5000 --steps 80"` for other runs.
SEEDS ?= 500
SIM_ARGS ?=
.PHONY: simulate
simulate: install-test
	@url=$$(.ci/postgres.sh start $(PG_DIR) $(PG_PORT)) || exit 1; \
	STAKELEDGER_TEST_POSTGRES_URL=$$url $(BIN)/python -m tests.simulation.vopr --seeds $(SEEDS) $(SIM_ARGS); status=$$?; \
	.ci/postgres.sh stop $(PG_DIR); exit $$status
