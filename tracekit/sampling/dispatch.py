"""Spreading one call's requests over several endpoints of the http backend.

Each request has a *home* endpoint picked from its group (``Request.group``: the problem, so
the samples and reflections of one problem meet the same server's prefix cache; without a
group, the prompt itself). Every endpoint runs ``workers`` threads over its own queue; a
worker whose queue is empty takes the newest request waiting on the longest queue of an
endpoint whose workers are all busy, so no endpoint idles while another still has a backlog
(the tail of a call is shared out), and an endpoint with a free worker keeps its own requests.
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


def dispatch(
    items: Sequence[Any], homes: Sequence[int], n: int, workers: int, work: Callable[[Any, int], Any]
) -> list[Any]:
    """``[work(item, endpoint) for item]`` in order, run by ``workers`` threads per endpoint.

    Item ``i`` waits on the queue of endpoint ``homes[i]``; an idle worker of endpoint ``e`` takes
    from its own queue first, then the newest item of the longest queue of a fully busy
    endpoint. The first error
    stops new work (requests in flight finish) and is raised.
    """
    queues: list[deque[int]] = [deque() for _ in range(n)]
    for i, home in enumerate(homes):
        queues[home].append(i)
    lock = threading.Condition()
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []
    per_endpoint = max(1, min(workers, len(items)))
    busy = [0] * n  # workers of each endpoint with a request in flight

    def take(e: int) -> int | None:
        """Own queue first; else the newest item of the longest queue whose endpoint has every
        worker busy (an endpoint with an idle worker serves its own queue); else wait."""
        with lock:
            while not errors:
                if queues[e]:
                    busy[e] += 1
                    return queues[e].popleft()
                full = [q for q in range(n) if queues[q] and busy[q] >= per_endpoint]
                if full:
                    busy[e] += 1
                    return queues[max(full, key=lambda q: len(queues[q]))].pop()
                if not any(queues):
                    return None
                lock.wait(0.05)  # a queue's own workers are about to take it: look again soon
            return None

    def worker(e: int) -> None:
        while (i := take(e)) is not None:
            try:
                results[i] = work(items[i], e)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                with lock:
                    errors.append(exc)
                return
            finally:
                with lock:
                    busy[e] -= 1
                    lock.notify_all()

    # interleaved, so that every endpoint's first worker starts before any endpoint's second
    threads = [
        threading.Thread(target=worker, args=(e,), daemon=True) for _ in range(per_endpoint) for e in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
