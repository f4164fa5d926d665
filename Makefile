# make test: the default test run (what CI runs); make regen: rebuild the golden bundles.
PYTHON ?= python

.PHONY: test lint regen bench quickstart

test:
	$(PYTHON) -m pytest -q

PACKAGES = cli compiler deploy dataset registry runtime serving

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
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e '.[train]'
	lfm dev tiny-model examples/tiny-model --force
	lfm compile examples/quickstart.yaml -o build/quickstart
	$(PYTHON) build/quickstart/train.py
