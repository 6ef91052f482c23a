"""Share the cores between the model, the native SLIC and Numba while ``cpt parse`` runs
its stages on several threads at once (``clothparse.parse.stream``).

Each of the three parallel runtimes sizes itself for the whole machine by default: torch's
intra-op pool, the native SLIC's OpenMP team (``num_threads=0``) and Numba's fusion
kernels (``NUMBA_NUM_THREADS``). Run side by side they would ask for 3x the cores. A
``ThreadPlan`` gives each its share: the engine keeps its threads on the model thread, and
every post-model worker runs SLIC and fusion with ``post_threads`` threads, so that
``workers * post_threads`` stays within the cores. ONNX Runtime's intra-op threads are fixed
when its session is made (``OnnxEngine(threads=...)``); its idle workers do not spin, so
they leave the cores to the workers between runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from clothparse.errors import ConfigError
from clothparse.parse.superpixels import SlicParams, SuperpixelBackend

# Measured with `python -m clothparse.bench.parse_throughput` (ONNX Runtime, 800x1024
# photos, the small reference model, 2 cores): one worker, each stage on all cores -- see
# DEFAULT_WORKERS below and the measurements in ARCHITECTURE.md.
DEFAULT_WORKERS = 1


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadPlan:
    """How many threads each runtime gets.

    workers:      post-model threads (superpixels, fusion, encoding, writing); 0 runs every
                  stage on the calling thread, one photo after the other.
    engine:       torch intra-op threads for the model thread (0: leave torch's setting).
    post_threads: OpenMP threads of one native SLIC call and Numba threads of one fusion
                  call, per worker (0: the runtimes' defaults, all cores).
    """

    workers: int
    engine: int = 0
    post_threads: int = 0

    def __post_init__(self) -> None:
        for name in ("workers", "engine", "post_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")


def plan_threads(workers: int | None = None, cores: int | None = None) -> ThreadPlan:
    """The thread plan for ``workers`` post-model threads (None: ``DEFAULT_WORKERS``) on ``cores``.

    The engine keeps its own setting (all cores), so both paths compute the same
    detections; the workers split the cores evenly (at least one thread each).
    """
    n = available_cores() if cores is None else int(cores)
    w = DEFAULT_WORKERS if workers is None else int(workers)
    if w < 0:
        raise ConfigError(f"--workers must be >= 0, got {w}")
    if w == 0:
        return ThreadPlan(0)
    return ThreadPlan(w, post_threads=max(1, n // w))


@contextlib.contextmanager
def engine_threads(n: int) -> Iterator[None]:
    """Within the block torch uses ``n`` intra-op threads (0 or torch not loaded: unchanged)."""
    torch: Any = sys.modules.get("torch")
    if n <= 0 or torch is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def init_worker(post_threads: int) -> None:
    """Run in each post-model thread: Numba's thread count is per calling thread."""
    if post_threads <= 0:
        return
    import numba

    numba.set_num_threads(max(1, min(post_threads, int(numba.config.NUMBA_NUM_THREADS))))  # type: ignore[attr-defined]


class NativeSlicThreads:
    """The native SLIC backend with a fixed OpenMP thread count per call (same labels:
    the native SLIC's result does not depend on its thread count)."""

    name = "native"

    def __init__(self, num_threads: int) -> None:
        self.num_threads = int(num_threads)

    def segment(
        self,
        image_rgb: np.ndarray,
        n_segments: int = SlicParams.n_segments,
        compactness: float = SlicParams.compactness,
        sigma: float = SlicParams.sigma,
    ) -> np.ndarray:
        """int32 [H, W] labels 0..S-1 of an RGB uint8 [H, W, 3] image."""
        from clothparse.parse import slic_native

        return slic_native.slic(image_rgb, n_segments, compactness, sigma, num_threads=self.num_threads)


def with_slic_threads(backend: SuperpixelBackend | None, num_threads: int) -> SuperpixelBackend | None:
    """``backend`` limited to ``num_threads`` OpenMP threads when it is the native SLIC
    (scikit-image's SLIC is single-threaded; 0 leaves the backend as it is)."""
    if backend is None or num_threads <= 0 or getattr(backend, "name", None) != "native":
        return backend
    return NativeSlicThreads(num_threads)


_numba_serial = threading.Lock()


def numba_guard() -> contextlib.AbstractContextManager[Any]:
    """A lock around Numba's parallel kernels when its threading layer is ``workqueue``, which
    aborts the process when two threads launch kernels at once; the ``omp`` and ``tbb``
    layers are thread-safe (no lock). Until the first launch picks the layer, lock."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return _numba_serial
    return _numba_serial if layer == "workqueue" else contextlib.nullcontext()
