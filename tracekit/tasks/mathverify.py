"""``math-verify`` (optional extra ``math``), run in a sandboxed worker process.

How math-verify reads text (checked in its released ``parser.py``): LaTeX goes through
``latex2sympy2_extended`` (a grammar, then sympy objects), but its plain-expression
extractor hands matched text to ``sympy.parsing.parse_expr``, which calls ``eval``; its
``verify`` may run sympy simplification for a long time, and its own timeout uses
``signal.alarm`` (main thread only). So tracekit never runs it in-process:

* only its LaTeX extraction is used (answers are wrapped in ``\\boxed{}``), never the
  plain-expression one, so ``parse_expr`` is not reached;
* it runs in a separate worker process (``python -m tracekit.tasks.mathverify``) with an
  address-space limit (:data:`MEMORY_LIMIT`) and a CPU-time limit;
* every comparison has a wall-clock bound (:data:`CALL_TIMEOUT`): a worker that does not
  answer in time is killed (a fresh one starts on the next call) and the answer's verdict is
  ``timeout``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import subprocess
import sys
import threading
import time

CALL_TIMEOUT = 5.0  # seconds for one comparison
START_TIMEOUT = 60.0  # seconds for a worker to import math-verify and sympy
MEMORY_LIMIT = 2 * 2**30  # bytes of address space for the worker
CPU_LIMIT = 3600  # seconds of CPU for one worker's life


def available() -> bool:
    """Whether math-verify is installed (``pip install 'tracekit[math]'``)."""
    return importlib.util.find_spec("math_verify") is not None


class _Worker:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.buffer = b""
        self.lock = threading.Lock()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracekit.tasks.mathverify"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        self.buffer = b""
        if self._read(START_TIMEOUT) != {"ready": True}:
            self.stop()
            raise RuntimeError("the math-verify worker did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def _read(self, timeout: float):
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def ask(self, reference: str, answer: str, timeout: float) -> bool | None:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            assert self.proc is not None and self.proc.stdin is not None
            try:
                self.proc.stdin.write(json.dumps({"gold": reference, "pred": answer}).encode() + b"\n")
                reply = self._read(timeout)
            except (BrokenPipeError, OSError, ValueError):
                reply = None
            if reply is None:  # too slow, out of memory or crashed: a fresh worker next time
                self.stop()
                return None
            return bool(reply.get("equal"))


_WORKER = _Worker()


def equivalent(reference: str, answer: str, timeout: float = CALL_TIMEOUT) -> bool | None:
    """Whether math-verify finds ``answer`` equal to ``reference`` (both LaTeX), or None when the
    worker did not answer within ``timeout`` seconds (or died)."""
    try:
        return _WORKER.ask(reference, answer, timeout)
    except RuntimeError:
        return None


def _boxed(text: str) -> str:
    return text if "\\boxed" in text else "\\boxed{" + text + "}"


def _serve() -> None:  # pragma: no cover - runs in the worker process
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT, CPU_LIMIT))
    import logging

    logging.disable(logging.CRITICAL)
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig()]  # LaTeX only: the plain-expression extractor calls parse_expr
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            gold = parse(_boxed(request["gold"]), extraction_config=config, parsing_timeout=None)
            pred = parse(_boxed(request["pred"]), extraction_config=config, parsing_timeout=None)
            equal = bool(gold and pred and verify(gold, pred, timeout_seconds=None))
        except Exception:
            equal = False
        out.write(json.dumps({"equal": equal}).encode() + b"\n")
        out.flush()


if __name__ == "__main__":  # pragma: no cover
    _serve()
