# flowloom: `make run` starts it, `make test` checks everything. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
LINT_PATHS := flowloom tests $(wildcard benchmarks)

.PHONY: install run test lint typecheck pytest bench clean

install: $(STAMP)

# Re-installs only when the lockfile or the project metadata changed, so re-running is cheap.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# The pip that ships with some Pythons (23.x) mis-resolves extras under --require-hashes.
	$(BIN)/python -m pip install --quiet 'pip==25.3'
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: install
	$(BIN)/flowloom serve

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck pytest

bench: install
	$(BIN)/python -m benchmarks.storage --db sqlite
	$(BIN)/python -m benchmarks.storage --db postgresql

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
