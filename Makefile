# Quickstart: `make serve` (embedded SQLite + demo data, GraphiQL at http://127.0.0.1:8000/graphql)
# and `make test` (the whole suite). Both make the virtual environment they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test install demo-data schema clean bench vendor

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

# Browser files from the npm registry (client/vendor.json: pinned, integrity-checked; no Node needed).
vendor: $(STAMP)
	$(BIN)/python client/vendor.py

install: $(STAMP) vendor

serve: $(STAMP) vendor
	$(BIN)/livecart demo-data
	$(BIN)/livecart serve

test: $(STAMP) vendor
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Every measurement of issue 8 in one run, written to bench/REPORT.md. Needs PostgreSQL, Redis and
# npm (PostGraphile is installed into bench/postgraphile/); BENCH_ARGS=--quick tries it at a tiny size.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench $(BENCH_ARGS)

schema: $(STAMP)
	$(BIN)/livecart export-schema schema.graphql

clean:
	rm -rf $(VENV) var .pytest_cache
