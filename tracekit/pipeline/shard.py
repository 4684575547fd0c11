"""Shards of a run: several drivers of one config on one store (``tracekit run CFG --shard i/n``).

Shard ``i`` of ``n`` takes the problems whose stable hash (:func:`tracekit.ids.stable_hash` of
the ``problem_id``, read as a number) is ``i`` modulo ``n``: a split by content, the same on
every machine and for every order of the problems, and about even. Everything else is the
config's: the demonstrations avoid all of the config's problems, so a shard's rows are exactly
the rows the whole run would make for its problems. A shard records itself in its run's config
(``"shard": "i/n"``) under the config's own hash, so all shards of one config share one config
hash; the store's current view is then the union of the latest run of every shard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from tracekit.errors import ConfigError
from tracekit.ids import stable_hash

_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``).

    Examples
    --------
    >>> Shard.parse("1/4")
    Shard(index=1, count=4)
    >>> str(Shard(1, 4))
    '1/4'
    >>> Shard.parse("4/4")
    Traceback (most recent call last):
    ...
    tracekit.errors.ConfigError: --shard 4/4: the shard number must be below the count (0 to 3).
    Hint: Slurm arrays count from 0 with --array=0-3: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        hint = (
            "\nHint: Slurm arrays count from 0 with --array=0-3: "
            "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT."
        )
        if self.count < 1:
            raise ConfigError(f"--shard {self}: the count must be at least 1.{hint}")
        if not 0 <= self.index < self.count:
            msg = f"--shard {self}: the shard number must be below the count (0 to {self.count - 1})."
            raise ConfigError(msg + hint)

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/n"`` as a shard."""
        m = _FORM.fullmatch(text)
        if m is None:
            msg = f"--shard {text!r}: expected I/N, e.g. 0/4 (shard 0 of 4)."
            raise ConfigError(
                msg + "\nHint: in a Slurm array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT."
            )
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def of(self, problem_id: str) -> int:
        """The shard number of a problem."""
        return int(stable_hash(problem_id), 16) % self.count

    def take(self, problems: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``problems`` in this shard (their order kept)."""
        mask = [self.of(pid) == self.index for pid in problems["problem_id"].to_list()]
        return problems.filter(pl.Series(mask, dtype=pl.Boolean))
