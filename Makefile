# flowloom: `make run` starts it, `make test` checks everything. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
LINT_PATHS := flowloom tests $(wildcard benchmarks)

# The web UI (web/, built into flowloom/webui/static): `npm ci` again only when the lockfile
# changed, a build again only when a source did.
WEB_DEPS := web/node_modules/.ci-stamp
WEB_STAMP := flowloom/webui/static/.build-stamp
WEB_SOURCES := web/package.json web/index.html web/vite.config.ts web/tsconfig.json \
	$(shell find web/src -type f 2>/dev/null)

.PHONY: install bytecode run test lint typecheck pytest vitest chromium bench clean

install: $(STAMP) $(WEB_STAMP) bytecode

# flowloom's own modules compiled to bytecode: an editable install has none until Python writes
# it, which it never does with PYTHONDONTWRITEBYTECODE set, and then every start compiled its
# 290 modules from source (a quarter of a second). Only modules changed since are compiled again.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q flowloom

$(WEB_DEPS): web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $(WEB_DEPS)

$(WEB_STAMP): $(WEB_DEPS) $(WEB_SOURCES)
	cd web && npm run build
	@touch $(WEB_STAMP)

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

pytest: install chromium
	$(BIN)/pytest -n 2 --dist loadfile --durations=15

test: lint typecheck vitest pytest

vitest: install
	cd web && npm test -- --run

# The browser tests drive Debian's Chromium; never a downloaded one.
chromium:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update && $$sudo apt-get install -y chromium; }

bench: install
	$(BIN)/python -m benchmarks.engine --db sqlite,postgresql
	$(BIN)/python -m benchmarks.ticks
	$(BIN)/python -m benchmarks.api
	$(BIN)/python -m benchmarks.storage --db sqlite
	$(BIN)/python -m benchmarks.storage --db postgresql
	$(BIN)/python -m benchmarks.startup

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
