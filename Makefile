# Quickstart: `make serve` (embedded SQLite + demo data, GraphiQL at http://127.0.0.1:8000/graphql)
# and `make test` (the whole suite). Both make the virtual environment they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test install demo-data schema clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/livecart demo-data
	$(BIN)/livecart serve

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file per process at a time;
# each worker has its own PostgreSQL database, Redis db and port ranges (tests/conftest.py).
TEST_WORKERS ?= 3
test: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Every measurement of issue 8 in one run, written to bench/REPORT.md. Needs PostgreSQL, Redis and
# npm (PostGraphile is installed into bench/postgraphile/); BENCH_ARGS=--quick tries it at a tiny size.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench $(BENCH_ARGS)

schema: $(STAMP)
	$(BIN)/livecart export-schema schema.graphql

clean:
	rm -rf $(VENV) var .pytest_cache
