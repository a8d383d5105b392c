# Set-up and the two commands of the README. The CPU torch wheel is installed first, pinned by
# constraints.txt, so that no dependency pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= analysis,dev
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: install test lint demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

test: install  ## the test suite (README's test command)
	$(BIN)/ruff check neurocnnf tests benchmarks
	$(BIN)/python -m pytest -q --durations=10

lint: install
	$(BIN)/ruff check neurocnnf tests benchmarks

demo: install  ## the main job on its embedded default (quickstart, CPU)
	$(BIN)/neurocnnf train quickstart --out results/quickstart/cnnf --resume --no-progress
	$(BIN)/neurocnnf train quickstart-cnn --out results/quickstart/cnn --resume --no-progress
	@echo "activations, analyses and figures of the quickstart workflow: not yet available"

bench: install
	cd benchmarks && ../$(BIN)/python bench_engine.py && ../$(BIN)/python bench_train.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
