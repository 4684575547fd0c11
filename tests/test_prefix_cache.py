"""The transformers backend's shared-prefix cache changes no greedy output (tiny local model)."""

import pytest

from tracekit.sampling.base import Request, SamplingParams

SYSTEM = "Using the numbers make 9 step by step. " * 6
DEMO = [
    {"role": "user", "content": "What is 12 * 3 ?"},
    {"role": "assistant", "content": "the answer is <answer> 36 </answer>"},
]
QUESTIONS = [
    "What is 1 2 3 ?",
    "Using the numbers 1 2 3 make 9 ( 1 + 2 ) * 3",
    "Wait",
    "step by step the answer is Correct Incorrect " * 3,
]


def requests(params, system=SYSTEM):
    head = [{"role": "system", "content": system}, *DEMO]
    return [
        Request(tuple(head + [{"role": "user", "content": q}]), n=2, seed=i, params=params)
        for i, q in enumerate(QUESTIONS)
    ]


@pytest.mark.parametrize("batch_size", [3, 8])
def test_greedy_outputs_are_identical_with_and_without_the_prefix_cache(tiny_model, batch_size):
    from tracekit.sampling.hf import MIN_SHARED_TOKENS, TransformersSampler

    params = SamplingParams(temperature=0, max_tokens=20, repetition_penalty=1.1, stop=("</answer>",))
    reqs = requests(params)
    plain = TransformersSampler(
        model=tiny_model, device="cpu", threads=1, batch_size=batch_size, prefix_cache=False
    )
    cached = TransformersSampler(model=tiny_model, device="cpu", threads=1, batch_size=batch_size)
    texts = [cached.prompt_text(r) for r in reqs]
    enc, cache = cached._encode(texts)
    assert cache is not None and enc["attention_mask"].sum(1).tolist() == [
        len(cached.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts
    ]
    assert MIN_SHARED_TOKENS <= enc["attention_mask"].min(0).values.sum().item()
    assert plain._encode(texts)[1] is None
    want = [[(c.text, c.finish_reason, c.n_tokens) for c in comps] for comps in plain.generate(reqs)]
    got = [[(c.text, c.finish_reason, c.n_tokens) for c in comps] for comps in cached.generate(reqs)]
    assert got == want
    assert any(c[0] for comps in want for c in comps)  # the model did write something


def test_prompts_with_little_in_common_are_left_padded_as_before(tiny_model):
    from tracekit.sampling.hf import TransformersSampler

    sampler = TransformersSampler(model=tiny_model, device="cpu", threads=1)
    params = SamplingParams(temperature=0, max_tokens=4)
    texts = [
        sampler.prompt_text(r) for r in requests(params, system="a")[:1] + requests(params, system="b")[:1]
    ]
    assert sampler._encode(texts)[1] is None
    one = sampler.prompt_text(requests(params)[0])
    assert sampler._encode([one])[1] is None  # a batch of one: nothing to share
