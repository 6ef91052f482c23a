"""The results ``cpt serve`` keeps so that the overlay views re-render without running a model.

``ResultCache`` is an LRU bounded in bytes: putting an entry evicts the least recently used
ones until the total fits (an entry larger than the whole budget is not kept at all). A
``get`` refreshes the entry. Sizes are estimated from the numpy arrays and PNG bytes an
entry holds (``entry_nbytes``), which dominate its memory. Thread-safe.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from clothparse.parse.views import OverlayOptions

if TYPE_CHECKING:
    from clothparse.parse.pipeline import ParseResult

#: Bytes counted per entry on top of its arrays and PNGs (the Python objects around them).
ENTRY_OVERHEAD = 4096


@dataclass
class CachedResult:
    """One parsed photo, kept for re-rendering.

    result: the ``ParseResult`` (label map uint8 [H, W], superpixels int32 [H, W] or None, ...).
    image: the decoded photo, RGB uint8 [H, W, 3].
    labels_png: the palette label PNG (``outputs.label_png``).
    item_boxes: each item's refined-mask xywh box (the record's ``mask_box``), where the
        parse view puts its captions.
    overlays: rendered overlay PNGs by options (the default view, made by ``encode_result``).
    """

    result: ParseResult
    image: np.ndarray
    labels_png: bytes
    item_boxes: list[list[int]]
    overlays: dict[OverlayOptions, bytes] = field(default_factory=dict)
    nbytes: int = 0


def _arrays_nbytes(obj: Any, depth: int = 0) -> int:
    """Bytes of the numpy arrays held by ``obj``, its dataclass fields and their fields (2 levels)."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, bytes | bytearray):
        return len(obj)
    if depth < 2 and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(_arrays_nbytes(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj))
    return 0


def entry_nbytes(entry: CachedResult) -> int:
    """The estimated memory of one entry: its arrays (photo, maps, detections, fusion) and PNGs."""
    return (
        ENTRY_OVERHEAD
        + _arrays_nbytes(entry.result)
        + int(entry.image.nbytes)
        + len(entry.labels_png)
        + sum(len(v) for v in entry.overlays.values())
    )


class ResultCache:
    """An LRU of ``CachedResult`` by id, at most ``capacity`` bytes in all."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0 bytes, got {capacity}")
        self.capacity = int(capacity)
        self._entries: OrderedDict[str, CachedResult] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, entry: CachedResult) -> str:
        """Keep ``entry`` (its ``nbytes`` is computed here); returns its new id (32 hex digits)."""
        entry.nbytes = entry_nbytes(entry)
        key = uuid.uuid4().hex
        if entry.nbytes > self.capacity:  # would evict everything and still not fit: not kept
            with self._lock:
                self.evictions += 1
            return key
        with self._lock:
            self._entries[key] = entry
            self.nbytes += entry.nbytes
            self._evict()
        return key

    def get(self, key: str) -> CachedResult | None:
        """The entry (now the most recently used), or None when unknown or evicted."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def add_overlay(self, key: str, options: OverlayOptions, png: bytes) -> None:
        """Keep a rendered overlay with its entry (counted in its bytes), if the entry is still here."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or options in entry.overlays:
                return
            entry.overlays[options] = png
            entry.nbytes += len(png)
            self.nbytes += len(png)
            self._evict()

    def _evict(self) -> None:
        while self.nbytes > self.capacity and self._entries:
            _, old = self._entries.popitem(last=False)
            self.nbytes -= old.nbytes
            self.evictions += 1
