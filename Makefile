# The README's two commands: `make demo` and `make test`. Both set up .venv first
# (idempotent: seconds when everything is installed).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo demo-det test

setup:
	@bash tools/setup_env.sh $(VENV)

demo: setup
	$(PY) tools/demo.py

demo-det: setup
	$(PY) tools/demo_det.py

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)
