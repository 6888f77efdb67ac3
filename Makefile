# ssgen developer tasks. `make test` sets everything up from scratch (a venv in .venv) and runs the tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test lint bench rehearse clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check ssgen tests scripts

bench: setup
	$(BIN)/python scripts/bench.py

# A released model at full size (random weights) through a loopback Hub and the real commands: make rehearse
# MODEL=var-d16 [DTYPE=bfloat16] [WORK=dir] [ARGS=--load-only]. Table printed, JSON in WORK/MODEL.json (see README "Rehearsal").
MODEL ?= var-d16
DTYPE ?= float32 bfloat16
WORK ?= rehearsal
ARGS ?=
rehearse: setup
	$(BIN)/python scripts/rehearse.py $(MODEL) --dtype $(DTYPE) --work $(WORK) $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
