"""Phrase banks: the glue, ending, backtrack and confirm sentences of a trace.

A bank file is YAML or JSON with the keys of :data:`BANKS`, each a non-empty list of
strings. The default bank ships with the package (``tracekit/data/phrases.yaml``); a
user who wants other wording, or the reference script's exact lists, passes their own
file. Every phrase has a stable id ``"<bank>/<position>"``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tracekit.errors import ConfigError
from tracekit.ids import stable_hash
from tracekit.rearrange.config import TAILS
from tracekit.yamlfile import load_yaml, read_text, read_yaml

DEFAULT_BANK = Path(__file__).parent.parent / "data" / "phrases.yaml"
# glue between samples, the ending phrase, and one bank per tail (a format's record names its tail)
BANKS = ("generic_glue", "correct_glue", "incorrect_glue", "ending", *TAILS)


@dataclass(frozen=True)
class PhraseBank:
    """Named lists of phrases. ``digest`` identifies the exact wording (it enters trace ids)."""

    phrases: dict[str, tuple[str, ...]]
    digest: str
    source: str

    def text(self, phrase_id: str) -> str:
        bank, _, pos = phrase_id.partition("/")
        return self.phrases[bank][int(pos)]

    def ids(self, *banks: str) -> list[str]:
        """Ids of every phrase in ``banks``, in order (glue draws from a union of banks)."""
        return [f"{b}/{i}" for b in banks for i in range(len(self.phrases[b]))]


def load_phrase_bank(path: str | Path | None = None) -> PhraseBank:
    """Load a phrase bank file, or the default bank when ``path`` is ``None``.

    Examples
    --------
    >>> bank = load_phrase_bank()
    >>> sorted(bank.phrases) == sorted(BANKS)
    True
    >>> bank.text("ending/0")
    'So the final answer is:'
    """
    if path is None:
        raw_text = DEFAULT_BANK.read_text(encoding="utf-8")
        source = "tracekit:data/phrases.yaml"
        raw = load_yaml(raw_text, f"phrase bank {source}")
    else:
        p = Path(path)
        source = str(p)
        if p.suffix.lower() == ".json":
            raw = _read_json(p)
        else:
            raw = read_yaml(p, "phrase bank", "--phrases names a YAML or JSON file of phrase lists.")
    if not isinstance(raw, dict):
        raise ConfigError(f"phrase bank {source} must be a mapping of bank name to a list of phrases.")
    unknown = sorted(set(raw) - set(BANKS))
    missing = [b for b in BANKS if b not in raw]
    if unknown or missing:
        msg = f"phrase bank {source}: unknown keys {unknown}, missing keys {missing}.\n"
        msg += f"Hint: the keys are {list(BANKS)}."
        raise ConfigError(msg)
    phrases: dict[str, tuple[str, ...]] = {}
    for bank in BANKS:
        items = raw[bank]
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(s, str) and s.strip() for s in items)
        ):
            raise ConfigError(
                f"phrase bank {source}: {bank!r} must be a non-empty list of non-empty strings."
            )
        phrases[bank] = tuple(s.strip() for s in items)
    return PhraseBank(phrases=phrases, digest=stable_hash(phrases), source=source)


def _read_json(path: Path) -> object:
    """A phrase bank written as JSON, read as strictly as YAML ones (no repeated keys, no NaN)."""
    text = read_text(path, "phrase bank", "--phrases names a YAML or JSON file of phrase lists.")
    try:
        return json.loads(text, object_pairs_hook=_no_repeats, parse_constant=_no_constant)
    except ValueError as exc:
        msg = f"phrase bank {path} is not valid JSON: {exc}"
        raise ConfigError(msg + "\nHint: a mapping of bank name to a list of phrases.") from None


def _no_repeats(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} is given twice")
        out[key] = value
    return out


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")
