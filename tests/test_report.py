"""``tracekit report``: one self-contained page with every plot it claims, rendered in a real headless
Chromium (the DevTools protocol over a pipe) with every image decoded and no console error."""

import base64
import json
import os
import re
import select
import shutil
import subprocess
import time

import pytest

from tracekit.evaluate.config import BudgetForcing, EvalConfig, EvalModel, EvalTask
from tracekit.evaluate.report import write_report
from tracekit.evaluate.stage import run_eval
from tracekit.sampling.base import SamplingParams
from tracekit.sampling.scripted import ScriptedSampler

SECTIONS = ["funnel", "accuracy", "verdicts", "formats", "lengths", "evals", "skills", "examples"]
# alt texts of every plot the report claims for a store with samples, reflections, traces and evals
PLOTS = {
    "yield funnel", "accuracy by task", "verdict confusion matrices", "trace format mix", "sample lengths",
    "trace lengths", "eval lengths", "accuracy by difficulty",
}  # fmt: skip


@pytest.fixture(scope="module")
def report_path(tmp_path_factory):
    from tracekit.rearrange import RearrangeConfig, rearrange_store
    from tracekit.reference import import_skillfactory, synthetic_raw
    from tracekit.store import Store

    tmp = tmp_path_factory.mktemp("report")
    synthetic_raw(30, response_chars=160, reflection_chars=90, seed=3).write_parquet(tmp / "raw.parquet")
    store = Store(tmp / "st", create=True)
    import_skillfactory(tmp / "raw.parquet", store)
    rearrange_store(store, RearrangeConfig(formats=("*C_full", "*C*IC", "*CC"), n_max=3))
    cfg = EvalConfig(
        store=str(store.root),
        models=(EvalModel(label="a", backend="scripted"), EvalModel(label="b", backend="scripted")),
        tasks=(EvalTask(name="multiplication", n=3, options={"digits": [2, 3], "digits_b": 1}),),
        k=2,
        params=SamplingParams(max_tokens=30),
        budget_forcing=BudgetForcing(trigger="Wait", total_tokens=60),
    )
    samplers = {"a": ScriptedSampler(model_id="a"), "b": ScriptedSampler(model_id="b")}
    run_eval(cfg, samplers=samplers, progress=False, echo=lambda *a: None)
    return write_report(store, tmp / "report.html")


def test_report_is_self_contained_with_every_plot(report_path):
    page = report_path.read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    images = re.findall(r'<img src="([^"]*)" alt="([^"]*)">', page)
    assert {alt for _, alt in images} == PLOTS and len(images) == len(PLOTS)
    for src, _ in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "pass@2" in page and "a (forced)" not in page  # tables name models and conditions in columns
    assert '<span class="t-sample">&lt;sample&gt;</span>' in page and '<span class="t-verdict">' in page


def test_report_command(report_path, tmp_path):
    from typer.testing import CliRunner

    from tracekit.cli import app

    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--store", str(report_path.parent / "st"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>")


def find_browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """The Chrome DevTools protocol over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out; NUL-separated JSON)."""

    def __init__(self, browser: str, profile: str) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire():  # in the child: fd 3 reads our commands, fd 4 writes the browser's answers
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
                "--no-default-browser-check", f"--user-data-dir={profile}", "about:blank"]  # fmt: skip
        self.proc = subprocess.Popen(
            args, preexec_fn=wire, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 60) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read(timeout)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("no answer from the browser")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def browser_or_skip() -> str:
    browser = find_browser()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail(
                "no Chromium on this CI machine: .ci/run installs Debian's chromium when it is missing"
            )
        pytest.skip("no Chromium found (apt-get install -y chromium); CI installs it and runs this test")
    return browser


IMAGES_DECODED = (
    "Promise.all(Array.from(document.images)"
    ".map(i => i.decode().then(() => [i.naturalWidth, i.naturalHeight])))"
    ".then(sizes => JSON.stringify({sizes, title: document.title,"
    " sections: document.querySelectorAll('section').length,"
    " height: document.documentElement.scrollHeight}))"
)


def render(page, profile, screenshot: str | None = None) -> tuple[dict, list[dict]]:
    """Open ``page`` in headless Chromium; the image check's result and every error the page raised."""
    tools = DevTools(browser_or_skip(), profile)
    try:
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            tools.send(domain, session=session)
        tools.send("Page.navigate", {"url": page.as_uri()}, session=session)
        tools.wait_event("Page.loadEventFired")
        result = tools.send(
            "Runtime.evaluate",
            {"expression": IMAGES_DECODED, "awaitPromise": True, "returnByValue": True},
            session=session,
        )
        if screenshot:
            shot = tools.send("Page.captureScreenshot", {"captureBeyondViewport": True}, session=session)
            with open(screenshot, "wb") as fh:
                fh.write(base64.b64decode(shot["data"]))
        tools.send("Runtime.evaluate", {"expression": "1"}, session=session)  # flush pending events
        errors = [
            e
            for e in tools.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]
        return result, errors
    finally:
        tools.close()


def test_report_renders_in_headless_chromium(report_path, tmp_path):
    result, errors = render(
        report_path, str(tmp_path / "profile"), os.environ.get("TRACEKIT_REPORT_SCREENSHOT")
    )
    assert "exceptionDetails" not in result, result  # an image that fails to decode rejects the promise
    seen = json.loads(result["result"]["value"])
    assert len(seen["sizes"]) == len(PLOTS) and all(w > 100 and h > 100 for w, h in seen["sizes"])
    assert seen["sections"] == len(SECTIONS) and seen["title"].startswith("tracekit report")
    assert seen["height"] > 3000  # the page laid out its tables, plots and examples
    assert errors == []


def test_browser_check_catches_broken_images_and_console_errors(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><title>x</title></head><body><img src="data:image/png;base64,iVBORw0KGgoAAAA">'
        "<script>console.error('boom')</script></body></html>"
    )
    result, errors = render(page, str(tmp_path / "profile"))
    assert "exceptionDetails" in result
    assert any(e.get("method") == "Runtime.consoleAPICalled" for e in errors)
