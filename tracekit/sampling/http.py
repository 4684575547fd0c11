"""An OpenAI-compatible HTTP backend (``/v1/chat/completions``), e.g. ``vllm serve``.

Bounded concurrency (a thread pool), retries with exponential backoff on connection
errors, timeouts, 429 and 5xx answers, and a clear error for other 4xx answers. The API
key is read from an environment variable and never printed or stored. A partial assistant
turn (``Request.prefix``) is sent as a final assistant message with vLLM's
``continue_final_message``; the reply's content is the continuation only.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from tracekit.errors import TracekitError
from tracekit.sampling.base import Completion, Request


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
        At most ``concurrency`` requests in flight; each waits ``timeout`` seconds; failures
        are retried ``max_retries`` times after ``backoff * 2**attempt`` seconds.
    vllm_extras
        Send ``top_k``, ``repetition_penalty`` and ``include_stop_str_in_output`` (vLLM
        accepts them; strict OpenAI endpoints may not).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        vllm_extras: bool = True,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model_id = model
        self.model_revision = None
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.vllm_extras = vllm_extras

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))

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

    def _one(self, req: Request) -> list[Completion]:
        data = json.dumps(self._body(req)).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last_error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                http_req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(http_req, timeout=self.timeout) as resp:
                    payload = json.loads(resp.read())
                return self._parse(payload, req)
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code} from {self.url}"
                if exc.code != 429 and exc.code < 500:
                    detail = exc.read()[:300].decode(errors="replace")
                    raise TracekitError(f"{last_error}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last_error = f"{type(exc).__name__} talking to {self.url}: {exc}"
        msg = f"{last_error} (gave up after {self.max_retries + 1} attempts).\nHint: is the server up? Check base_url."
        raise TracekitError(msg)

    def _parse(self, payload: dict, req: Request) -> list[Completion]:
        choices = sorted(payload.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != req.n:
            raise TracekitError(f"{self.url} returned {len(choices)} choices for n={req.n}")
        out = []
        stop = req.params.stop
        # usage counts all choices together: a token count for a single choice only (budget forcing asks n=1)
        tokens = (payload.get("usage") or {}).get("completion_tokens") if len(choices) == 1 else None
        tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else None
        for c in choices:
            text = (c.get("message") or {}).get("content") or ""
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
