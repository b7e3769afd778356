# CPS4 entry points. `make demo` and `make test` bootstrap .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: env test test-slow test-all demo clean

env:
	@bash tools/setup_env.sh

test: env
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

test-slow: env
	$(PY) -m pytest tests -m slow $(PYTEST_ARGS)

test-all: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: env
	@bash tools/demo.sh

clean:
	rm -rf work_dirs/demo build *.egg-info
