"""Budget forcing and the continuation of a partial assistant turn in every backend."""

import json
import re
import sys
import types

import pytest

from tracekit.errors import TracekitError
from tracekit.evaluate.budget import Start, force_budget
from tracekit.evaluate.config import BudgetForcing, EvalConfig, EvalModel, EvalTask
from tracekit.evaluate.stage import run_eval
from tracekit.sampling.base import Completion, Request, SamplingParams
from tracekit.sampling.registry import make_sampler
from tracekit.sampling.scripted import ScriptedSampler
from tracekit.store import Store

MESSAGES = ({"role": "user", "content": "What is 12 * 3?"},)
TRIGGER = "\n<sample>\n"


class Recording(ScriptedSampler):
    """A scripted sampler that keeps every request it was given."""

    def __init__(self, respond):
        super().__init__(respond=respond, model_id="rec")
        self.requests = []

    def generate(self, requests):
        self.requests.extend(requests)
        return super().generate(requests)


CONTINUATION = "again 12 * 3 = 36 <answer>36</answer>\n</sample>\n</think>\n<answer>36</answer>"


def first_then_fixed(messages, rng):
    """A fresh turn thinks once and answers 35; a continuation tries again and answers 36."""
    if messages[-1]["role"] == "assistant":
        prefix = messages[-1]["content"]
        assert prefix.endswith(TRIGGER) and "</think>" not in prefix
        return CONTINUATION
    return "<think>\n<sample>\n12 * 3 = 35 <answer>35</answer>\n</sample>\n</think>\n<answer>35</answer>"


def test_force_inserts_the_trigger_and_honours_the_budgets():
    sampler = Recording(first_then_fixed)
    params = SamplingParams(max_tokens=20)
    first = sampler.generate([Request(MESSAGES, n=1, seed=1, params=params)])[0][0]
    start = Start(MESSAGES, params, 1, first.text, first.finish_reason, first.n_tokens)
    cfg = BudgetForcing(trigger=TRIGGER, forces=2, total_tokens=60)
    (out,) = force_budget(sampler, [start], cfg)
    assert out.n_forced == 2 and out.text.count("</sample>\n" + TRIGGER) == 2  # inserted after each sample
    # the first response is kept up to </think>, then the trigger, then the continuation
    assert out.text.startswith(first.text[: first.text.rfind("</think>")] + TRIGGER)
    assert out.text.rstrip().endswith("<answer>36</answer>") and out.text.count("</think>") == 1
    cont = sampler.requests[1:]
    assert [r.prefix.endswith(TRIGGER) for r in cont] == [True, True]
    c = len(CONTINUATION.split())  # the scripted backend counts words as tokens
    assert cont[0].params.max_tokens == 60 - first.n_tokens  # what is left of the total budget
    assert cont[1].params.max_tokens == 60 - first.n_tokens - c
    assert out.n_tokens == first.n_tokens + 2 * c <= 60


def test_force_stops_when_the_budget_is_spent():
    long = lambda messages, rng: " ".join(["word"] * 50)  # noqa: E731 - always runs out of tokens
    sampler = Recording(long)
    params = SamplingParams(max_tokens=10)
    first = sampler.generate([Request(MESSAGES, n=1, seed=1, params=params)])[0][0]
    assert first.finish_reason == "length" and first.n_tokens == 10
    start = Start(MESSAGES, params, 1, first.text, first.finish_reason, first.n_tokens)
    (out,) = force_budget(sampler, [start], BudgetForcing(trigger="Wait", forces=5, total_tokens=25))
    assert out.n_forced == 1 and out.n_tokens == 25 and out.finish_reason == "length"
    assert out.text.startswith(first.text + "Wait")  # no marker, no answer: the trigger goes at the end

    # unknown token counts (some HTTP endpoints): every generation is charged its whole allowance
    class NoCounts:
        def generate(self, requests):
            return [[Completion("ok", "stop", None)] for _ in requests]

    blind = Start(MESSAGES, params, 1, "so <answer>1</answer>", "stop", None)
    (out,) = force_budget(NoCounts(), [blind], BudgetForcing(trigger="Wait", forces=3, total_tokens=30))
    assert out.n_tokens == 30 and out.n_forced == 1 and out.text == "so Waitok"


def test_eval_reports_accuracy_with_and_without_forcing(tmp_path):
    def respond(messages, rng):
        q = next(m["content"] for m in messages if m["role"] == "user")
        a, b = map(int, re.search(r"What is (\d+) \* (\d+)\?", q).groups())
        if messages[-1]["role"] == "assistant":
            return f"recheck {a * b} <answer>{a * b}</answer>\n</sample>\n</think>\n<answer>{a * b}</answer>"
        return f"<think>\n<sample>\n<answer>{a * b + 1}</answer>\n</sample>\n</think>\n<answer>{a * b + 1}</answer>"

    cfg = EvalConfig(
        store=str(tmp_path / "st"),
        models=(EvalModel(label="m", backend="scripted"),),
        tasks=(EvalTask(name="multiplication", n=3, options={"digits": 2, "digits_b": 1}),),
        k=2,
        params=SamplingParams(max_tokens=30),
        budget_forcing=BudgetForcing(trigger=TRIGGER, total_tokens=80),
    )
    sampler = Recording(respond)
    out = run_eval(cfg, samplers={"m": sampler}, progress=False, echo=print)
    acc = {r["condition"]: r["mean"] for r in out["results"]}
    assert acc == {"base": 0.0, "forced": 1.0} and out["new_rows"] == {"base": 6, "forced": 6}
    ev = Store(cfg.store).read("evals")
    forced = ev.filter(ev["condition"] == "forced")
    assert forced["n_forced"].to_list() == [1] * 6 and set(forced["max_tokens"]) == {80}
    assert (
        all(t.count("</sample>\n" + TRIGGER) == 1 for t in forced["response"])
        and (forced["n_tokens"] <= 80).all()
    )
    n = len(sampler.requests)
    again = run_eval(cfg, samplers={"m": sampler}, progress=False, echo=lambda *a: None)
    assert again["new_rows"] == {} and len(sampler.requests) == n


# ---------------------------------------------------------------- continuation in each backend


def test_vllm_continues_the_prefix(monkeypatch):
    seen = {}

    class FakeTokenizer:
        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "|".join(m["content"] for m in messages) + "|assistant:"

    class FakeLLM:
        def __init__(self, **kw):
            pass

        def get_tokenizer(self):
            return FakeTokenizer()

        def generate(self, prompts, sampling_params, use_tqdm):
            seen["prompts"] = prompts
            out = types.SimpleNamespace(text=" 36</answer>", finish_reason="stop", token_ids=[1, 2])
            return [types.SimpleNamespace(outputs=[out]) for _ in prompts]

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = FakeLLM, lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", fake)
    sampler = make_sampler("vllm", model="m")
    params = SamplingParams(max_tokens=8)
    out = sampler.generate(
        [Request(MESSAGES, 1, 0, params, prefix="It is <answer>"), Request(MESSAGES, 1, 0, params)]
    )
    assert seen["prompts"] == ["What is 12 * 3?|assistant:It is <answer>", "What is 12 * 3?|assistant:"]
    assert out[0][0].text == " 36</answer>"  # the continuation only


def test_http_continues_the_prefix():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    bodies = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            data = json.dumps(
                {"choices": [{"index": 0, "message": {"content": " 36</answer>"}, "finish_reason": "stop"}]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        req = Request(MESSAGES, 1, 0, SamplingParams(max_tokens=8), prefix="It is <answer>")
        out = make_sampler("http", base_url=url, model="m").generate([req])
        assert out[0][0].text == " 36</answer>"
        body = bodies[-1]
        assert body["messages"][-1] == {"role": "assistant", "content": "It is <answer>"}
        assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
        plain = make_sampler("http", base_url=url, model="m").generate([Request(MESSAGES, 1, 0, req.params)])
        assert plain and "continue_final_message" not in bodies[-1] and len(bodies[-1]["messages"]) == 1
        with pytest.raises(TracekitError, match="continue_final_message"):
            make_sampler("http", base_url=url, model="m", vllm_extras=False).generate([req])
    finally:
        srv.shutdown()


def test_transformers_continues_the_prefix(tiny_model):
    sampler = make_sampler("transformers", model=tiny_model, device="cpu", threads=1)
    req = Request(MESSAGES, n=2, seed=3, params=SamplingParams(max_tokens=6), prefix="It is <answer>")
    assert (
        sampler.prompt_text(req)
        == "<|im_start|>user\nWhat is 12 * 3?<|im_end|>\n<|im_start|>assistant\nIt is <answer>"
    )
    out = sampler.generate([req, Request(MESSAGES, n=1, seed=3, params=req.params)])
    assert [len(o) for o in out] == [2, 1]
    for comp in out[0]:
        assert 0 < comp.n_tokens <= 6 and not comp.text.startswith("It is")
