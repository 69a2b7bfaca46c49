"""Cross-session batching: the model calls of several session threads run together on one model thread.

A backend sends its heavy calls through ``run(fn, item)``, where ``fn`` maps a list of items to a list of
results. A thread that is not routed runs ``fn([item])`` itself, so the CLI, the evaluator and the microphone
work as before. A server's session threads are routed to a ``Batcher`` (``with batcher.serving():``): their calls
wait while the model thread gathers every pending call, groups them by ``fn`` and runs each group as one batch.

The model thread starts a batch once every thread inside ``serving`` is waiting on a call (the others are still
in Python between two calls, about a millisecond), or after ``max_wait_s``. Each batch takes every pending
call, so no session waits more than one batch. A batch that fails is rerun item by item: only the item that
fails gets the error. Calls sent ``aside`` (CTranslate2's encoder: it cannot share a pass, and runs on workers
of its own) run at once on their own thread, so one session's encoder pass and another's decoder steps overlap.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

_route = threading.local()


def run(fn: Callable[[Sequence], list], item, aside: bool = False):
    """``fn([item])[0]``, batched with other threads' calls when this thread is routed to a batcher. An ``aside``
    call (work that gains nothing from a shared pass and runs on threads of its own, as CTranslate2's encoder
    does) runs at once on the calling thread, beside the batches, which do not wait for it."""
    batcher = getattr(_route, "batcher", None)
    if batcher is None:
        return fn([item])[0]
    return batcher.aside(fn, item) if aside else batcher.call(fn, item)


class _Call:
    __slots__ = ("fn", "item", "done", "result", "error")

    def __init__(self, fn, item) -> None:
        self.fn, self.item, self.done, self.result, self.error = fn, item, threading.Event(), None, None


class Batcher:
    """Gathers the calls of routed threads and runs them in batches on its own thread."""

    def __init__(self, max_wait_s: float = 0.05) -> None:
        self.max_wait_s = max_wait_s
        self._cond = threading.Condition()
        self._pending: list[_Call] = []
        self._serving = 0  # routed threads between entering and leaving ``serving``
        self._away = 0  # routed threads in an ``aside`` call
        self._closed = False
        self.batches: Counter = Counter()  # fn name -> batches run
        self.items: Counter = Counter()  # fn name -> items run
        self._thread = threading.Thread(target=self._loop, name="simulst-batcher", daemon=True)
        self._thread.start()

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Route this thread's model calls here while the block runs (one session's round)."""
        with self._cond:
            self._serving += 1
        _route.batcher = self
        try:
            yield
        finally:
            _route.batcher = None
            with self._cond:
                self._serving -= 1
                self._cond.notify_all()

    def call(self, fn, item):
        call = _Call(fn, item)
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._pending.append(call)
            self._cond.notify_all()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def aside(self, fn, item):
        with self._cond:
            self._away += 1
            self._cond.notify_all()
        try:
            return fn([item])[0]
        finally:
            with self._cond:
                self._away -= 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                deadline = time.monotonic() + self.max_wait_s
                while len(self._pending) + self._away < self._serving and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, self._pending = self._pending, []
            groups: dict = {}
            for call in batch:
                groups.setdefault(call.fn, []).append(call)
            for fn, calls in groups.items():
                self._run(fn, calls)

    def _run(self, fn, calls: list[_Call]) -> None:
        name = getattr(fn, "__name__", str(fn))
        self.batches[name] += 1
        self.items[name] += len(calls)
        try:
            results = fn([c.item for c in calls])
        except Exception as exc:  # noqa: BLE001 - handed to the callers
            if len(calls) > 1:
                for call in calls:
                    self._run(fn, [call])
                return
            calls[0].error = exc
            calls[0].done.set()
            return
        for call, result in zip(calls, results):
            call.result = result
            call.done.set()
