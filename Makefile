# `make demo` runs the tutorial's experiment; `make test` runs the test suite; `make mutate MODULE=...`
# runs mutation testing on one module (docs/mutation-testing.md; not part of `make test`).
# `make dist` builds the wheel and the sdist into dist/; `make dist-check` also installs the wheel into a
# clean environment with the lowest supported versions and runs the command and a quick tier of the tests.
# Both create .venv if missing and install the pinned set-up (requirements-dev.txt) and the package.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.squareseq-installed
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test test-quick test-hardening lint bench mutate dist dist-check clean

$(STAMP): pyproject.toml requirements-dev.txt
	@test -x $(PY) || { echo "make: creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "make: installing the pinned set-up into $(VENV) (CPU torch 2.13.0 and the rest; 1-2 minutes the first time)"
	@$(PIP) -r requirements-dev.txt
	@echo "make: installing squareseq into $(VENV) (editable)"
	@$(PIP) --no-deps --no-build-isolation -e .
	@touch $(STAMP)
	@echo "make: $(VENV) is ready; its commands: . $(VENV)/bin/activate (then squareseq --help)"

demo: $(STAMP)
	$(VENV)/bin/squareseq train

# The whole suite on this CPU's kernels, then the exactness tests (marker `exact`) again on torch's
# portable kernels, so an assertion that holds only on one CPU's kernel set fails on every machine.
# Tests run on every core (pytest-xdist; a module's tests stay on one worker, so its fixtures run once).
XDIST := -n auto --dist loadscope
test: lint
	$(PY) -m pytest -q $(XDIST)
	ATEN_CPU_CAPABILITY=default $(PY) -m pytest -q $(XDIST) -m exact

# ruff (style, imports, likely bugs) over the code, mypy (types) over the package.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples tools
	$(VENV)/bin/mypy src/squareseq

# The quick tier for the edit-test loop (about 30 s): everything but the tests marked slow.
test-quick: $(STAMP)
	$(PY) -m pytest -q $(XDIST) -m "not slow"

# The hardening tests alone (bounds, the run-folder lock, the run record, signals, hostile files).
test-hardening: $(STAMP)
	$(PY) -m pytest -q -m hardening

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# Mutation testing of one module against its tests (a few minutes on 2 cores); see docs/mutation-testing.md.
#   make mutate MODULE=src/squareseq/training/metrics.py [TESTS="tests/test_metrics.py ..."] [JOBS=2] [ARGS="--sample 80"]
JOBS ?= 2
mutate: $(STAMP)
	@test -n "$(MODULE)" || { echo "make: give the module, e.g. make mutate MODULE=src/squareseq/training/metrics.py"; exit 2; }
	$(PY) tools/mutate.py $(MODULE) -j $(JOBS) $(if $(TESTS),--tests $(TESTS)) $(ARGS)

# The wheel and the sdist in dist/, built offline (no isolated build environment: the set-up's setuptools).
dist: $(STAMP)
	rm -rf dist
	$(PY) -m build --no-isolation --outdir dist .

# dist, then the wheel installed into a clean venv with requirements-lowest.txt (pyproject's lower bounds)
# and checked from outside the source tree: squareseq --version, python -m squareseq, a 3-epoch train,
# the sdist's files and a quick tier of the tests (tools/check_dist.sh; about 1-2 minutes).
dist-check: $(STAMP)
	tools/check_dist.sh $(PY)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis

# The documentation site (MkDocs, mkdocs.yml) into build/site, warnings as errors: the pages in docs/,
# the CLI reference generated from the parser, the API reference from the docstrings and the figures
# drawn by squareseq (tools/docs/hooks.py). Open build/site/index.html.
.PHONY: docs
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# The notebooks (notebooks/*.ipynb, stored without outputs) executed top to bottom into
# build/notebooks/ with their outputs and figures (about a minute; the tests run them too).
.PHONY: notebooks
notebooks: $(STAMP)
	$(PY) tools/run_notebooks.py notebooks/tutorial.ipynb notebooks/chapter.ipynb notebooks/own_data.ipynb --out build/notebooks
