# make test: the default test run (what CI runs); make regen: rebuild the golden bundles.
PYTHON ?= python

.PHONY: test test-all lint regen bench

test:
	$(PYTHON) -m pytest -q

test-all:
	$(PYTHON) -m pytest -q -m "slow or not slow"

lint:
	ruff check compiler runtime tests benchmarks
	ruff format --check compiler runtime tests benchmarks
	mypy

# Recompile every example into build/<name>/ after an intended change to the compiler.
regen:
	$(PYTHON) -m lfm.compiler.golden --regen

bench:
	$(PYTHON) benchmarks/compile_latency.py
