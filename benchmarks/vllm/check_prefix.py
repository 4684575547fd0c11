"""A greedy continuation of a partial assistant turn through a real backend.

    python check_prefix.py BACKEND OPTIONS_JSON

Asks the model to count and gives it the beginning of its answer (``Request.prefix``): the
completion must go on from there (the next number first), hold the continuation only (no echo
of the prefix) and open no new turn. Exit status 1 when it does not.
"""

from __future__ import annotations

import json
import sys

from tracekit.sampling.base import Request, SamplingParams
from tracekit.sampling.registry import make_sampler

if __name__ == "__main__":
    backend, options = sys.argv[1], json.loads(sys.argv[2])
    sampler = make_sampler(backend, **options)
    messages = ({"role": "user", "content": "Count from 1 to 20, separated by commas."},)
    greedy = SamplingParams(temperature=0, max_tokens=12)
    prefix = "1, 2, 3, 4, 5,"
    [[fresh], [cont]] = sampler.generate(
        [
            Request(messages, n=1, seed=0, params=greedy),
            Request(messages, n=1, seed=0, params=greedy, prefix=prefix),
        ]
    )
    print(f"  fresh turn: {fresh.text!r}")
    print(f"  after {prefix!r}: {cont.text!r}")
    ok = cont.text.lstrip().startswith("6") and "<|im_start|>" not in cont.text
    print(
        f"  {'ok  ' if ok else 'FAIL'} the completion continues the partial turn (the next number, no echo)"
    )
    sys.exit(0 if ok else 1)
