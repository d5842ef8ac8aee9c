# Quickstart: `make serve` (embedded SQLite + demo data, GraphiQL at http://127.0.0.1:8000/graphql)
# and `make test` (the whole suite). Both make the virtual environment they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Browser assets from the npm registry (GraphiQL, axe-core for the pages' tests), pinned and
# integrity-checked (client/vendor.json).
VENDORED := client/static/vendor/.installed

.PHONY: serve test install demo-data schema clean bench vendor

# The vendored files first: the package data names client/static/vendor, which must exist to install.
# setuptools' advice on editable installs (folders named like packages take precedence) is how this
# project runs from its source tree on purpose, and the vendored files are package data in folders
# that merely look like packages (vendor/react/umd): neither is a problem to show at every install.
QUIET_SETUPTOOLS := ignore:Editable installation,ignore:Package 'livecart.client.static.vendor

$(STAMP): pyproject.toml $(VENDORED)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PYTHONWARNINGS="$(QUIET_SETUPTOOLS)" $(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

$(VENDORED): client/vendor.json client/vendor.py
	$(PYTHON) client/vendor.py
	touch $(VENDORED)

install: $(STAMP) $(VENDORED)

serve: $(STAMP) $(VENDORED)
	$(BIN)/livecart demo-data
	$(BIN)/livecart serve

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file per process at a time;
# each worker has its own PostgreSQL database, Redis db and port ranges (tests/conftest.py).
TEST_WORKERS ?= 3
test: $(STAMP) $(VENDORED)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Every measurement of issue 8 in one run, written to bench/REPORT.md. Needs PostgreSQL, Redis and
# npm (PostGraphile is installed into bench/postgraphile/); BENCH_ARGS=--quick tries it at a tiny size.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench $(BENCH_ARGS)

schema: $(STAMP)
	$(BIN)/livecart export-schema schema.graphql

clean:
	rm -rf $(VENV) var .pytest_cache client/static/vendor
