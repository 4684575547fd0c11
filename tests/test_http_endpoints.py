"""The http backend over several endpoints (issue 22 §3): routing by problem, work sharing at
a call's tail, failover on refused connections. Several real servers on 127.0.0.1, each
recording which requests reached it."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from cli_contract import edited, one_error
from test_http_hardening import Server, ok_reply, send

from tracekit.errors import TracekitError
from tracekit.sampling.base import Request, SamplingParams
from tracekit.sampling.dispatch import home_of
from tracekit.sampling.registry import make_sampler

PARAMS = SamplingParams(max_tokens=8)


@pytest.fixture
def serve():
    started: list[Server] = []
    yield lambda answer: started.append(Server(answer)) or started[-1]
    for s in started:
        s.close()


def recording(delay: float = 0.0):
    got: list[str] = []

    def answer(handler, body):
        got.append(body["messages"][-1]["content"])
        time.sleep(delay)
        send(handler, 200, ok_reply(body["n"], body["messages"][-1]["content"]))

    return answer, got


def requests_of(groups: list[str], per_group: int) -> list[Request]:
    return [
        Request(({"role": "user", "content": f"{g}#{k}"},), 1, k, PARAMS, group=g)
        for g in groups
        for k in range(per_group)
    ]


def dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_requests_of_one_problem_go_to_one_endpoint(serve):
    answers = [recording() for _ in range(3)]
    servers = [serve(a) for a, _ in answers]
    groups = [f"problem-{i}" for i in range(12)]
    sampler = make_sampler("http", base_url=[s.url for s in servers], model="m", concurrency=1)
    reqs = requests_of(groups, 4)
    out = sampler.generate(reqs)
    assert [o[0].text for o in out] == [r.messages[0]["content"] for r in reqs]  # answers in request order
    on_home = sum(
        text.split("#")[0] in {g for g in groups if home_of(g, 3) == e}
        for e, (_, got) in enumerate(answers)
        for text in got
    )
    assert on_home >= 0.75 * len(reqs)  # stealing moves only a call's tail; routing at random would give ~1/3
    assert all(got for _, got in answers)  # every endpoint took part


def test_an_idle_endpoint_takes_over_the_backlog_of_a_slow_one(serve):
    (slow_answer, slow_got), (fast_answer, fast_got) = recording(delay=0.3), recording()
    slow, fast = serve(slow_answer), serve(fast_answer)
    groups = [g for g in (f"p{i}" for i in range(200)) if home_of(g, 2) == 0][:12]  # all homed on `slow`
    sampler = make_sampler("http", base_url=[slow.url, fast.url], model="m", concurrency=1)
    out = sampler.generate(requests_of(groups, 1))
    assert len(out) == 12 and all(o[0].text for o in out)
    assert len(fast_got) > len(slow_got) >= 1  # the fast endpoint served most of the slow one's queue


def test_a_dead_endpoint_fails_over_without_using_retries(serve):
    answer, got = recording()
    live = serve(answer)
    groups = [f"q{i}" for i in range(10)]
    sampler = make_sampler("http", base_url=[dead_url(), live.url], model="m", max_retries=0, concurrency=2)
    out = sampler.generate(requests_of(groups, 2))
    assert len(out) == 20 and len(got) == 20  # every request answered by the live endpoint


def test_every_endpoint_dead_is_one_error():
    sampler = make_sampler("http", base_url=[dead_url(), dead_url()], model="m", max_retries=1, backoff=0)
    with pytest.raises(TracekitError, match="gave up after 2 attempts"):
        sampler.generate(requests_of(["x"], 1))


def test_a_run_over_two_endpoints(tk, tmp_path, monkeypatch, serve):
    answers = [recording() for _ in range(2)]
    servers = [serve(a) for a, _ in answers]
    monkeypatch.chdir(tmp_path)
    opts = {"base_url": [s.url for s in servers], "model": "m", "max_retries": 0}
    config = edited(model={"backend": "http", "options": opts}, tasks=[{"name": "multiplication", "n": 8}])
    Path("run.yaml").write_text(yaml.safe_dump(config))
    code, _, err = tk("run", "run.yaml", "-q")
    assert code == 0, err
    from tracekit.store import Store

    assert Store(tmp_path / "st").count("samples") == 16
    assert all(got for _, got in answers)


class Holding:
    """A server answer that holds the first request it gets until ``after`` others were answered
    (or ``seconds`` passed), and counts the requests in flight at once."""

    def __init__(self, after: int, seconds: float = 30.0) -> None:
        self.after, self.seconds = after, seconds
        self.lock = threading.Lock()
        self.answered, self.inflight, self.most = 0, 0, 0
        self.held = None  # the held request's text, once it got one
        self.released_by_count = threading.Event()
        self.freed_by_count = None

    def __call__(self, handler, body):
        text = body["messages"][-1]["content"]
        with self.lock:
            self.inflight += 1
            self.most = max(self.most, self.inflight)
            hold = self.held is None
            if hold:
                self.held = text
        if hold:
            end = time.monotonic() + self.seconds
            while time.monotonic() < end and not self.released_by_count.is_set():
                time.sleep(0.01)
            self.freed_by_count = self.released_by_count.is_set()  # else by the clock
        send(handler, 200, ok_reply(body["n"], text))
        with self.lock:
            self.inflight -= 1
            if not hold:
                self.answered += 1
                if self.answered >= self.after:
                    self.released_by_count.set()


def test_calls_at_once_share_the_workers_and_a_slow_request_holds_back_no_other_call(serve):
    """Two calls from two threads (the local executor's jobs in flight) on one endpoint with
    concurrency 2: the second call finishes while the first waits on its held request, and no
    more than 2 requests are ever in flight."""
    hold = Holding(after=6)
    sampler = make_sampler("http", base_url=serve(hold).url, model="m", concurrency=2)
    first, second = requests_of(["a"], 2), requests_of(["b"], 6)
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("first", sampler.generate(first)))
    t.start()
    while hold.held is None:
        time.sleep(0.01)
    got["second"] = sampler.generate(second)  # served by the worker the held request leaves free
    t.join()
    sampler.close()
    assert hold.freed_by_count and hold.most == 2
    assert [o[0].text for o in got["first"]] == ["a#0", "a#1"]
    assert [o[0].text for o in got["second"]] == [f"b#{k}" for k in range(6)]


def test_a_call_after_close_and_an_error_in_one_call_of_two(serve):
    answer, _ = recording()
    sampler = make_sampler("http", base_url=serve(answer).url, model="m", concurrency=2)
    sampler.close()  # a closed sampler's next call starts new workers
    assert [o[0].text for o in sampler.generate(requests_of(["x"], 3))] == ["x#0", "x#1", "x#2"]
    bad = Request(({"role": "user", "content": "x"},), 1, 0, PARAMS, prefix="partial")
    sampler.vllm_extras = False  # this request cannot be sent: its call fails, the next one works
    with pytest.raises(TracekitError, match="continue_final_message"):
        sampler.generate([*requests_of(["y"], 4), bad])
    sampler.vllm_extras = True
    assert len(sampler.generate(requests_of(["z"], 4))) == 4
    sampler.close()


@pytest.mark.parametrize("in_flight", [1, 2])
def test_a_run_streams_the_next_chunk_past_a_slow_request(tk, tmp_path, monkeypatch, serve, in_flight):
    """With two jobs in flight, the next chunk's requests are answered while one request of the
    first chunk is held (it is released by their count, not by the clock); with one, nothing
    else can be asked meanwhile. The tables are the same either way."""
    hold = Holding(after=8, seconds=30.0 if in_flight == 2 else 1.0)
    monkeypatch.chdir(tmp_path)
    opts = {"base_url": serve(hold).url, "model": "m", "max_retries": 0, "concurrency": 2}
    config = edited(
        model={"backend": "http", "options": opts},
        tasks=[{"name": "multiplication", "n": 8}],
        chunk_problems=2,
        executor={"max_in_flight": in_flight},
    )
    Path("run.yaml").write_text(yaml.safe_dump(config))
    code, _, err = tk("run", "run.yaml", "-q")
    assert code == 0, err
    assert hold.freed_by_count == (in_flight == 2)
    from tracekit.store import Store

    st = Store(tmp_path / "st")
    assert st.count("samples") == 16 and st.count("reflections") == 16
    assert len(set(st.read("samples")["sample_id"])) == 16


@pytest.mark.parametrize(
    ("urls", "needle"),
    [
        ([], "base_url is an empty list"),
        (["http://a/v1", "http://a/v1"], "lists an endpoint twice"),
        (["http://a/v1", "ftp://b/v1"], "'ftp://b/v1' is not an http"),
    ],  # fmt: skip
)
def test_a_bad_list_of_endpoints_is_refused_when_read(tk, tmp_path, monkeypatch, urls, needle):
    monkeypatch.chdir(tmp_path)
    Path("run.yaml").write_text(
        yaml.safe_dump(edited(model={"backend": "http", "options": {"base_url": urls, "model": "m"}}))
    )
    one_error(tk("run", "run.yaml", "--dry-run", "-q"), "backend 'http'", needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]
