#!/usr/bin/env bash
# Load tracekit's exports with the trainers' own code, each in its own virtual environment
# (their pins cannot share ours: verl 0.9 wants transformers < 5.11, so huggingface_hub 1.x;
# LLaMA-Factory 0.9.5 wants datasets <= 4.0.0 and trl <= 0.24). Not part of the test run.
#
#   bash benchmarks/check_clients.sh            # venvs in ${CLIENTS_DIR:-$HOME/.cache/tracekit-clients}
#
# It builds a small store with the project's .venv, exports it for verl and LLaMA-Factory, then:
# - verl 0.9.1: RLHFDataset and MultiTurnSFTDataset read the export; compute_score is loaded by
#   verl's own get_custom_reward_fn (pkg:// path and file path) and called by keyword;
# - LLaMA-Factory 0.9.5: get_dataset with template qwen reads the sharegpt export;
# and compares the row counts with what the export wrote; then runs tests/test_hub.py in verl's
# environment, which has huggingface_hub 1.x (ours has 2.x). Exit status 1 when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CLIENTS=${CLIENTS_DIR:-$HOME/.cache/tracekit-clients}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$CLIENTS"

venv() {  # venv NAME PACKAGES...: create once; torch first (pip finds the local CPU build of 2.13.0)
  local name=$1; shift
  if [ ! -x "$CLIENTS/$name/bin/python" ] || [ ! -f "$CLIENTS/$name/.ready" ]; then
    echo "== building the $name environment (once; several minutes)"
    python3 -m venv "$CLIENTS/$name"
    "$CLIENTS/$name/bin/python" -m pip install -q --upgrade pip
    "$CLIENTS/$name/bin/python" -m pip install -q torch==2.13.0
    "$CLIENTS/$name/bin/python" -m pip install -q "$@"
    touch "$CLIENTS/$name/.ready"
  fi
}

echo "== exports (tracekit in .venv)"
.venv/bin/python benchmarks/clients/make_exports.py "$WORK"

venv verl verl==0.9.1
"$CLIENTS/verl/bin/python" -m pip install -q -e "$REPO" pytest matplotlib  # compute_score imports tracekit
"$CLIENTS/verl/bin/python" -c 'import verl, transformers, huggingface_hub, datasets; print("verl", verl.__version__, "transformers", transformers.__version__, "huggingface_hub", huggingface_hub.__version__, "datasets", datasets.__version__)'
"$CLIENTS/verl/bin/python" benchmarks/clients/tiny_model.py "$WORK/tiny" >/dev/null
status=0
"$CLIENTS/verl/bin/python" benchmarks/clients/check_verl.py "$WORK" "$WORK/tiny" || status=1
echo "== tracekit push with huggingface_hub 1.x (verl's environment): tests/test_hub.py"
"$CLIENTS/verl/bin/python" -m pytest -q -p no:cacheprovider tests/test_hub.py || status=1

venv lf llamafactory==0.9.5
export DISABLE_VERSION_CHECK=1
"$CLIENTS/lf/bin/python" -c 'import llamafactory, transformers, datasets, trl; print("llamafactory", llamafactory.__version__, "transformers", transformers.__version__, "datasets", datasets.__version__, "trl", trl.__version__)'
"$CLIENTS/lf/bin/python" benchmarks/clients/check_llamafactory.py "$WORK" "$WORK/tiny" || status=1
exit $status
