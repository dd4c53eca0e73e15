# `make demo` and `make test` each set up .venv (Python 3.11) on first use, then do their job.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing tfzoo and its dev extras into $(VENV) (first run downloads TensorFlow: a few minutes)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# TensorFlow's C++ log lines quiet unless TF_CPP_MIN_LOG_LEVEL is set (as `tfzoo` does).
demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=$${TF_CPP_MIN_LOG_LEVEL:-3} $(BIN)/python recipes/demo.py

# Lint and format checks first (ruff, configured in pyproject.toml; `ruff format .` fixes
# the format), then two pytest workers, a test file each at a time (module fixtures are
# built once): most tests are single-threaded tracing, so two cores run the suite in about
# half the time.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not bench_heavy"

# Every bench/ script's quick mode, the costly ones included (about 6 minutes on 2 cores).
bench-check: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests/bench

clean:
	rm -rf runs .demo savedmodels/*/ savedmodels/models.config
