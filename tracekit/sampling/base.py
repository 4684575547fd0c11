"""The sampling protocol: requests in, completions out (every backend implements it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from tracekit.errors import ConfigError

_PAPER = "temperature 0.7, top_p 0.8, top_k 20, repetition_penalty 1.1"


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings (defaults: the SkillFactory paper's).

    Parameters
    ----------
    temperature
        Sampling temperature, >= 0 (0: greedy).
    top_p
        Nucleus sampling: the smallest set of tokens whose probability reaches it, in (0, 1].
    top_k
        Sample among the k most likely tokens, >= 0 (0: no top-k limit).
    repetition_penalty
        Penalty on tokens already generated, > 0 (1: no penalty).
    max_tokens
        Most tokens generated for one response, >= 1.
    stop
        Strings that end a generation; they are kept at the end of the text (so a response
        stopped at ``</answer>`` still has its closing tag).
    regex
        Constrains the whole output to a regular expression (structured output; vLLM and vLLM
        servers only), e.g. ``"[^<]{0,1500}<verdict>(Correct|Incorrect)</verdict>"`` for
        reflections: exactly one verdict tag, at the end (with ``[\\s\\S]`` in place of ``[^<]``
        the model may write other ``<verdict>`` tags before it, which make the verdict
        unrecognized or contradictory).
    """

    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int = 20
    repetition_penalty: float = 1.1
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    regex: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))
        rules = {
            "temperature": (self.temperature >= 0, ">= 0 (0: greedy)"),
            "top_p": (0 < self.top_p <= 1, "in (0, 1]"),
            "top_k": (self.top_k >= 0, ">= 0 (0: no top-k limit)"),
            "repetition_penalty": (self.repetition_penalty > 0, "> 0 (1: no penalty)"),
            "max_tokens": (self.max_tokens >= 1, ">= 1"),
        }
        for name, (ok, rule) in rules.items():
            if not ok:
                msg = (
                    f"sampling parameter {name} must be {rule}, got {getattr(self, name)!r}.\n"
                    f"Hint: the paper's setting is {_PAPER}."
                )
                raise ConfigError(msg)
        if any(not isinstance(s, str) or not s for s in self.stop):
            msg = f"sampling parameter stop must be a list of non-empty strings, got {list(self.stop)!r}.\n"
            raise ConfigError(msg + 'Hint: e.g. stop: ["</answer>"].')

    def key(self) -> dict[str, Any]:
        """What identifies a sample besides its prompt and index (``max_tokens`` excluded: see resume)."""
        out = asdict(self)
        out.pop("max_tokens")
        out["stop"] = list(self.stop)
        return out


@dataclass(frozen=True)
class Request:
    """``n`` samples for one chat prompt; ``seed`` makes them reproducible where the backend allows.

    ``prefix`` is the beginning of the assistant turn, to be continued: the backend renders
    the chat up to the assistant's turn, appends ``prefix`` and generates from there; each
    completion holds the continuation only (the prefix excluded) and ``params.max_tokens``
    bounds the new tokens. Budget forcing (:mod:`tracekit.evaluate.budget`) uses it.
    """

    messages: tuple[dict[str, str], ...]
    n: int
    seed: int
    params: SamplingParams
    prefix: str = ""  # a partial assistant turn to continue ("" = a fresh turn)
    group: str = ""  # requests of one group (a problem) share a prompt prefix: a router keeps them together


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" or "length"
    n_tokens: int | None = None


class Sampler(Protocol):
    """What a backend provides.

    ``source`` is recorded on every sample it makes (``"generate"`` for a model,
    ``"scripted"`` for canned data). ``close()`` frees what the backend holds (an engine's
    GPU memory, a model's weights); whoever built a sampler closes it, once, when done (an
    executor closes the samplers its replicas built). A closed sampler is not used again.

    A backend that may be called from several threads at once sets ``concurrent_calls = True``
    (the http backend: its calls share the endpoint workers); the local executor then runs up
    to ``executor.max_in_flight`` jobs at a time on it. Others are called by one thread.
    """

    model_id: str
    model_revision: str | None
    source: str

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        """One list of ``request.n`` completions per request, in order."""
        ...

    def close(self) -> None:
        """Free the backend's memory (idempotent)."""
        ...


def apply_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Cut ``text`` after the first stop string (kept); return the text and whether one was found."""
    best = -1
    found = ""
    for s in stop:
        i = text.find(s)
        if i >= 0 and (best < 0 or i < best):
            best, found = i, s
    if best < 0:
        return text, False
    return text[: best + len(found)], True
