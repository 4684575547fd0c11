"""The http backend's streaming: a run against stand-in OpenAI servers with model-like latency,
one job in flight (every call waits for its slowest request before the next is asked) against
two and four (the next chunk's requests fill the workers the tail leaves idle), in the same run.

Each stand-in server (a thread on 127.0.0.1) answers a request after ``--per-token`` seconds per
token of a reply whose length is drawn from a long-tailed distribution (most replies short, a
few run to ``max_tokens``, as sampled reasoning does), seeded by the request, so every case
sees the same latencies. The time is the whole ``run_pipeline`` (sampling, reflection, commits,
rearrangement).

    .venv/bin/python benchmarks/bench_http.py --problems 16 --endpoints 2 --concurrency 4
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench_executor import run_config as bench_run_config  # beside this file: one config for both

from tracekit.executor import make_executor
from tracekit.pipeline import run_pipeline
from tracekit.pipeline.config import RunConfig
from tracekit.sampling.registry import make_sampler


def serve(per_token: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rng = random.Random(json.dumps(body["messages"]) + str(body.get("seed")))
            cap = body["max_tokens"]
            tokens = min(cap, max(4, int(math.exp(rng.gauss(math.log(cap / 6), 0.9)))))
            time.sleep(per_token * tokens)
            text = " ".join(["step"] * (tokens - 3)) + f" <answer>{rng.randint(1, 99)}</answer>"
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
            finish = "length" if tokens == cap else "stop"
            reply = {"choices": [{**choice, "index": i, "finish_reason": finish} for i in range(body["n"])]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def run_config(store: str, problems: int, in_flight: int) -> RunConfig:
    return bench_run_config(
        store,
        problems,
        k=2,
        max_tokens=256,
        call_size=16,
        rearrange={"include_truncated": True},
        executor={"max_in_flight": in_flight},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=16)
    ap.add_argument("--endpoints", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4, help="requests in flight per endpoint")
    ap.add_argument("--per-token", type=float, default=0.002, help="stand-in model seconds per token")
    args = ap.parse_args()
    servers = [serve(args.per_token) for _ in range(args.endpoints)]
    urls = [f"http://127.0.0.1:{s.server_address[1]}/v1" for s in servers]
    temp = tempfile.mkdtemp(prefix="tkhttp")
    seconds = {}
    try:
        for in_flight in (1, 2, 4):
            cfg = run_config(f"{temp}/st{in_flight}", args.problems, in_flight)
            sampler = make_sampler("http", base_url=urls, model="m", concurrency=args.concurrency)
            t = time.perf_counter()
            out = run_pipeline(
                cfg,
                sampler=sampler,
                executor=make_executor(cfg.executor),
                progress=False,
                echo=lambda *a: None,
            )
            seconds[in_flight] = time.perf_counter() - t
            sampler.close()
            print(
                f"max_in_flight {in_flight}: {seconds[in_flight]:6.2f} s  "
                f"({out['samples']} samples, {out['reflections']} reflections)"
            )
    finally:
        for s in servers:
            s.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    print(
        f"streaming: max_in_flight 2 is {seconds[1] / seconds[2]:.2f}x and 4 is {seconds[1] / seconds[4]:.2f}x "
        f"the speed of one job at a time ({args.endpoints} endpoints x {args.concurrency} workers)"
    )


if __name__ == "__main__":
    main()
