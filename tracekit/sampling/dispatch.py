"""Spreading one call's requests over several endpoints of the http backend.

Each request has a *home* endpoint picked from its group (``Request.group``: the problem, so
the samples and reflections of one problem meet the same server's prefix cache; without a
group, the prompt itself). A :class:`Dispatcher` keeps ``workers`` threads per endpoint for
the life of the sampler, each over its endpoint's queue; a worker whose queue is empty takes
the newest request waiting on the longest queue of an endpoint whose workers are all busy,
so no endpoint idles while another still has a backlog (the tail of a call is shared out),
and an endpoint with a free worker keeps its own requests. Calls from several threads (the
local executor's jobs in flight) share the workers: requests stream to the endpoints instead
of waiting for a whole call to finish.
:class:`Endpoints` remembers which endpoints refused connections lately, so that a request
fails over to the next one in its order instead of waiting on a dead server.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import xxhash


def home_of(key: str, n: int) -> int:
    """The endpoint (0 .. n-1) that requests of group ``key`` go to first (stable across runs).

    Examples
    --------
    >>> home_of("problem-1", 3) == home_of("problem-1", 3)
    True
    >>> home_of("anything", 1)
    0
    """
    return xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass")) % n if n > 1 else 0


class Endpoints:
    """Which endpoints refused a connection lately (each is skipped for ``cooloff`` seconds)."""

    def __init__(self, n: int, cooloff: float) -> None:
        self.n, self.cooloff = n, cooloff
        self._down_until = [0.0] * n
        self._lock = threading.Lock()

    def mark_down(self, i: int) -> None:
        with self._lock:
            self._down_until[i] = time.monotonic() + self.cooloff

    def mark_up(self, i: int) -> None:
        with self._lock:
            self._down_until[i] = 0.0

    def pick(self, first: int, exclude: set[int]) -> int | None:
        """The first endpoint from ``first`` on (wrapping) not in ``exclude``, preferring those not
        marked down; ``None`` when every endpoint is excluded."""
        order = [(first + k) % self.n for k in range(self.n)]
        left = [i for i in order if i not in exclude]
        now = time.monotonic()
        with self._lock:
            live = [i for i in left if self._down_until[i] <= now]
        return (live or left or [None])[0]


class _Call:
    """One :meth:`Dispatcher.run`: its items, results, first error and how many are not done."""

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items
        self.results: list[Any] = [None] * len(items)
        self.error: BaseException | None = None
        self.left = len(items)


class Dispatcher:
    """Up to ``workers`` threads per endpoint serving every call made through :meth:`run`.

    Calls share the workers: while one call waits on its slowest request, the next call's
    requests (another chunk, from another thread) already run, so no endpoint idles at the
    tail of a call. Item ``i`` of a call waits on the queue of endpoint ``homes[i]``; an idle
    worker of endpoint ``e`` takes from its own queue first (oldest first), then the newest
    item of the longest queue of an endpoint whose workers are all busy. A call's first error
    drops its items not yet started (its requests in flight finish) and is raised by its
    :meth:`run`; other calls go on. Each call tops its endpoints up to ``workers`` threads; a
    worker with nothing to do for ``idle`` seconds ends, and :meth:`close` lets them all go.

    Examples
    --------
    >>> d = Dispatcher(2, 1, lambda item, endpoint: (item, endpoint))
    >>> d.run(["a", "b"], [1, 0])
    [('a', 1), ('b', 0)]
    >>> d.close()
    """

    def __init__(self, n: int, workers: int, work: Callable[[Any, int], Any], idle: float = 5.0) -> None:
        self.n, self.workers, self.work, self.idle = n, max(1, workers), work, idle
        self._queues: list[deque[tuple[_Call, int]]] = [deque() for _ in range(n)]
        self._busy = [0] * n  # workers of each endpoint with a request in flight
        self._live = [0] * n  # workers of each endpoint
        self._lock = threading.Condition()
        self._generation = 0  # close() starts a new one: the workers of older ones end

    def run(self, items: Sequence[Any], homes: Sequence[int]) -> list[Any]:
        """``[work(item, endpoint) for item]`` in order (see the class docstring)."""
        call = _Call(items)
        with self._lock:
            for i, home in enumerate(homes):
                self._queues[home].append((call, i))
            # every endpoint's first worker starts before any endpoint's second
            for _ in range(self.workers):
                for e in range(self.n):
                    if self._live[e] < self.workers:
                        self._live[e] += 1
                        threading.Thread(
                            target=self._serve, args=(e, self._generation), daemon=True, name=f"endpoint-{e}"
                        ).start()
            self._lock.notify_all()
            while call.left:  # in slices, so that Ctrl-C reaches a waiting main thread at once
                self._lock.wait(0.2)
        if call.error is not None:
            raise call.error
        return call.results

    def close(self) -> None:
        """Let the workers go: calls still waiting for a worker fail; requests in flight finish on
        their daemon threads (nobody waits for them here), and their workers then end."""
        with self._lock:
            self._generation += 1
            self._busy, self._live = [0] * self.n, [0] * self.n
            for queue in self._queues:
                while queue:
                    call, _ = queue.popleft()
                    call.error = call.error or RuntimeError("the sampler was closed during the call")
                    call.left -= 1
            self._lock.notify_all()

    def _take(self, e: int, generation: int) -> tuple[_Call, int] | None:
        """Own queue first; else the newest item of the longest queue whose endpoint has every
        worker busy (an endpoint with an idle worker serves its own queue); else wait (and end
        after ``idle`` seconds of nothing)."""
        with self._lock:
            idle = False
            while generation == self._generation:
                queues, busy = self._queues, self._busy
                if queues[e]:
                    busy[e] += 1
                    return queues[e].popleft()
                full = [q for q in range(self.n) if queues[q] and busy[q] >= self.workers]
                if full:
                    busy[e] += 1
                    return queues[max(full, key=lambda q: len(queues[q]))].pop()
                if idle:
                    self._live[e] -= 1
                    return None
                idle = not self._lock.wait(self.idle)
            return None

    def _serve(self, e: int, generation: int) -> None:
        while (taken := self._take(e, generation)) is not None:
            call, i = taken
            result, error = None, None
            if call.error is None:
                try:
                    result = self.work(call.items[i], e)
                except BaseException as exc:  # noqa: BLE001 - handed to the call's run()
                    error = exc
            with self._lock:
                if generation == self._generation:
                    self._busy[e] -= 1
                call.left -= 1
                if error is not None and call.error is None:
                    call.error = error
                    self._drop(call)
                elif call.error is None:
                    call.results[i] = result
                self._lock.notify_all()

    def _drop(self, call: _Call) -> None:
        """Take the items of ``call`` not yet started off every queue (under the lock)."""
        for q, queue in enumerate(self._queues):
            kept = deque(item for item in queue if item[0] is not call)
            call.left -= len(queue) - len(kept)
            self._queues[q] = kept
