"""The parse service behind the routes: one ``Parser`` (engines loaded once), the batcher,
the result cache, admission slots and metrics, and the warm-up that makes ``/readyz`` ready.

Thread roles: the event loop reads uploads; anyio's worker threads decode photos and render
overlay views; the batcher's model thread runs the engines; its post-model pool refines
(SLIC + fusion) and encodes. Numba's parallel kernels are entered under ``numba_guard``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clothparse.parse.outputs import encode_result
from clothparse.parse.pipeline import Detected, Parser
from clothparse.parse.png_codec import rgb_png
from clothparse.parse.threads import init_worker, numba_guard, plan_threads, with_slic_threads
from clothparse.parse.views import OverlayOptions, render_view
from clothparse.serve.batcher import Batcher, Slots
from clothparse.serve.cache import CachedResult, ResultCache
from clothparse.serve.metrics import Metrics
from clothparse.serve.options import ParseOptions, Refiners, filter_detected

log = logging.getLogger("clothparse.serve")

MIB = 1 << 20


@dataclass(frozen=True)
class ServeConfig:
    """The server's limits (``cpt serve`` flags).

    max_batch: photos per engine call; max_wait_ms: how long the first photo of a batch waits
    for others; max_queue: requests in the server at once (one more: 503); max_upload_bytes:
    413 above; max_pixels: 413 above (width x height, from the header); cache_bytes: the
    result cache; workers: post-model threads; png_level: the overlay PNG's zlib level;
    warmup: run one photo through the pipeline at start-up before ``/readyz`` says ready.
    """

    max_batch: int = 4
    max_wait_ms: float = 10.0
    max_queue: int = 64
    max_upload_bytes: int = 32 * MIB
    max_pixels: int = 40_000_000
    cache_bytes: int = 512 * MIB
    workers: int = 2
    png_level: int = 1
    warmup: bool = True


@dataclass
class Job:
    """One photo in the pipeline: RGB uint8 [H, W, 3] ``image``, the seconds its decoding
    took, its name (the record's ``image.file``), its options and refining ``Parser``."""

    image: np.ndarray
    decode_s: float
    source: str
    options: ParseOptions
    refiner: Parser
    warmup: bool = False


@dataclass
class Parsed:
    """A finished job: the cache id (None for the warm-up) and the ``cpt parse`` JSON record."""

    id: str | None
    record: dict[str, Any]


@dataclass
class Readiness:
    ready: bool = False
    error: str | None = None
    event: threading.Event = field(default_factory=threading.Event)


class ParseService:
    """Everything a request needs; ``start``/``close`` run the threads (the app's lifespan)."""

    def __init__(self, parser: Parser, config: ServeConfig | None = None) -> None:
        self.config = config if config is not None else ServeConfig()
        self.parser = parser
        plan = plan_threads(self.config.workers)
        self.refiners = Refiners(parser, with_slic_threads(parser.superpixels, plan.post_threads))
        self.metrics = Metrics()
        self.cache = ResultCache(self.config.cache_bytes)
        self.slots = Slots(self.config.max_queue)
        self.default_overlay = OverlayOptions(png_level=self.config.png_level)
        self.batcher: Batcher[Job, Detected, Parsed] = Batcher(
            self._detect, self._finish, max_batch=self.config.max_batch, max_wait_s=self.config.max_wait_ms / 1000.0,
            workers=self.config.workers, metrics=self.metrics, worker_init=lambda: init_worker(plan.post_threads),
        )
        self.readiness = Readiness()
        g = self.metrics.gauges
        g["queue_depth"] = ("Photos waiting for the model thread.", self.batcher.depth)
        g["requests_in_progress"] = ("Requests holding a --max-queue slot.", lambda: self.slots.used)
        g["cache_bytes"] = ("Estimated bytes of the result cache.", lambda: self.cache.nbytes)
        g["cache_entries"] = ("Results in the cache.", lambda: len(self.cache))
        g["cache_evictions"] = ("Results evicted from the cache so far.", lambda: self.cache.evictions)
        g["ready"] = ("1 once the warm-up inference has run.", lambda: float(self.readiness.ready))

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the threads, and the warm-up on its own thread (``/readyz`` waits for it)."""
        self.batcher.start()
        if self.config.warmup:
            threading.Thread(target=self.warm_up, name="cpt-warmup", daemon=True).start()
        else:
            self._set_ready(None)

    def close(self) -> None:
        self.batcher.close()

    def warm_up(self) -> None:
        """Parse one synthetic photo (RGB uint8 [256, 192, 3]) through the whole pipeline."""
        try:
            rng = np.random.default_rng(0)
            image = rng.integers(0, 256, (256, 192, 3), dtype=np.uint8)
            opts = ParseOptions(no_superpixel=self.refiners.backend is None)
            job = Job(image, 0.0, "warm-up", opts, self.refiners.get(opts), warmup=True)
            self.batcher.submit(job).result()
            self._set_ready(None)
            log.info("warm-up done: ready")
        except Exception as exc:  # reported by /readyz; the server keeps answering
            log.exception("warm-up failed")
            self._set_ready(f"warm-up failed: {type(exc).__name__}: {exc}")

    def _set_ready(self, error: str | None) -> None:
        self.readiness.ready = error is None
        self.readiness.error = error
        self.readiness.event.set()

    # -- the two halves run by the batcher ----------------------------------------------------
    def _detect(self, jobs: list[Job]) -> list[Detected]:
        return self.parser.detect_batch([j.image for j in jobs], [j.decode_s for j in jobs])

    def _finish(self, job: Job, detected: Detected, waited: float) -> Parsed:
        with numba_guard():
            result = job.refiner.refine(job.image, filter_detected(detected, job.options))
        enc = encode_result(result, job.image, job.source, self.default_overlay)
        self.metrics.observe_stages({**result.timings, "queue_wait": waited})
        if job.warmup:
            return Parsed(None, enc.record)
        boxes = [list(it["mask_box"]) for it in enc.record["items"]]
        entry = CachedResult(result, job.image, enc.labels_png, boxes, {self.default_overlay: enc.overlay_png})
        return Parsed(self.cache.put(entry), enc.record)

    # -- re-rendering -------------------------------------------------------------------------
    def overlay_png(self, key: str, entry: CachedResult, options: OverlayOptions) -> bytes:
        """The overlay PNG of a cached result for ``options`` (``render_view``; no model runs)."""
        png = entry.overlays.get(options)
        if png is not None:
            return png
        rgb = render_view(entry.result, entry.image, options, item_boxes=entry.item_boxes)
        png = rgb_png(rgb, options.png_level)
        self.cache.add_overlay(key, options, png)
        return png
