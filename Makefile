# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv and install lrlab into it on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch lies on this machine's disk; installing it first keeps pip from a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lrlab study examples/demo.toml --verify --out out/demo

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

# every benchmark but optim_warmup.py and study.py (minutes to an hour of training); each prints ratios against its own baseline
bench: $(STAMP)
	for b in schedules optim laws train probes sweep; do $(PY) benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) out
