"""The http backend against servers that misbehave (issue 17 item 7 and its bad-input bullets).

Real tiny HTTP servers on 127.0.0.1, started by each test in a thread: one that redirects to
another origin (which records what reaches it), one that trickles a byte a second, one that
floods, ones that answer in the wrong shape or echo the key in an error. Through ``tracekit
run``: one ``error:`` line, exit 2, no sample stored; option values are refused when the
config is read, before anything is written.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from cli_contract import BASE, edited, one_error

from tracekit.errors import TracekitError
from tracekit.sampling.base import Request, SamplingParams
from tracekit.sampling.http import reply_limit
from tracekit.sampling.registry import make_sampler

KEY = "sk-test-0123456789abcdefSECRET"
MESSAGES = [{"role": "user", "content": "What is 2 * 3?"}]


def ok_reply(n: int, text: str = "<answer>6</answer>") -> bytes:
    choices = [
        {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        for i in range(n)
    ]
    return json.dumps({"choices": choices}).encode()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # a client that hung up on purpose
        pass


class Server:
    """A threaded server whose every POST is answered by ``answer(handler, body)``."""

    def __init__(self, answer) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.sent = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                outer.seen.append((self.command, self.headers.get("Authorization")))
                try:
                    answer(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_GET = _any  # noqa: N815 - http.server's names

            def log_message(self, *args):
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    started = []

    def start(answer) -> Server:
        started.append(Server(answer))
        return started[-1]

    yield start
    for s in started:
        s.close()


def send(handler, status: int, body: bytes, headers: dict | None = None) -> None:
    handler.send_response(status)
    for k, v in {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **(headers or {}),
    }.items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(body)


def run_cli(tk, tmp_path, monkeypatch, url: str, **options):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TK_HTTP_KEY", KEY)
    opts = {
        "base_url": url,
        "model": "m",
        "api_key_env": "TK_HTTP_KEY",
        "max_retries": 0,
        "timeout": 5,
        **options,
    }
    config = edited(model={"backend": "http", "options": opts}, reflection={"per_sample": 0})
    Path("run.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tk("run", "run.yaml", "-q")


def no_samples(tmp_path: Path) -> None:
    from tracekit.store import Store

    if (tmp_path / "st" / "tracekit-store.json").exists():
        assert Store(tmp_path / "st").count("samples") == 0


# ------------------------------------------------------------------ redirects
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_an_error_and_the_key_never_leaves(tk, tmp_path, monkeypatch, serve, status):
    elsewhere = serve(lambda h, body: send(h, 200, ok_reply(body.get("n", 1))))
    target = elsewhere.url.replace("127.0.0.1", "localhost") + "/chat/completions"
    redirector = serve(lambda h, body: send(h, status, b"", {"Location": target}))
    err = one_error(run_cli(tk, tmp_path, monkeypatch, redirector.url), f"HTTP {status}", target, "redirect")
    assert KEY not in err
    assert elsewhere.seen == []  # nothing, and so no Authorization header, reached the other origin
    assert redirector.seen and redirector.seen[0][1] == f"Bearer {KEY}"
    no_samples(tmp_path)


# ------------------------------------------------------------------ the whole-request deadline
def trickle_body(handler, body):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    for _ in range(60):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.5)


def trickle_headers(handler, body):
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for i in range(60):
        handler.wfile.write(f"X-Slow-{i}: a\r\n".encode())
        handler.wfile.flush()
        time.sleep(0.5)


@pytest.mark.parametrize("answer", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_a_trickling_server_hits_the_timeout(tk, tmp_path, monkeypatch, serve, answer):
    slow = serve(answer)
    started = time.monotonic()
    one_error(run_cli(tk, tmp_path, monkeypatch, slow.url, timeout=1.5), "within timeout 1.5 s", "gave up")
    assert time.monotonic() - started < 25  # cut off by the deadline, not by the server's 30 s of trickling
    no_samples(tmp_path)


# ------------------------------------------------------------------ replies too large
def flood(declare: bool):
    def answer(handler, body):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if declare:
            handler.send_header("Content-Length", str(100 * 1024 * 1024))
        else:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b'{"choices": [' + b" " * (1 << 20)
        for _ in range(100):
            data = chunk if declare else b"%x\r\n%s\r\n" % (len(chunk), chunk)
            handler.wfile.write(data)
            answer.sent += len(chunk)

    answer.sent = 0
    return answer


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
def test_a_100_mb_reply_to_16_tokens_is_refused(tk, tmp_path, monkeypatch, serve, declare):
    answer = flood(declare)
    server = serve(answer)
    monkeypatch.chdir(tmp_path)
    config_params = {"params": {"max_tokens": 16}}
    monkeypatch.setenv("TK_HTTP_KEY", KEY)
    opts = {
        "base_url": server.url,
        "model": "m",
        "api_key_env": "TK_HTTP_KEY",
        "max_retries": 0,
        "timeout": 20,
    }
    config = edited(
        model={"backend": "http", "options": opts}, sampling=config_params, reflection={"per_sample": 0}
    )
    Path("run.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    one_error(tk("run", "run.yaml", "-q"), "over the bound of", "not stored")
    time.sleep(0.5)
    assert answer.sent < 100 * (1 << 20)  # the client hung up long before the end
    no_samples(tmp_path)


def test_the_bound_follows_max_tokens():
    assert reply_limit(1, 16) < 100_000 < reply_limit(4, 4096)


# ------------------------------------------------------------------ wrong shapes
@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (b"[]", "a JSON list, not an object"),
        (b'{"choices": ["a"]}', "a choice is a str"),
        (b'{"choices": [{"message": {"content": 5}}]}', "content is a int, not a string"),
        (b'{"choices": [{"message": {"content": ["a"]}}]}', "content is a list"),
        (b'{"choices": [{"message": "hi"}]}', "no 'message' object"),
        (b'{"choices": {"0": 1}}', "'choices' is dict, not a list"),
        (b'"just a string"', "a JSON str"),
    ],
)
def test_a_reply_of_the_wrong_shape_is_one_error(tk, tmp_path, monkeypatch, serve, reply, needle):
    server = serve(lambda h, body: send(h, 200, reply))
    one_error(run_cli(tk, tmp_path, monkeypatch, server.url), "unexpected shape", needle)
    no_samples(tmp_path)


# ------------------------------------------------------------------ error bodies
def test_an_error_body_is_bounded_and_never_shows_the_key(tk, tmp_path, monkeypatch, serve):
    echo = (
        f"invalid api key {KEY} (prefix {KEY[:12]}, suffix {KEY[-10:]}); Authorization: Bearer {KEY}\n\x1b[31m"
    ).encode()
    server = serve(lambda h, body: send(h, 401, echo + b"x" * 500_000))
    err = one_error(run_cli(tk, tmp_path, monkeypatch, server.url), "HTTP 401", "invalid api key")
    line = next(x for x in err.splitlines() if x.startswith("error:"))
    assert KEY not in err and KEY[:12] not in err and KEY[-10:] not in err and "SECRET" not in err
    assert "\x1b" not in err and len(line) < 600


def test_a_retried_5xx_body_never_shows_the_key(serve, monkeypatch):
    monkeypatch.setenv("TK_HTTP_KEY", KEY)
    server = serve(lambda h, body: send(h, 503, f"overloaded; your key {KEY}".encode()))
    sampler = make_sampler(
        "http", base_url=server.url, model="m", api_key_env="TK_HTTP_KEY", max_retries=1, backoff=0
    )
    with pytest.raises(TracekitError, match="HTTP 503.*gave up after 2") as info:
        sampler.generate([Request(MESSAGES, 1, 0, SamplingParams(max_tokens=8))])
    assert KEY not in str(info.value) and len(server.seen) == 2


def test_a_good_server_still_works(serve, monkeypatch):
    monkeypatch.setenv("TK_HTTP_KEY", KEY)
    server = serve(lambda h, body: send(h, 200, ok_reply(body["n"])))
    sampler = make_sampler("http", base_url=server.url, model="m", api_key_env="TK_HTTP_KEY")
    out = sampler.generate([Request(MESSAGES, 3, 0, SamplingParams(max_tokens=8))])
    assert [c.text for c in out[0]] == ["<answer>6</answer>"] * 3
    assert server.seen[0] == ("POST", f"Bearer {KEY}")


# ------------------------------------------------------------------ options checked when read
OPTION_CASES = [
    ({"concurrency": 0}, "concurrency is 0; it must be an integer >= 1"),
    ({"concurrency": True}, "concurrency is True"),
    ({"timeout": -1}, "timeout is -1; it must be a number of seconds > 0"),
    ({"max_retries": -1}, "max_retries is -1; it must be an integer >= 0"),
    ({"backoff": -0.5}, "backoff is -0.5"),
    ({"base_url": "ftp://host/v1"}, "is not an http:// or https:// URL"),
    ({"base_url": "localhost:8000/v1"}, "is not an http:// or https:// URL"),
    ({"base_url": "http:///v1"}, "is not an http:// or https:// URL"),
    ({"base_url": "http://user:pw@host/v1"}, "base_url holds credentials"),
    ({"base_url": 8000}, "base_url must be a string"),
    ({"model": ""}, "model must be a non-empty string"),
]


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize(("bad", "needle"), OPTION_CASES, ids=[str(c[0]) for c in OPTION_CASES])
def test_http_options_are_checked_when_the_config_is_read(tk, tmp_path, monkeypatch, bad, needle, dry_run):
    monkeypatch.chdir(tmp_path)
    options = {"base_url": "http://127.0.0.1:9/v1", "model": "m", **bad}
    Path("run.yaml").write_text(yaml.safe_dump(edited(model={"backend": "http", "options": options})))
    one_error(
        tk("run", "run.yaml", *(["--dry-run"] if dry_run else []), "-q"), "run.yaml", "backend 'http'", needle
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]


def test_non_finite_numbers_are_refused_by_the_backend_itself():
    for bad in ({"timeout": float("inf")}, {"timeout": float("nan")}, {"backoff": float("inf")}):
        with pytest.raises(TracekitError, match="it must be a number of seconds"):
            make_sampler("http", base_url="http://127.0.0.1:9/v1", model="m", **bad)


def test_the_base_config_is_fine_with_http(tk, tmp_path, monkeypatch, serve):
    server = serve(lambda h, body: send(h, 200, ok_reply(body["n"])))
    code, out, err = run_cli(tk, tmp_path, monkeypatch, server.url)
    assert code == 0, err
    from tracekit.store import Store

    assert Store(tmp_path / "st").count("samples") > 0
    assert BASE["model"] == {"backend": "scripted"}  # edited() copies


def test_eval_configs_check_http_options_too(tk, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("e.yaml").write_text(
        "store: ev\nmodels: [{backend: http, options: {base_url: 'http://127.0.0.1:9/v1', model: m, timeout: -1}}]\n"
        "tasks: [{name: multiplication, n: 2}]\nk: 1\n"
    )
    one_error(tk("eval", "e.yaml"), "backend 'http'", "timeout is -1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.yaml"]
