"""The dataset card escapes what comes from data, and merges only into a card it can read.

Issue 17 item 8: a prompt variant named ``<img src=x onerror=...>`` ran in a browser. The card is
rendered here the way a hub renders it (CommonMark with raw HTML on, plus GFM tables) into a
page that headless Chromium opens; the injected handler would set the title and add an element,
and the dumped DOM must show neither. The same check on unescaped markup does see the handler
run, so it can fail. Then the card-merge bad inputs: one ``error:`` line, exit 2, nothing written.
"""

from __future__ import annotations

import re
import subprocess

import polars as pl
import pytest
from cli_contract import one_error, tree
from test_report import browser_or_skip

from tracekit.export.card import END, START, md_text, merge_card, render_card

PAYLOAD = (
    "<img src=x onerror=\"document.title='pwned';"
    "document.body.appendChild(Object.assign(document.createElement('b'),{id:'pwned'}))\">"
)
HOSTILE = [
    PAYLOAD,
    f"x|{PAYLOAD}|y",
    f"`{PAYLOAD}`",
    f"[a](javascript:alert(1)) {PAYLOAD}",
    f"\n{PAYLOAD}\n# h",
]


def to_page(markdown: str, path) -> None:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    path.write_text(f"<!DOCTYPE html><html><head><title>card</title></head><body>{body}</body></html>")


def dump_dom(page, tmp_path) -> str:
    browser = browser_or_skip()
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000",
            "--dump-dom", page.as_uri()]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout


def assert_inert(dom: str) -> None:
    assert "<title>card</title>" in dom, dom[:500]
    assert 'id="pwned"' not in dom and "<title>pwned" not in dom
    images = re.findall(r"<img[^>]*>", dom)  # the payload stayed text: no element was made of it
    assert all(i == '<img src="tracekit_trace_lengths.png" alt="trace lengths">' for i in images), images


def test_the_browser_check_sees_an_injected_handler(tmp_path):
    page = tmp_path / "raw.html"
    to_page(f"| a |\n|---|\n| {PAYLOAD} |\n", page)
    dom = dump_dom(page, tmp_path)
    assert 'id="pwned"' in dom and "<title>pwned" in dom


def hostile_stats(value: str) -> dict:
    lengths = {"how": "approx", "n": 0, "max_length": 10, "over": 0, "lengths": []}
    return {
        "counts": {"problems": 1},
        "accuracy": [
            {
                "task": value,
                "difficulty": value,
                "prompt_variant": value,
                "samples": 1,
                "correct": 1,
                "accuracy": 1.0,
            }
        ],
        "verdicts": {"reflections": 1, "kept": 1, "agreement": 1.0, "by_reason": {value: 1}},
        "formats": {value: 1},
        "lengths": lengths,
        "recipe": {
            "tracekit_version": value,
            "model": value,
            "model_revision": value,
            "sampling": {value: value},
            "seeds": [0],
            "commands": [
                {"command": value, "config": {value: value}, "started_at": value, "tracekit_version": value}
            ],
            "drops": {value: 1},
        },
        "example": {"format": value, "n_samples": 2, "trace_id": value, "prompt": value, "completion": value},
    }


def test_every_data_value_of_the_card_is_inert_in_a_browser(tmp_path):
    sections = [
        render_card(hostile_stats(v), {"sft": {"train": 1}}, repo_id=f"me/{v}".replace("\n", ""))
        for v in HOSTILE
    ]
    card = merge_card(None, {"tags": ["tracekit"]}, sections[0]) + "\n".join(sections[1:])
    page = tmp_path / "card.html"
    to_page(card, page)
    assert_inert(dump_dom(page, tmp_path))


def test_exported_card_of_hostile_names_is_inert(tk, tmp_path):
    """Through the command line: a hostile prompt variant, model name and output folder name."""
    from tracekit.reference import synthetic_raw

    raw = synthetic_raw(8, seed=2).with_columns(prompt_variant=pl.lit(PAYLOAD))
    raw.write_parquet(tmp_path / "raw.parquet")
    store = tmp_path / "st"
    code, _, err = tk("import-skillfactory", tmp_path / "raw.parquet", "--store", store, "--model", PAYLOAD)
    assert code == 0, err
    assert tk("rearrange", "--store", store, "--formats", "*C_full")[0] == 0
    out = tmp_path / PAYLOAD.replace("/", "")
    code, _, err = tk("export", "--store", store, "--to", "hf", "--out", out)
    assert code == 0, err
    card = (out / "README.md").read_text()
    assert md_text(PAYLOAD) in card  # the variant is shown, escaped
    page = tmp_path / "card.html"
    to_page(card, page)
    assert_inert(dump_dom(page, tmp_path))


def test_escaped_text_reads_back_as_the_value():
    import html

    for value in HOSTILE:
        assert html.unescape(md_text(value)) == " ".join(value.splitlines())


# ------------------------------------------------------------------ card merge: bad existing README.md
@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    from tracekit.reference import import_skillfactory, synthetic_raw
    from tracekit.store import Store

    root = tmp_path_factory.mktemp("card")
    synthetic_raw(6, seed=1).write_parquet(root / "raw.parquet")
    store = Store(root / "st", create=True)
    import_skillfactory(root / "raw.parquet", store)
    return store.root


@pytest.mark.parametrize(
    ("readme", "needles"),
    [
        (f"intro\n{END}\nmiddle\n{START}\nend\n".encode(), ["markers are out of order"]),
        (f"{START}\nno end\n".encode(), ["markers are out of order"]),
        (f"{START}\na\n{END}\n{START}\nb\n{END}\n".encode(), ["markers are out of order"]),
        (b"# Card\n\xff\xfe not utf-8\n", ["README.md is not UTF-8", "byte 7"]),
        (b"---\n- a\n- b\n---\nbody\n", ["YAML header that is a list"]),
        (b"---\nkey: [1\n---\nbody\n", ["invalid YAML"]),
    ],
)
def test_a_card_tracekit_cannot_merge_into_is_one_error(tk, small_store, tmp_path, readme, needles):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "README.md").write_bytes(readme)
    before = tree(out)
    one_error(
        tk("export", "--store", small_store, "--to", "hf", "--out", out), str(out / "README.md"), *needles
    )
    assert tree(out) == before  # nothing written: the card is checked before the configs are saved


def test_a_string_tag_is_kept_whole():
    merged = merge_card("---\ntags: math\n---\n", {"tags": ["tracekit"]}, f"{START}\n{END}\n")
    assert "- math\n- tracekit\n" in merged
