# Two commands: `make demo` and `make test`. Everything else is plumbing for them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "driftwatch needs Python 3.11+; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)  ## run the daemon on embedded synthetic data that starts drifting after a minute
	$(BIN)/driftwatch demo

test: $(STAMP) lint  ## lint, then every test (integration tests skip without server binaries unless CI=true)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check driftwatch tests benchmarks
	$(BIN)/ruff format --check driftwatch tests benchmarks
	$(BIN)/mypy driftwatch

format: $(STAMP)
	$(BIN)/ruff format driftwatch tests benchmarks

bench: $(STAMP)  ## print speed and false-alarm figures (minutes; not part of make test)
	$(BIN)/python benchmarks/bench_stats.py
	$(BIN)/python benchmarks/bench_false_alarms.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var demo-work
