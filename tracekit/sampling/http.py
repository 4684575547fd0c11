"""An OpenAI-compatible HTTP backend (``/v1/chat/completions``), e.g. ``vllm serve``.

Bounded concurrency (a thread pool), retries with exponential backoff on connection
errors, timeouts, 429 and 5xx answers, and a clear error for other 4xx answers. The API
key is read from an environment variable and never printed or stored. A partial assistant
turn (``Request.prefix``) is sent as a final assistant message with vLLM's
``continue_final_message``; the reply's content is the continuation only.

What a server may not do (each is one error, nothing stored):

- **Redirect.** A 3xx answer is an error naming the new location; redirects are never
  followed, so the ``Authorization`` header only ever goes to ``base_url``'s own origin.
- **Stall.** ``timeout`` is a deadline for the whole request (connect, send, headers, body):
  a server that trickles one byte a second is cut off when it passes, then retried.
- **Flood.** A reply larger than :func:`reply_limit` (64 KiB, plus per choice 16 KiB and
  256 bytes per ``max_tokens`` token) is refused without reading the rest; an error body is
  read up to 4 KiB and shown cut to 300 characters, with anything that looks like the key removed.
- **Answer in another shape.** The reply must be a JSON object whose ``choices`` are objects
  with a ``message`` object and a string (or null) ``content``.
"""

from __future__ import annotations

import errno
import http.client
import json
import math
import os
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from tracekit.errors import ConfigError, TracekitError
from tracekit.sampling.base import Completion, Request
from tracekit.sampling.dispatch import Dispatcher, Endpoints, home_of

REPLY_FIXED_BYTES = 64 * 1024
REPLY_CHOICE_BYTES = 16 * 1024
REPLY_TOKEN_BYTES = 256
ERROR_BODY_BYTES = 4096
SHOWN_CHARS = 300
SHAPE_HINT = "Hint: point base_url at an OpenAI-compatible /v1 endpoint (e.g. `vllm serve`)."


def reply_limit(n: int, max_tokens: int) -> int:
    """The largest reply body accepted for ``n`` choices of at most ``max_tokens`` tokens each.

    256 bytes a token covers the longest tokens of common vocabularies written as JSON
    ``\\uXXXX`` escapes; the fixed parts leave room for ids, usage and the other fields.

    Examples
    --------
    >>> reply_limit(1, 16)
    86016
    """
    return REPLY_FIXED_BYTES + n * (REPLY_CHOICE_BYTES + REPLY_TOKEN_BYTES * max_tokens)


def _looks_like_key(token: str, key: str | None) -> bool:
    if key and len(key) >= 8 and any(token[i : i + 8] in key for i in range(len(token) - 7)):
        return True  # the key, or a piece of it the server echoed
    return len(token) >= 32 or re.match(r"^(sk|hf|pk|rk|ghp|gho|xox[abp])[-_]\w{6,}", token) is not None


def redact(text: str, key: str | None = None, *, limit: int = SHOWN_CHARS) -> str:
    """``text`` from a server, safe to show: anything that looks like ``key`` (or any credential)
    removed, control characters and line breaks flattened, cut to ``limit`` characters.

    Examples
    --------
    >>> redact("bad key sk-abcdefgh12345678 for Bearer x1", "sk-abcdefgh12345678")
    'bad key [redacted] for Bearer [redacted]'
    """
    text = re.sub(r"(?i)\b(bearer|token|api[_-]?key|authorization)(\s*[:=]?\s*)\S+", r"\1\2[redacted]", text)
    text = re.sub(
        r"[A-Za-z0-9_\-.~+/=]{8,}",
        lambda m: "[redacted]" if _looks_like_key(m.group(), key) else m.group(),
        text,
    )
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " [...]"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_url(url: Any, fail) -> None:
    if not isinstance(url, str):
        fail(f"base_url must be a string, not {type(url).__name__}", "write base_url: http://HOST:PORT/v1")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"base_url {url!r} is not an http:// or https:// URL", "write base_url: http://HOST:PORT/v1")
    if parts.username or parts.password:
        fail("base_url holds credentials", "put the key in the variable named by api_key_env, not in the URL")
    if parts.query or parts.fragment:
        fail(f"base_url {url!r} has a query or fragment", "give the URL up to and including /v1")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        fail(f"base_url {url!r} has an invalid port", "write base_url: http://HOST:PORT/v1")


def check_http_options(options: dict[str, Any]) -> None:
    """Raise :class:`~tracekit.errors.ConfigError` for an option value the backend cannot use
    (checked when the config is read, before anything runs).

    Examples
    --------
    >>> check_http_options({"base_url": "ftp://x/v1", "model": "m"})
    Traceback (most recent call last):
    ...
    tracekit.errors.ConfigError: backend 'http': base_url 'ftp://x/v1' is not an http:// or https:// URL. ...
    """

    def fail(what: str, hint: str) -> None:
        raise ConfigError(f"backend 'http': {what}.\nHint: {hint}")

    urls = options.get("base_url")
    if isinstance(urls, list):
        if not urls:
            fail("base_url is an empty list", "give one URL, or a list of the endpoints' URLs")
        if len(set(map(str, urls))) != len(urls):
            fail("base_url lists an endpoint twice", "list each endpoint once")
    for url in urls if isinstance(urls, list) else [urls]:
        _check_url(url, fail)
    for name in ("model", "api_key_env"):
        if name in options and (not isinstance(options[name], str) or not options[name]):
            fail(f"{name} must be a non-empty string", f"set {name} to a name")
    limits = {
        "concurrency": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "an integer >= 1",
        ),
        "max_retries": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "an integer >= 0",
        ),
        "timeout": (lambda v: _number(v) and v > 0, "a number of seconds > 0"),
        "backoff": (lambda v: _number(v) and v >= 0, "a number of seconds >= 0"),
        "vllm_extras": (lambda v: isinstance(v, bool), "true or false"),
    }
    for name, (ok, want) in limits.items():
        if name in options and not ok(options[name]):
            fail(f"{name} is {options[name]!r}; it must be {want}", f"set {name} to {want}")


def _refused(exc: BaseException) -> bool:
    """A connection the endpoint refused or dropped (a dead or restarting server), not a timeout."""
    return isinstance(exc, (ConnectionError, socket.gaierror)) or (
        isinstance(exc, OSError) and exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
    )


class _Refused(TracekitError):
    """An answer that retrying would not change (redirect, 4xx, too large, wrong shape)."""


class _Deadline:
    """Cut a connection when ``seconds`` have passed since the request started."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: float) -> None:
        self.conn, self.fired = conn, False
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> _Deadline:
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()
        self.conn.close()


class HTTPSampler:
    """Sample from an OpenAI-compatible endpoint.

    Parameters
    ----------
    base_url
        Up to and including ``/v1`` (e.g. ``http://localhost:8000/v1``).
    model
        The served model name.
    api_key_env
        Environment variable holding the key (sent as a bearer token when set).
    concurrency, timeout, max_retries, backoff
        At most ``concurrency`` requests in flight; each must finish within ``timeout``
        seconds (the whole request); failures are retried ``max_retries`` times after
        ``backoff * 2**attempt`` seconds.
    vllm_extras
        Send ``top_k``, ``repetition_penalty`` and ``include_stop_str_in_output`` (vLLM
        accepts them; strict OpenAI endpoints may not).
    """

    check_options = staticmethod(check_http_options)
    concurrent_calls = True  # generate() from several threads at once shares the endpoint workers

    def __init__(
        self,
        base_url: str | list[str],
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        vllm_extras: bool = True,
    ) -> None:
        check_http_options(
            {
                "base_url": base_url,
                "model": model,
                "api_key_env": api_key_env,
                "concurrency": concurrency,
                "timeout": timeout,
                "max_retries": max_retries,
                "backoff": backoff,
                "vllm_extras": vllm_extras,
            }
        )
        urls = base_url if isinstance(base_url, list) else [base_url]
        self.urls = [u.rstrip("/") + "/chat/completions" for u in urls]
        self.url = self.urls[0]
        self.endpoints = Endpoints(len(self.urls), cooloff=max(1.0, 4 * backoff))
        self.model_id = model
        self.model_revision = None
        self.source = "generate"
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = backoff
        self.vllm_extras = vllm_extras
        self._dispatcher = Dispatcher(len(self.urls), concurrency, self._call)

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        """Completions for ``requests``, in order: at most ``concurrency`` in flight per endpoint
        (shared by the calls made at once from several threads), each routed by its group (see
        :mod:`tracekit.sampling.dispatch`)."""
        n = len(self.urls)
        homes = [home_of(r.group or json.dumps(r.messages, sort_keys=True), n) for r in requests]
        return self._dispatcher.run(requests, homes)

    def close(self) -> None:
        """Let the endpoint workers go (each request opens and closes its own connection)."""
        self._dispatcher.close()

    def _body(self, req: Request) -> dict:
        p = req.params
        messages = list(req.messages)
        if req.prefix:  # continue a partial assistant turn (vLLM's chat-template options)
            if not self.vllm_extras:
                msg = (
                    "continuing a partial assistant turn needs an endpoint with vLLM extras "
                    "(continue_final_message).\nHint: set vllm_extras: true for a vLLM server."
                )
                raise TracekitError(msg)
            messages.append({"role": "assistant", "content": req.prefix})
        body = {
            "model": self.model_id,
            "messages": messages,
            "n": req.n,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "max_tokens": p.max_tokens,
            "seed": req.seed,
        }
        if p.stop:
            body["stop"] = list(p.stop)
        if self.vllm_extras:
            body.update(
                top_k=p.top_k, repetition_penalty=p.repetition_penalty, include_stop_str_in_output=True
            )
            if p.regex:
                body["structured_outputs"] = {"regex": p.regex}
            if req.prefix:  # the reply holds the continuation only (no echo)
                body.update(continue_final_message=True, add_generation_prompt=False)
        elif p.regex:
            raise TracekitError(
                "sampling.params.regex needs an endpoint with vLLM extras (vllm_extras: true)"
            )
        return body

    def _call(self, req: Request, first: int = 0) -> list[Completion]:
        """One request: from endpoint ``first`` on, failing over to the next endpoint on a refused
        connection (without using up a retry while another endpoint is left to try); timeouts,
        429 and 5xx are retried after the backoff."""
        data = json.dumps(self._body(req)).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        limit = reply_limit(req.n, req.params.max_tokens)
        last_error = ""
        attempt, tried = 0, set()
        while True:
            i = self.endpoints.pick(first, tried)
            i = first if i is None else i
            url = self.urls[i]
            status, body = None, b""
            try:
                status, body = self._post(url, data, headers, limit, key)
            except (OSError, http.client.HTTPException) as exc:
                last_error = f"{type(exc).__name__} talking to {url}: {redact(str(exc), key)}"
                if _refused(exc):
                    self.endpoints.mark_down(i)
                    tried.add(i)
                    if self.endpoints.pick(first, tried) is not None:
                        continue  # fail over to the next endpoint within this attempt
            if status is not None:
                self.endpoints.mark_up(i)
                result = self._answer(status, body, url, req, key)
                if isinstance(result, list):
                    return result
                last_error = result
            attempt, tried = attempt + 1, set()
            if attempt > self.max_retries:
                break
            time.sleep(self.backoff * 2 ** (attempt - 1))
        msg = f"{last_error} (gave up after {self.max_retries + 1} attempts).\nHint: is the server up? Check base_url."
        raise TracekitError(msg)

    def _answer(
        self, status: int, body: bytes, url: str, req: Request, key: str | None
    ) -> list[Completion] | str:
        """The completions of a reply, or the error to retry on (a string); raises when retrying
        would not help."""
        if status == 429 or status >= 500:
            return f"HTTP {status} from {url}: {redact(body.decode('utf-8', 'replace'), key)}"
        if status >= 400:
            detail = redact(body.decode("utf-8", "replace"), key)
            msg = f"HTTP {status} from {url}: {detail}\nHint: check model, base_url and the key's variable."
            raise TracekitError(msg)
        try:
            payload = json.loads(body)
        except ValueError as exc:
            return f"{url} answered with invalid JSON ({exc.__class__.__name__}: {redact(str(exc), key)})"
        return self._parse(payload, req, url)

    def _post(self, url: str, data: bytes, headers: dict, limit: int, key: str | None) -> tuple[int, bytes]:
        """One POST to ``url`` within the deadline: ``(status, body)``; never follows a redirect."""
        parts = urlsplit(url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(parts.hostname, parts.port, timeout=self.timeout)
        path = parts.path or "/"
        with _Deadline(conn, self.timeout) as deadline:
            try:
                conn.request("POST", path, body=data, headers=headers)
                resp = conn.getresponse()
                status = resp.status
                if 300 <= status < 400:
                    where = redact(resp.getheader("Location") or "(no Location header)", key, limit=200)
                    msg = (
                        f"{url} answered HTTP {status}, redirecting to {where}; tracekit does not follow "
                        "redirects (the key is sent to base_url's own address only).\n"
                        "Hint: set base_url to the address the server redirects to, if you trust it."
                    )
                    raise _Refused(msg)
                ok = 200 <= status < 300
                cap = limit if ok else ERROR_BODY_BYTES
                declared = resp.getheader("Content-Length")
                if ok and declared and declared.strip().isdigit() and int(declared) > limit:
                    raise _Refused(self._too_large(url, f"{int(declared):,} bytes", limit))
                body = bytearray()
                while len(body) <= cap:
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    body += chunk
                if len(body) > cap:
                    if ok:
                        raise _Refused(self._too_large(url, f"more than {limit:,} bytes", limit))
                    body = body[:cap]
            except _Refused:
                raise
            except (OSError, http.client.HTTPException):
                if deadline.fired:
                    raise TimeoutError(f"no whole reply within timeout {self.timeout:g} s") from None
                raise
            if deadline.fired:
                raise TimeoutError(f"no whole reply within timeout {self.timeout:g} s")
        return status, bytes(body)

    @staticmethod
    def _too_large(url: str, size: str, limit: int) -> str:
        return (
            f"{url} sent a reply of {size}, over the bound of {limit:,} bytes for this request "
            "(64 KiB + per choice 16 KiB + 256 bytes per max_tokens token); it was not stored.\n"
            "Hint: check that base_url is the model server, and that it honours max_tokens."
        )

    def _parse(self, payload: Any, req: Request, url: str) -> list[Completion]:
        def wrong(what: str) -> TracekitError:
            return TracekitError(f"{url} answered in an unexpected shape: {what}.\n{SHAPE_HINT}")

        if not isinstance(payload, dict):
            raise wrong(f"a JSON {type(payload).__name__}, not an object with 'choices'")
        choices = payload.get("choices")
        if not isinstance(choices, list):
            raise wrong(
                f"'choices' is {type(choices).__name__ if choices is not None else 'missing'}, not a list"
            )
        for c in choices:
            if not isinstance(c, dict):
                raise wrong(f"a choice is a {type(c).__name__}, not an object")
            if not isinstance(c.get("message"), dict):
                raise wrong("a choice has no 'message' object")
            content = c["message"].get("content")
            if content is not None and not isinstance(content, str):
                raise wrong(f"a choice's message content is a {type(content).__name__}, not a string")
            if not isinstance(c.get("index", 0), int):
                raise wrong("a choice's 'index' is not an integer")
        choices = sorted(choices, key=lambda c: c.get("index", 0))
        if len(choices) != req.n:
            raise TracekitError(f"{url} returned {len(choices)} choices for n={req.n}.\n{SHAPE_HINT}")
        out = []
        stop = req.params.stop
        # usage counts all choices together: a token count for a single choice only (budget forcing asks n=1)
        tokens = (payload.get("usage") or {}).get("completion_tokens") if len(choices) == 1 else None
        tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else None
        for c in choices:
            text = c["message"].get("content") or ""  # null content (e.g. all reasoning) is empty text
            reason = "length" if c.get("finish_reason") == "length" else "stop"
            if (
                reason == "stop"
                and len(stop) == 1
                and not text.endswith(stop[0])
                and c.get("stop_reason") == stop[0]
            ):
                text += stop[0]  # endpoints that drop the matched stop string
            out.append(Completion(text=text, finish_reason=reason, n_tokens=tokens))
        return out
