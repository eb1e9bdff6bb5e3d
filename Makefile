# Two commands do everything on a fresh machine:
#   make run    set up, train the default model on the shipped corpus, evaluate, print where the report is
#   make test   set up, run the test suite (what .ci/run calls)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch==2.13.0 resolves to a CPU build on this project's CPU machines (it lies on local disk there).
# On a GPU machine, pick the CUDA build you need, e.g. make setup TORCH="torch==2.13.0 --index-url URL".
TORCH ?= torch==2.13.0
CONFIG ?= configs/dev-real.yaml

.PHONY: setup run test test-slow notebooks benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: setup
	$(VENV)/bin/framing train $(CONFIG) --set output.overwrite=true

# pytest exits 5 when it collects nothing; that is a broken suite here, so it fails too.
test: setup
	$(PY) -m pytest -m "not slow" -q

test-slow: setup
	$(PY) -m pytest -m slow -q

clean:
	rm -rf runs .pytest_cache
