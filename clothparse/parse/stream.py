"""Run a batch through three stages -- load, model, finish -- in input order, sequentially or
overlapped on threads, with the same results either way.

Stages (``Stages``): ``load(item)`` reads one input (or returns ``Done(value)`` when the item
needs no model, e.g. its outputs exist); ``detect(loaded_list)`` runs the model on up to
``batch`` loaded items at once; ``finish(item, loaded, detected)`` does the rest of one item
(post-processing, encoding, writing) and returns its value.

``run_pipelined`` overlaps them::

    items -> [loader thread] -> loaded queue (max(2, batch))
          -> [model thread: groups of `batch`] -> finish tasks on a pool of `workers` threads
          -> results queue (batch + 2 * workers) -> the caller, in input order

Both queues are bounded, so fewer than ``3 * batch + 2 * workers + 5`` items are alive at
once however many there are, and memory stays flat. ``run_sequential`` runs the same stages on
the calling thread. Items go to the model in the same groups either way (consecutive loaded
items, ``batch`` at a time; items that failed or were ``Done`` at load do not count), so
both give identical results.

Errors, per item, as ``Result.error``: an exception that ``is_expected`` accepts, raised by
``load``, ``finish`` or ``detect`` (a failed group is retried one item at a time, so the
error lands on the item that caused it and the others go on). Any other exception is a bug:
no new work starts, and it is raised in the caller at its item's position, after every
earlier item was yielded (a finish task already running beside it is allowed to end).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")  # an input item
L = TypeVar("L")  # a loaded item
D = TypeVar("D")  # the model's output for one item
R = TypeVar("R")  # an item's final value

#: Seconds a blocked queue operation waits before looking at the stop flag again.
_POLL_S = 0.05


@dataclass(frozen=True)
class Done(Generic[R]):
    """What ``load`` returns for an item that is complete without the model."""

    value: R


@dataclass
class Result(Generic[T, R]):
    """One item's outcome: its ``value``, or the expected exception that stopped it.
    ``done_at_load``: the value came from ``load`` (a ``Done``), not from ``finish``."""

    item: T
    value: R | None = None
    error: BaseException | None = None
    done_at_load: bool = False


@dataclass(frozen=True)
class Stages(Generic[T, L, D, R]):
    """The three stage functions and the rule that tells an item's error from a bug."""

    load: Callable[[T], L | Done[R]]
    detect: Callable[[list[L]], list[D]]
    finish: Callable[[T, L, D], R]
    is_expected: Callable[[BaseException], bool]


@dataclass
class _Entry:
    """An item between stages: loaded (``loaded``), done at load, failed (``error``), or a bug."""

    item: Any
    loaded: Any = None
    done: Done[Any] | None = None
    error: BaseException | None = None
    bug: bool = False
    detected: Any = None

    @property
    def needs_model(self) -> bool:
        return self.error is None and self.done is None


@dataclass(frozen=True)
class _Bug:
    exc: BaseException


_END = object()


def _load(stages: Stages[Any, Any, Any, Any], item: Any) -> _Entry:
    try:
        got = stages.load(item)
    except Exception as exc:
        return _Entry(item, error=exc, bug=not stages.is_expected(exc))
    return _Entry(item, done=got) if isinstance(got, Done) else _Entry(item, loaded=got)


def _groups(entries: Iterable[_Entry], batch: int) -> Iterator[list[_Entry]]:
    """Consecutive entries, cut after every ``batch``-th one that needs the model and after a bug."""
    group: list[_Entry] = []
    n = 0
    for e in entries:
        group.append(e)
        n += e.needs_model
        if n == batch or e.bug:
            yield group
            group, n = [], 0
    if group:
        yield group


def _detect(stages: Stages[Any, Any, Any, Any], group: list[_Entry]) -> None:
    """Fill ``detected`` (or an expected ``error``) of the group's entries that need the model.
    A failed batch is retried one item at a time; raises a bug."""
    todo = [e for e in group if e.needs_model]
    if not todo:
        return
    try:
        outs = _checked(stages.detect([e.loaded for e in todo]), len(todo))
    except Exception as exc:
        if not stages.is_expected(exc):
            raise
        if len(todo) == 1:
            todo[0].error = exc
            return
        for e in todo:  # whose photo was it? one at a time
            try:
                e.detected = _checked(stages.detect([e.loaded]), 1)[0]
            except Exception as one:
                if not stages.is_expected(one):
                    raise
                e.error = one
        return
    for e, d in zip(todo, outs, strict=True):
        e.detected = d


def _checked(outs: list[Any], n: int) -> list[Any]:
    if len(outs) != n:
        raise RuntimeError(f"detect returned {len(outs)} results for {n} items")
    return outs


def _settled(e: _Entry) -> Result[Any, Any] | None:
    """The result of an entry that needs no finish step (None when it does); raises its bug."""
    if e.bug and e.error is not None:
        raise e.error
    if e.error is not None:
        return Result(e.item, error=e.error)
    if e.done is not None:
        return Result(e.item, value=e.done.value, done_at_load=True)
    return None


def _finish(stages: Stages[Any, Any, Any, Any], e: _Entry) -> Result[Any, Any]:
    try:
        return Result(e.item, value=stages.finish(e.item, e.loaded, e.detected))
    except Exception as exc:
        if not stages.is_expected(exc):
            raise
        return Result(e.item, error=exc)
    finally:
        e.loaded = e.detected = None  # the photo may wait in the results queue: free it now


def run_sequential(items: Iterable[T], stages: Stages[T, Any, Any, R], batch: int = 1) -> Generator[Result[T, R], None, None]:
    """Every stage on the calling thread, one group of ``batch`` items after the other."""
    if batch < 1:
        raise ValueError(f"need batch >= 1, got {batch}")
    for group in _groups((_load(stages, it) for it in items), batch):
        _detect(stages, group)
        for e in group:
            r = _settled(e)
            yield r if r is not None else _finish(stages, e)


def run_pipelined(
    items: Iterable[T],
    stages: Stages[T, Any, Any, R],
    batch: int = 1,
    workers: int = 1,
    init_worker: Callable[[], None] | None = None,
) -> Generator[Result[T, R], None, None]:
    """The stages overlapped on a loader thread, a model thread and ``workers`` finish threads
    (each started with ``init_worker``); results in input order (see the module docstring).
    Close the iterator (or exhaust it) to stop and join the threads."""
    if batch < 1 or workers < 1:
        raise ValueError(f"need batch >= 1 and workers >= 1, got {batch} and {workers}")
    stop = threading.Event()
    loaded_q: queue.Queue[Any] = queue.Queue(maxsize=max(2, batch))
    results_q: queue.Queue[Any] = queue.Queue(maxsize=batch + 2 * workers)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="cpt-finish", initializer=init_worker)

    def loader() -> None:
        try:
            for it in items:
                e = _load(stages, it)
                if not _put(loaded_q, e, stop) or e.bug:
                    return
        except BaseException as exc:  # a bug in the input iterable itself
            _put(loaded_q, _Entry(None, error=exc, bug=True), stop)
        finally:
            _put(loaded_q, _END, stop)

    def model() -> None:
        try:
            for group in _groups(_drain(loaded_q, stop), batch):
                _detect(stages, group)
                for e in group:
                    fut = pool.submit(_finish, stages, e) if e.needs_model else None
                    if not _put(results_q, (e, fut), stop):
                        return
        except BaseException as exc:
            _put(results_q, _Bug(exc), stop)
        finally:
            _put(results_q, _END, stop)

    threads = [threading.Thread(target=f, name=f"cpt-{f.__name__}", daemon=True) for f in (loader, model)]
    for t in threads:
        t.start()
    try:
        while True:
            got = _get(results_q, threads[1])
            if got is _END:
                return
            if isinstance(got, _Bug):
                raise got.exc
            e, fut = got
            r = _settled(e) if fut is None else _result(fut)
            assert r is not None  # an entry without a future needs no finish step
            yield r
    finally:
        stop.set()
        for t in threads:
            t.join()
        pool.shutdown(wait=True, cancel_futures=True)


def _result(fut: Future[Result[Any, Any]]) -> Result[Any, Any]:
    return fut.result()  # _finish keeps expected errors in the Result; a bug raises here


def _put(q: queue.Queue[Any], x: Any, stop: threading.Event) -> bool:
    """Put ``x`` unless ``stop`` is set first; False when it was not put."""
    while not stop.is_set():
        with contextlib.suppress(queue.Full):
            q.put(x, timeout=_POLL_S)
            return True
    return False


def _drain(q: queue.Queue[Any], stop: threading.Event) -> Iterator[_Entry]:
    """Entries from ``q`` until its end marker (or ``stop``)."""
    while not stop.is_set():
        try:
            got = q.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        if got is _END:
            return
        yield got


def _get(q: queue.Queue[Any], producer: threading.Thread) -> Any:
    """The next item of ``q``, waiting while its producer lives."""
    while True:
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            if not producer.is_alive() and q.empty():
                raise RuntimeError("the model thread ended without its end marker") from None
