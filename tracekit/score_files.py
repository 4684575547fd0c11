"""The ``score`` command on a file: paths checked first, the output written in place, all or nothing.

A file of several chunks (:data:`CHUNK_BYTES`) is scored by forked worker processes, one per
CPU, one chunk each at a time (the lines that start in it). A worker writes its chunk's output
straight into the output file (``os.pwrite``) at the offset the chunks before it end at: the
chunks take their turn in file order through one shared counter, so nothing but a chunk's
counts and problems crosses a pipe, and at most one chunk's output per worker is in memory.
The output and the errors are those of :func:`tracekit.score.score_jsonl` on the whole file.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

from tracekit.score import ASCII_BLANK, READ_BYTES, NotUTF8, Scorer, line_blocks, score_jsonl
from tracekit.tasks import Task, get_task

CHUNK_BYTES = 8 << 20  # the share of a file a worker process scores at a time
MAX_WORKERS = 8
FLUSH_BYTES = 64 << 20  # the output is flushed to disk as it grows by this much (workers)


def score_file(task: str, src: str | Path, out: str | Path) -> tuple[int, list[str]]:
    """The ``score`` command: score the jsonl file ``src`` with ``task``'s verifier into ``out``.

    Paths are checked before any work (``src`` a file, ``out`` a writable file path); ``out`` is
    written as it goes, under a temporary name, and appears whole at the end (flat memory); a
    file that is not UTF-8 text raises :class:`~tracekit.errors.InputFormatError` and leaves no
    ``out``. A file of several chunks is scored by worker processes (one per CPU, where
    processes can be forked; the same output and errors as :func:`~tracekit.score.score_jsonl`).
    Returns the number of scored lines and the malformed ones.
    """
    from tracekit.places import check_input_file, check_output_file
    from tracekit.store.files import atomic_write

    verifier = get_task(task)
    src = check_input_file(src, "score: input", "give a jsonl file: one JSON object per line.")
    out = check_output_file(out, "score --out")
    result: list[tuple[int, list[str]]] = []
    chunks = -(-src.stat().st_size // CHUNK_BYTES)
    workers = min(_cpus(), chunks, MAX_WORKERS) if "fork" in _start_methods() else 1

    def write(tmp: Path) -> None:
        if workers > 1:
            result.append(_score_in_workers(verifier, src, tmp, chunks, workers))
            return
        with open(src, "rb") as fh, open(tmp, "w", encoding="utf-8") as dst:
            result.append(score_jsonl(verifier, fh, dst, name=str(src)))

    atomic_write(out, write)
    return result[0]


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _score_in_workers(task: Task, src: Path, tmp: Path, chunks: int, workers: int) -> tuple[int, list[str]]:
    """:func:`score_jsonl` of the file ``src`` into the (new) file ``tmp`` by ``workers`` forked
    processes, each scoring one chunk at a time and writing its output in its turn; at most two
    chunks per worker are queued. Meanwhile this process flushes what they wrote to disk, so the
    final flush of :func:`~tracekit.store.files.atomic_write` has little left to do."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")  # the task as loaded here, custom ones too
    turn = context.Array("q", 2, lock=False)  # the next chunk to write, and where its output starts
    ready = context.Condition()
    scored, errors, number, flushed = 0, [], 0, 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    gc.freeze()  # the workers' collections leave this process's objects (and their shared pages) alone
    try:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(task, str(tmp), turn, ready)
        ) as pool:
            pending: deque = deque()
            nxt = 0
            while nxt < chunks or pending:
                while nxt < chunks and len(pending) < 2 * workers:
                    pending.append(pool.submit(_score_chunk, str(src), nxt))
                    nxt += 1
                lines, found, problems, bad = pending.popleft().result()
                if bad is not None:
                    for future in pending:
                        future.cancel()
                    raise NotUTF8(*bad).error(number, str(src))
                scored += found
                errors += [f"line {number + n}: {problem}" for n, problem in problems]
                number += lines
                if turn[1] - flushed >= FLUSH_BYTES:  # while the workers score the next chunks
                    flushed = turn[1]
                    os.fdatasync(fd)
    finally:
        os.close(fd)
        gc.unfreeze()
    return scored, errors


_WORKER: dict = {}  # a worker process's scorer, output file and turn


def _start_worker(task: Task, path: str, turn, ready) -> None:
    _WORKER.update(scorer=Scorer(task, ASCII_BLANK), fd=os.open(path, os.O_WRONLY), turn=turn, ready=ready)


def _score_chunk(path: str, index: int) -> tuple[int, int, list[tuple[int, str]], tuple | None]:
    """Score the lines of ``path`` that start in its ``index``-th chunk of ``CHUNK_BYTES`` and
    write their output in its turn: the number of lines, the number scored, the problems
    (numbered from 1 in the chunk) and the bytes that are not UTF-8, if any (the arguments of a
    :class:`~tracekit.score.NotUTF8`; nothing written)."""
    try:
        parts, lines, scored, problems, bad = _scored_chunk(_WORKER["scorer"], path, index)
    except BaseException:
        _write_in_turn(index, [])  # the chunks after this one do not wait for it
        raise
    _write_in_turn(index, [] if bad else parts)
    return lines, scored, problems, bad


class _Chunk:
    """The bytes of the lines that start in ``[begin, begin + size)`` of the open file ``fh``
    (positioned at ``begin``), read as :func:`~tracekit.score.line_blocks` reads a file."""

    def __init__(self, fh, size: int) -> None:
        self.fh, self.left = fh, size

    def read(self, n: int) -> bytes:
        if self.left <= 0:
            return b""
        data = self.fh.read(min(n, self.left))
        self.left -= len(data)
        return data

    def readline(self) -> bytes:  # the rest of a line that started inside: past the end too
        line = self.fh.readline()
        self.left -= len(line)
        return line


def _scored_chunk(scorer: Scorer, path: str, index: int):
    start, stop = index * CHUNK_BYTES, (index + 1) * CHUNK_BYTES
    scorer.scored, scorer.errors = 0, []
    parts, lines = [], 0
    with open(path, "rb") as fh:
        if start:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                fh.readline()  # the rest of a line that started in an earlier chunk
        begin = fh.tell()
        try:
            for block, last_ends, _ in line_blocks(_Chunk(fh, stop - begin), READ_BYTES, begin):
                text, found = scorer.block(block, lines, last_ends)
                if text:
                    parts.append(text.encode("utf-8"))
                lines += found
        except NotUTF8 as bad:  # its line counted in the chunk
            return [], lines, 0, [], (bad.line + lines, bad.column, bad.byte, bad.offset)
    return parts, lines, scorer.scored, scorer.errors, None


def _write_in_turn(index: int, parts: list[bytes]) -> None:
    """Wait for chunk ``index``'s turn, take its place in the output and write ``parts`` there."""
    turn, ready = _WORKER["turn"], _WORKER["ready"]
    size = sum(map(len, parts))
    with ready:
        while turn[0] != index:
            ready.wait()
        at = turn[1]
        turn[0], turn[1] = index + 1, at + size
        ready.notify_all()
    fd = _WORKER["fd"]
    for part in parts:
        view, done = memoryview(part), 0
        while done < len(part):
            done += os.pwrite(fd, view[done:], at + done)
        at += len(part)
