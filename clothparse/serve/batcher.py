"""Dynamic batching: requests from many connections grouped into engine batches.

``Batcher.submit(item)`` queues one photo and returns a ``concurrent.futures.Future`` (the
event loop awaits it with ``asyncio.wrap_future``). One model thread takes the first queued
item, then waits until ``max_batch`` items are queued or ``max_wait_s`` has passed since that
first item arrived, and runs ``detect`` on the batch off the event loop. Each photo's
post-model work (``finish``: superpixels, fusion, encoding) goes to a small thread pool, so
it runs while the model thread already batches the next photos.

A future cancelled before its batch starts (its client went away) is dropped from the batch.
An exception in ``detect`` fails every future of that batch; in ``finish``, that photo's
alone; neither stops the threads. Admission (how many requests may be in the server at
once) is ``Slots``, checked before a request reads its upload.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from clothparse.serve.metrics import Metrics

Item = TypeVar("Item")
Det = TypeVar("Det")
Out = TypeVar("Out")


class QueueFull(Exception):
    """More requests than ``--max-queue`` are in the server (a 503)."""


class Slots:
    """A non-blocking counter of requests in the server: at most ``limit`` at once."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the queue limit must be >= 1, got {limit}")
        self.limit = int(limit)
        self.used = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take a slot, or raise QueueFull."""
        with self._lock:
            if self.used >= self.limit:
                raise QueueFull(f"server busy: {self.used} requests in progress (--max-queue {self.limit}); retry later")
            self.used += 1

    def release(self, *_: Any) -> None:
        """Give a slot back (any arguments ignored: usable as a future's done callback)."""
        with self._lock:
            self.used = max(0, self.used - 1)


@dataclass
class _Pending(Generic[Item, Out]):
    item: Item
    future: Future[Out]
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher(Generic[Item, Det, Out]):
    """Batch ``Item``s through ``detect`` (model thread) and ``finish`` (post-model pool).

    detect: list of items -> one ``Det`` per item, in order (one engine batch).
    finish: (item, its Det, seconds it waited in the queue) -> the future's result.
    """

    def __init__(
        self,
        detect: Callable[[list[Item]], Sequence[Det]],
        finish: Callable[[Item, Det, float], Out],
        *,
        max_batch: int = 4,
        max_wait_s: float = 0.01,
        workers: int = 2,
        metrics: Metrics | None = None,
        worker_init: Callable[[], None] | None = None,
    ) -> None:
        if max_batch < 1 or workers < 1 or max_wait_s < 0:
            raise ValueError("max_batch and workers must be >= 1 and max_wait_s >= 0")
        self.detect = detect
        self.finish = finish
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.workers = int(workers)
        self.metrics = metrics if metrics is not None else Metrics()
        self._worker_init = worker_init
        self._queue: queue.Queue[_Pending[Item, Out] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def start(self) -> None:
        if self._thread is not None:
            return
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cpt-post", initializer=self._worker_init)
        self._thread = threading.Thread(target=self._loop, name="cpt-model", daemon=True)
        self._thread.start()

    def depth(self) -> int:
        """Items queued for the model thread (not yet in a batch)."""
        return self._queue.qsize()

    def submit(self, item: Item) -> Future[Out]:
        if self._thread is None or self._closed:
            raise RuntimeError("the batcher is not running")
        fut: Future[Out] = Future()
        self._queue.put(_Pending(item, fut))
        return fut

    def close(self) -> None:
        """Stop taking items, finish those queued, and join the threads."""
        if self._thread is None or self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        assert self._pool is not None
        self._pool.shutdown(wait=True)

    def _next_batch(self) -> tuple[list[_Pending[Item, Out]], bool]:
        """Block for a first item, then gather up to ``max_batch``; (batch, stop after it)."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        deadline = first.queued_at + self.max_wait_s
        while len(batch) < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                nxt = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return batch, True
            batch.append(nxt)
        return batch, False

    def _loop(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._next_batch()
            live = [p for p in batch if p.future.set_running_or_notify_cancel()]
            if live:
                self._run(live)

    def _run(self, batch: list[_Pending[Item, Out]]) -> None:
        started = time.perf_counter()
        self.metrics.observe_batch(len(batch))
        try:
            dets = list(self.detect([p.item for p in batch]))
            if len(dets) != len(batch):
                raise RuntimeError(f"detect returned {len(dets)} results for {len(batch)} photos")
        except BaseException as exc:  # one failed batch fails its requests, not the server
            for p in batch:
                p.future.set_exception(exc)
            return
        assert self._pool is not None
        for p, d in zip(batch, dets, strict=True):
            self._pool.submit(self._finish_one, p, d, started - p.queued_at)

    def _finish_one(self, p: _Pending[Item, Out], det: Det, waited: float) -> None:
        try:
            p.future.set_result(self.finish(p.item, det, waited))
        except BaseException as exc:
            p.future.set_exception(exc)
