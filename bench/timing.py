"""Timers and summary statistics of the benchmark suite.

Every figure is wall-clock seconds from ``time.perf_counter``; on a CUDA device the
device is synchronised before each clock read (``sync``), and ``cuda_event_times`` uses
CUDA events for work that stays on the GPU. Warm-up runs are executed and discarded.
Statistics are reported in milliseconds.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Keys of a summary, in the order reports show them.
STAT_KEYS: tuple[str, ...] = ("median_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "mean_ms", "n")


@dataclass(frozen=True)
class Stats:
    """Summary of n timings (milliseconds)."""

    median_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    mean_ms: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize(seconds: Sequence[float]) -> Stats:
    """Stats (ms) of per-run timings in seconds; ValueError when empty."""
    if len(seconds) == 0:
        raise ValueError("no timings to summarise")
    ms = np.asarray(seconds, np.float64) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Stats(float(p50), float(p90), float(p99), float(ms.min()), float(ms.max()), float(ms.mean()), int(ms.size))


def throughput(images: int, seconds: float) -> float:
    """Images per second for ``images`` processed in ``seconds`` (0 when no time passed)."""
    return float(images) / seconds if seconds > 0 else 0.0


def _torch_cuda() -> Any | None:
    """torch.cuda when torch is imported and a CUDA device is usable, else None (never imports torch)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return torch.cuda if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    except Exception:  # a broken driver: behave as CPU-only
        return None


def sync() -> None:
    """Wait for queued CUDA work (no-op without an initialised CUDA device)."""
    cuda = _torch_cuda()
    if cuda is not None:
        cuda.synchronize()


class Clock:
    """``with Clock() as c: ...`` then ``c.seconds``; synchronises CUDA on entry and exit."""

    seconds: float = 0.0

    def __enter__(self) -> Clock:
        sync()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        sync()
        self.seconds = time.perf_counter() - self._t0


def time_fn(fn: Callable[[], Any], warmup: int, repeat: int) -> list[float]:
    """Seconds of ``repeat`` calls of ``fn`` after ``warmup`` discarded calls (CUDA synchronised)."""
    if warmup < 0 or repeat < 1:
        raise ValueError(f"need warmup >= 0 and repeat >= 1, got {warmup}, {repeat}")
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        with Clock() as c:
            fn()
        out.append(c.seconds)
    return out


def time_alternating(fns: dict[str, Callable[[], Any]], warmup: int, repeat: int) -> dict[str, list[float]]:
    """:func:`time_fn` for several functions called round-robin: seconds per call, by name.

    Alternating spreads a slow spell of a shared machine over all of them alike, so their
    ratio holds when absolute times drift.
    """
    if warmup < 0 or repeat < 1:
        raise ValueError(f"need warmup >= 0 and repeat >= 1, got {warmup}, {repeat}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            with Clock() as c:
                fn()
            out[name].append(c.seconds)
    return out


def cuda_event_times(fn: Callable[[], Any], warmup: int, repeat: int) -> list[float]:
    """Seconds of each of ``repeat`` calls measured with CUDA events (needs a CUDA device).

    Events are recorded on the current stream around each call; the host synchronises
    once per call before reading the elapsed time, so queued work is fully counted.
    """
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("CUDA event timing needs a CUDA device")
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(repeat):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        out.append(start.elapsed_time(end) / 1000.0)
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (monotonic: it cannot be reset)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def reset_peak_gpu() -> None:
    """Reset torch's peak-allocation counter (no-op without CUDA)."""
    cuda = _torch_cuda()
    if cuda is not None:
        cuda.reset_peak_memory_stats()


def peak_gpu_mb() -> float | None:
    """Peak memory allocated by torch on the current CUDA device since the last reset, MiB; None without CUDA."""
    cuda = _torch_cuda()
    if cuda is None:
        return None
    return float(cuda.max_memory_allocated()) / (1024.0 * 1024.0)
