"""The dataset card: README.md with YAML metadata, the recipe, the figures and how to train.

:func:`render_card` turns :func:`tracekit.export.stats.card_stats` into our metadata and a
markdown section; :func:`merge_card` puts them into an existing card without losing what a
user wrote there (their metadata keys win, ``tags`` are merged, text outside tracekit's
section is kept); :func:`histogram_png` draws the trace lengths against ``max_length``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tracekit.errors import InputFormatError

START, END = "<!-- tracekit-card:start -->", "<!-- tracekit-card:end -->"
HISTOGRAM = "tracekit_trace_lengths.png"
TAGS = ["tracekit", "synthetic", "reasoning", "silver-traces", "skillfactory"]
OWNED_KEYS = ("size_categories",)  # recomputed from the data on every push
CONFIG_DOC = {
    "problems": "the verifiable problems (question, answer, task fields as JSON in `meta`)",
    "samples": "the base model's answers, each with the verifier's verdict and reason",
    "reflections": "the model's checks of its own answers, with the parsed verdict",
    "sft": "silver traces as TRL prompt-completion conversations",
    "grpo": "problems as GRPO prompts with the verifier fields the rewards read",
}


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` rows.

    Examples
    --------
    >>> size_category(999), size_category(1000), size_category(25_000)
    ('n<1K', '1K<n<10K', '10K<n<100K')
    """
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]
    for bound, name in bounds:
        if n < bound:
            return name
    return "n>1T" if n > 10**12 else "1B<n<10B"


def card_metadata(configs: dict[str, dict[str, int]]) -> dict[str, Any]:
    """tracekit's YAML keys: ``tags``, ``task_categories`` and ``size_categories`` (no license: the user picks)."""
    largest = max((sum(c.values()) for c in configs.values()), default=0)
    return {
        "tags": list(TAGS),
        "task_categories": ["text-generation"],
        "size_categories": [size_category(largest)],
    }


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-/:@+=%")


def md_text(value: Any) -> str:
    """``value`` as inert markdown text, safe in a paragraph, a heading and a table cell.

    Every value that comes from data (task, variant and model names, reasons, ids) goes through
    this: characters other than letters, digits and ``PLAIN`` punctuation become numeric
    character references, so no markdown (emphasis, links, table pipes) and no HTML (tags,
    entities) can form; line breaks become spaces.

    Examples
    --------
    >>> md_text('<img src=x onerror="alert(1)">|`x`')
    '&#60;img src=x onerror=&#34;alert&#40;1&#41;&#34;&#62;&#124;&#96;x&#96;'
    >>> md_text("Qwen/Qwen2.5-1.5B")
    'Qwen/Qwen2.5-1.5B'
    """
    text = " ".join(str(value).splitlines()) if value is not None else "None"
    return "".join(c if c in _PLAIN or (c.isalnum() and ord(c) > 127) else f"&#{ord(c)};" for c in text)


def md_code(value: Any) -> str:
    """``value`` shown as code (``<code>``), escaped like :func:`md_text` (a markdown code span
    cannot hold every string: a backtick or a pipe would end it or the table cell)."""
    return f"<code>{md_text(value)}</code>"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    """A markdown table; every cell is escaped with :func:`md_text` unless it is already markup
    (``Markup``: made by :func:`md_code` or this module's own wording)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class Markup(str):
    """Text this module built as markdown (already escaped): :func:`_table` leaves it as it is."""


def _cell(value: Any) -> str:
    return str(value) if isinstance(value, Markup) else md_text(value)


def _block(lang: str, text: str) -> str:
    """A fenced code block whose fence is longer than any run of backticks in ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def render_card(stats: dict[str, Any], configs: dict[str, dict[str, int]], *, repo_id: str) -> str:
    """tracekit's section of the card (markdown between the ``START``/``END`` markers)."""
    r, v, lengths = stats["recipe"], stats["verdicts"], stats["lengths"]
    out = [START, f"# {md_text(repo_id.split('/')[-1])}", ""]
    out.append(
        "Silver reasoning traces built with tracekit the SkillFactory way "
        "(arXiv 2512.04072): a base model's own answers, checked exactly, and its own self-verifications that "
        "agree with the checker, rearranged into traces that verify and retry."
    )
    out += ["", "## Configs", ""]
    rows = [
        [Markup(md_code(name)), split, n, Markup(CONFIG_DOC.get(name, ""))]
        for name, c in configs.items()
        for split, n in c.items()
    ]
    out.append(_table(["config", "split", "rows", "what"], rows))
    out += ["", "## Recipe", ""]
    out.append(
        f"- tracekit {md_text(r['tracekit_version'])}; model {md_code(r['model'])} "
        f"at revision {md_code(r['model_revision'])}"
    )
    out.append(f"- seeds: {md_text(r['seeds'])}")
    out.append(f"- store tables: {md_text(json.dumps(stats['counts']))}")
    if r["sampling"]:
        out += [
            "- sampling parameters:",
            "",
            _block("json", json.dumps(r["sampling"], indent=2, sort_keys=True)),
        ]
    out += ["", "Commands that built the data, in order:", ""]
    for c in r["commands"]:
        out.append(
            f"- {md_code('tracekit ' + str(c['command']))} "
            f"({md_text(c['started_at'])}, tracekit {md_text(c['tracekit_version'])}):"
        )
        out += ["", _block("yaml", yaml.safe_dump(c["config"], sort_keys=True)), ""]
    out += [
        "## Base-model accuracy",
        "",
        "By task, difficulty and prompt variant (every current sample):",
        "",
    ]
    acc = [
        [
            a["task"],
            a["difficulty"] or "-",
            a["prompt_variant"],
            a["samples"],
            a["correct"],
            f"{a['accuracy']:.1%}",
        ]
        for a in stats["accuracy"]
    ]
    out.append(
        _table(["task", "difficulty", "variant", "samples", "correct", "accuracy"], acc)
        if acc
        else "No samples."
    )
    out += ["", "## Self-verification", ""]
    agreement = "n/a" if v["agreement"] is None else f"{v['agreement']:.1%}"
    out.append(
        f"{v['reflections']} reflections; verdict agreement with the verifier {agreement}; "
        f"{v['kept']} kept (verdict equals the verifier's truth)."
    )
    out += ["", _table(["verdict parse", "reflections"], [[k, n] for k, n in v["by_reason"].items()]), ""]
    out += ["## Filter drops by reason", ""]
    drops = r["drops"]
    out.append(
        _table(["reason", "rows"], [[k, n] for k, n in drops.items()]) if drops else "No drops recorded."
    )
    out += ["", "## Trace formats", ""]
    fm = stats["formats"]
    out.append(
        _table(["format", "traces"], [[Markup(md_code(k)), n] for k, n in fm.items()]) if fm else "No traces."
    )
    out += ["", "## Trace lengths", ""]
    if lengths["n"]:
        out.append(f"![trace lengths]({HISTOGRAM})")
        out += [
            "",
            f"Counted as {lengths['how']}. {lengths['over']} of {lengths['n']} traces exceed "
            f"max_length {lengths['max_length']} (median {lengths['median']:.0f}, p95 {lengths['p95']:.0f}, "
            f"max {lengths['max']}).",
            "",
        ]
        bins = [
            [f"{lo:.0f}-{hi:.0f}", n]
            for lo, hi, n in zip(lengths["edges"], lengths["edges"][1:], lengths["counts"])
            if n
        ]
        out.append(_table(["length", "traces"], bins))
    else:
        out.append("No traces.")
    if stats["example"]:
        ex = stats["example"]
        out += [
            "",
            "## Example trace",
            "",
            f"{md_code(ex['format'])}, {md_text(ex['n_samples'])} samples, {md_code(ex['trace_id'])}.",
            "",
            "User:",
            "",
            _block("text", ex["prompt"]),
            "",
            "Assistant:",
            "",
            _block("text", ex["completion"]),
        ]
    out += ["", usage(repo_id, configs), END]
    return "\n".join(out) + "\n"


def usage(repo_id: str, configs: dict[str, dict[str, int]]) -> str:
    """How to load each config and train on it (TRL, verl, LLaMA-Factory)."""
    rid = json.dumps(repo_id)  # a Python string literal, whatever the folder or repo is called
    loads = "\n".join(f'{name} = load_dataset({rid}, "{name}")' for name in configs)
    return "\n".join(
        [
            "## Loading and training",
            "",
            _block("python", "from datasets import load_dataset\n\n" + loads),
            "",
            "TRL (`pip install 'tracekit[train]'`): `tracekit train sft sft.yaml` / `tracekit train grpo grpo.yaml`, "
            "or TRL's own trainers:",
            "",
            _block(
                "python",
                f'from trl import SFTConfig, SFTTrainer\n\ntrain = load_dataset({rid}, "sft", '
                'split="train").select_columns(["prompt", "completion"])\n'
                'SFTTrainer(model="Qwen/Qwen2.5-1.5B-Instruct", train_dataset=train,\n'
                '           args=SFTConfig(output_dir="ckpt", max_length=8192)).train()',
            ),
            "",
            "GRPO rewards with the same answer extraction and verifiers: "
            "`tracekit.trainers.rewards.correctness_reward` (reads the `task` and `meta` columns of `grpo`).",
            "",
            "verl: `tracekit export --store ST --to verl --out verl/`, then",
            "",
            _block(
                "bash",
                "python -m verl.trainer.main_ppo data.train_files=verl/rl/train.parquet \\\n"
                "  reward.custom_reward_function.path=$(python -c 'import tracekit.trainers.verl_reward as m; "
                "print(m.__file__)') \\\n  reward.custom_reward_function.name=compute_score ...",
            ),
            "",
            "LLaMA-Factory: `tracekit export --store ST --to llamafactory --out lf/`, then `dataset_dir: lf`, "
            "`dataset: tracekit_sft`, `template: qwen` (a non-thinking template: the `<think>` in traces is "
            "plain text).",
        ]
    )


def read_card_file(path: Path) -> str:
    """The text of an existing README.md (UTF-8); another encoding is an :class:`InputFormatError`."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = (
            f"{path} is not UTF-8 text (byte {exc.start}); the dataset card is merged into it.\n"
            "Hint: convert it to UTF-8, or move it away to get a new card."
        )
        raise InputFormatError(msg) from None


def split_card(text: str | None, where: str = "the existing dataset card") -> tuple[dict[str, Any], str]:
    """``(metadata, body)`` of a README.md (empty metadata when it has no YAML header).

    A header that is not a YAML mapping, or tracekit's markers out of order, are an
    :class:`InputFormatError` naming ``where``: merging would lose what the user wrote.
    """
    if not text:
        return {}, ""
    meta: Any = {}
    body = text
    if text.startswith("---\n") or text.startswith("---\r\n"):
        rest = text.split("\n", 1)[1]
        end = rest.find("\n---")
        if end >= 0:
            try:
                meta = yaml.safe_load(rest[:end]) or {}
            except yaml.YAMLError as exc:
                detail = " ".join(str(exc).split())
                msg = f"{where} has invalid YAML metadata ({detail}).\nHint: fix its YAML header."
                raise InputFormatError(msg) from None
            body = rest[end + 4 :].split("\n", 1)[1] if "\n" in rest[end + 4 :] else ""
            if not isinstance(meta, dict):
                msg = (
                    f"{where} has a YAML header that is a {type(meta).__name__}, not a mapping of keys.\n"
                    "Hint: write the header as `key: value` lines (license: ..., tags: [...]) between the --- lines."
                )
                raise InputFormatError(msg)
    starts, ends = body.count(START), body.count(END)
    if (starts, ends) != (0, 0) and ((starts, ends) != (1, 1) or body.index(END) < body.index(START)):
        msg = (
            f"{where}: tracekit's section markers are out of order ({starts} {START}, {ends} {END}, "
            "the end must follow the one start).\n"
            "Hint: fix or remove the markers; tracekit rewrites what lies between them."
        )
        raise InputFormatError(msg)
    return meta, body


def merge_card(
    existing: str | None, ours: dict[str, Any], section: str, *, where: str = "the existing dataset card"
) -> str:
    """The card with tracekit's metadata and section merged into ``existing``.

    A key the user wrote keeps their value (``tags`` are united, ``OWNED_KEYS`` and
    ``configs`` given in ``ours`` are tracekit's); text outside tracekit's section stays.

    Examples
    --------
    >>> old = "---\\nlicense: mit\\ntags: [math]\\n---\\nMy notes.\\n"
    >>> new = merge_card(old, {"tags": ["tracekit"], "license": "other"}, START + "\\nstats\\n" + END + "\\n")
    >>> print(new)
    ---
    license: mit
    tags:
    - math
    - tracekit
    ---
    <!-- tracekit-card:start -->
    stats
    <!-- tracekit-card:end -->
    My notes.
    <BLANKLINE>
    """
    meta, body = split_card(existing, where)
    for key, value in ours.items():
        if key == "tags":
            have = meta.get("tags") or []
            have = list(have) if isinstance(have, list) else [have]
            meta["tags"] = have + [t for t in value if t not in have]
        elif key in OWNED_KEYS or key == "configs" or key not in meta:
            meta[key] = value
    if START in body:
        head, rest = body.split(START, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        body = head + section + tail
    else:
        body = section + body
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n" + body


def histogram_png(lengths: dict[str, Any], path: Path) -> Path:
    """Draw the trace-length histogram with a line at ``max_length`` (matplotlib, Agg backend)."""
    from tracekit.errors import require

    require("matplotlib", "hub")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.hist(lengths["lengths"], bins=lengths["edges"], color="#4c72b0")
    ax.axvline(
        lengths["max_length"], color="#c44e52", linestyle="--", label=f"max_length {lengths['max_length']}"
    )
    ax.set_xlabel(lengths["how"])
    ax.set_ylabel("traces")
    ax.set_title(f"Trace lengths ({lengths['over']} of {lengths['n']} over max_length)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
    return path
