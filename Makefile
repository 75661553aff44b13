# The README's two commands: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
DB     ?= agentlens.duckdb

.PHONY: demo test test-fast lint typecheck lock samples bench fuzz docs docs-serve clean

# --- environment -------------------------------------------------------------
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "agentlens needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

# runtime dependencies only (for the demo)
$(VENV)/.runtime: $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

# runtime + test/lint tools
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes --compile-bytecode -r requirements-dev.lock
	@touch $@

# --- the two commands ----------------------------------------------------------
demo: $(VENV)/.runtime
	rm -f $(DB)
	$(BIN)/agentlens demo --db $(DB) sample_traces

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy agentlens
	$(BIN)/python -m pytest

# --- helpers -------------------------------------------------------------------
# the quick lane while working: the tests not marked `slow` (over ~2 s, subprocesses, browser, PostgreSQL, notebooks)
test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -m "not slow"

lint: $(VENV)/.dev
	$(BIN)/ruff check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy agentlens

# re-lock after changing dependencies in pyproject.toml
lock: $(BIN)/python
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes -q -o requirements-dev.lock

# regenerate the committed sample traces (seeded: same bytes every time)
samples: $(VENV)/.runtime
	$(BIN)/agentlens samples sample_traces

bench: $(VENV)/.dev
	$(BIN)/python bench/run.py

# the long run of the seeded mutation fuzzer over every input format (docs/bad-input.md#fuzzing)
fuzz: $(VENV)/.dev
	$(BIN)/python bench/fuzz.py --cases 2000 --seed 1

# the documentation site (docs/, mkdocs.yml): regenerate the reference pages, build into build/site
docs: $(VENV)/.dev
	$(BIN)/python -m agentlens.docs
	$(BIN)/mkdocs build --strict

# serve it at http://127.0.0.1:8000, rebuilding as docs/ changes
docs-serve: $(VENV)/.dev
	$(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache $(DB)
