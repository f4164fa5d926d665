# make check: install what the tests need, lint, the default and the slow test runs (what CI
# runs); make test: the default run alone; make regen: rebuild the golden bundles.
PYTHON ?= python

.PHONY: test lint regen bench quickstart check

test:
	$(PYTHON) -m pytest -q

PACKAGES = cli compiler deploy dataset registry runtime serving ui

lint:
	ruff check $(PACKAGES) tests benchmarks
	ruff format --check $(PACKAGES) tests benchmarks
	mypy
	lint-imports  # the layering contracts in pyproject.toml ([tool.importlinter])

# Recompile every example into build/<name>/ after an intended change to the compiler.
regen:
	$(PYTHON) -m lfm.compiler.golden --regen
	$(PYTHON) -m lfm.compiler.reference

bench:
	$(PYTHON) benchmarks/compile_latency.py

# Install, build a tiny local model, compile the quickstart and train it on the CPU.
quickstart:
	@echo "installing torch==2.13.0 and lfm[train] (pip skips what is already installed)"
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e '.[train]'
	lfm dev tiny-model examples/tiny-model --force
	lfm compile examples/quickstart.yaml -o build/quickstart
	$(PYTHON) build/quickstart/train.py

# Everything CI does, from a fresh clone: install what the tests need (each step skipped when
# already done, .ci/install), lint, then the default and the slow test runs.
check:
	PYTHON=$(PYTHON) bash .ci/install
	$(MAKE) lint
	$(PYTHON) -m pytest -q
	$(PYTHON) -m pytest -q -m slow
