# The README's commands: `make demo`, `make test` and `make test-fast` (no `slow` tests).
# All set up .venv first (idempotent: seconds when everything is installed).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo demo-det test test-fast

setup:
	@bash tools/setup_env.sh $(VENV)

demo: setup
	$(PY) tools/demo.py

demo-det: setup
	$(PY) tools/demo_det.py

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)
