"""The parse pipeline: clothing detector + body detector + superpixels + fusion.

``Parser.parse(image)`` runs the stages of the seed (clothing segmentation, body
segmentation, object parsing, superpixel refinement) on one RGB photo and returns a
``ParseResult``. Engines are anything with the ``Engine`` interface (torch, ONNX
Runtime, TensorRT), so a new runtime plugs in without touching this module.

The work splits in two halves that can run on different threads: ``detect_batch`` (the
clothing and body engines, a batch at a time -> ``Detected``) and ``refine`` (SLIC
superpixels + fusion of one photo -> ``ParseResult``); ``parse``/``parse_batch`` run both.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clothparse.engines.base import Detections, Engine
from clothparse.errors import ConfigError
from clothparse.parse.paste import paste_mask
from clothparse.parse.superpixels import SlicParams
from clothparse.taxonomy import COCO_PERSON_NAME, MODANET_CLASSES

#: Stage names of ``ParseResult.timings`` (seconds), in pipeline order.
STAGES: tuple[str, ...] = ("decode", "clothing_model", "body_model", "superpixels", "fusion", "encode")


@dataclass
class ParseItem:
    """One clothing instance of a ``ParseResult``.

    index: row in ``result.clothing``; label: ModaNet class id 1-13; box: float32 [4]
    xyxy photo pixels; changed: whether the superpixel stage changed its mask (always
    False at pixel level).
    """

    index: int
    label: int
    name: str
    score: float
    box: np.ndarray
    changed: bool


@dataclass
class ParseResult:
    """Everything the pipeline knows about one photo.

    clothing:  Detections with classes as ModaNet ids 1-13 (``class_names`` = MODANET_CLASSES).
    body:      the kept person Detections (class ``person``, score >= the body threshold).
    label_map: uint8 [H, W], 0 background, 1-13 clothing, 14 skin/body.
    fusion:    the fusion result (per-superpixel votes and refined instances), None at pixel level.
    sp_labels: int32 [H, W] superpixel ids, None at pixel level.
    timings:   seconds per stage (keys from ``STAGES``).
    """

    height: int
    width: int
    clothing: Detections
    body: Detections
    label_map: np.ndarray
    fusion: Any | None
    sp_labels: np.ndarray | None
    mask_thresh: float = 0.5
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def items(self) -> list[ParseItem]:
        changed = self.fusion.changed if self.fusion is not None else np.zeros(len(self.clothing), bool)
        return [
            ParseItem(
                index=i,
                label=int(self.clothing.classes[i]),
                name=MODANET_CLASSES[int(self.clothing.classes[i]) - 1],
                score=float(self.clothing.scores[i]),
                box=self.clothing.boxes[i].copy(),
                changed=bool(changed[i]),
            )
            for i in range(len(self.clothing))
        ]

    def item_mask(self, i: int) -> np.ndarray:
        """bool [H, W]: instance ``i`` after refinement (its superpixels), or its pasted
        mask >= ``mask_thresh`` at pixel level. Built on demand, one at a time."""
        if self.fusion is not None:
            return np.asarray(self.fusion.instance_mask(i), dtype=bool)
        return self.pasted_mask(self.clothing, i)

    def body_mask(self, i: int) -> np.ndarray:
        """bool [H, W]: person ``i``'s pasted mask >= ``mask_thresh``."""
        return self.pasted_mask(self.body, i)

    def pasted_mask(self, dets: Detections, i: int) -> np.ndarray:
        prob = paste_mask(dets.masks[i], dets.boxes[i], (self.height, self.width))
        return prob >= np.float32(self.mask_thresh)


@dataclass
class Detected:
    """What the model half (``Parser.detect_batch``) knows about one photo.

    clothing: Detections with classes as ModaNet ids 1-13; body: the kept person Detections;
    timings: seconds so far (``decode``, ``clothing_model``, ``body_model``).
    """

    clothing: Detections
    body: Detections
    timings: dict[str, float] = field(default_factory=dict)


class Parser:
    """Compose the detectors, the superpixel backend and the fusion step.

    clothing: engine whose class names are ModaNet names (any order; they are mapped to ids).
    body:     engine with a ``person`` class (a COCO model or a ``--task body`` model), or
              None to parse without a body (nothing becomes skin/body; no growth).
    superpixels: a backend with ``segment(image, n_segments, compactness, sigma)``, or
              None for pixel-level parsing (the ``--no-superpixel`` ablation).
    params:   ``clothparse.parse.fusion.FusionParams`` (default: its defaults); its
              ``mask_thresh`` also binarises masks at pixel level and in the outputs.
    """

    def __init__(
        self,
        clothing: Engine,
        body: Engine | None = None,
        superpixels: Any | None = None,
        params: Any | None = None,
        slic: SlicParams | None = None,
        body_score_thresh: float = 0.5,
    ) -> None:
        from clothparse.parse.fusion import FusionParams

        self.clothing = clothing
        self.body = body
        self.superpixels = superpixels
        self.params = params if params is not None else FusionParams()
        self.slic = slic if slic is not None else SlicParams()
        if not 0.0 <= body_score_thresh <= 1.0:
            raise ConfigError(f"the body score threshold must be in [0, 1], got {body_score_thresh}")
        self.body_score_thresh = float(body_score_thresh)
        # One binarisation threshold for the fusion, the pixel level and the output masks.
        self.mask_thresh = float(self.params.mask_thresh)
        self._label_of = _modanet_lut(tuple(clothing.class_names))
        if body is not None and COCO_PERSON_NAME not in body.class_names:
            raise ConfigError(
                f"the body model has no '{COCO_PERSON_NAME}' class (its classes: {', '.join(body.class_names[:8])}...)"
            )

    def parse(self, image: np.ndarray, decode_s: float = 0.0) -> ParseResult:
        """Parse one RGB uint8 [H, W, 3] photo. ``decode_s``: time spent decoding it, for the record."""
        return self.parse_batch([image], [decode_s])[0]

    def parse_batch(self, images: Sequence[np.ndarray], decode_s: Sequence[float] | None = None) -> list[ParseResult]:
        """Parse several photos; the detectors see them as one batch (their time is split evenly).

        The same as ``detect_batch`` followed by ``refine`` on each photo, which is how
        ``clothparse.parse.stream`` runs the two halves on different threads.
        """
        images = list(images)
        return [self.refine(im, d) for im, d in zip(images, self.detect_batch(images, decode_s), strict=True)]

    def detect_batch(self, images: Sequence[np.ndarray], decode_s: Sequence[float] | None = None) -> list[Detected]:
        """The model half: both detectors on RGB uint8 [H, W, 3] photos, as one batch each.

        Returns one ``Detected`` per photo, in order; the engines chunk (or pad) the list to
        their own batch size. ``decode_s``: per-photo decode seconds, kept for the record.
        """
        images = list(images)
        if not images:
            return []
        for im in images:
            if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(f"expected RGB uint8 [H, W, 3] images, got {im.dtype} {im.shape}")
        n = len(images)
        t0 = time.perf_counter()
        clothing = [self._to_modanet(d) for d in self.clothing.infer(images)]
        t_cloth = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        if self.body is not None:
            bodies = [
                d.filter_class(COCO_PERSON_NAME).filter_score(self.body_score_thresh) for d in self.body.infer(images)
            ]
        else:
            bodies = [Detections.empty((COCO_PERSON_NAME,)) for _ in images]
        t_body = (time.perf_counter() - t0) / n if self.body is not None else 0.0
        decode = list(decode_s) if decode_s is not None else [0.0] * n
        return [
            Detected(c, b, {"decode": dt, "clothing_model": t_cloth, "body_model": t_body})
            for c, b, dt in zip(clothing, bodies, decode, strict=True)
        ]

    def refine(self, image: np.ndarray, detected: Detected) -> ParseResult:
        """The post-model half on one RGB uint8 [H, W, 3] photo: superpixels and fusion (or the
        pixel-level map). Reads ``detected`` and leaves it unchanged; safe to call from several
        threads at once: ``Parser`` holds no per-call state, the native SLIC keeps its buffers per
        thread, and ``clothparse.parse.threads.numba_guard`` covers Numba's one unsafe layer."""
        from clothparse.parse.fusion import fuse, pixel_level

        clothing, body = detected.clothing, detected.body
        timings = dict(detected.timings)
        h, w = image.shape[:2]
        fusion = None
        sp = None
        t0 = time.perf_counter()
        if self.superpixels is not None:
            sp = self.superpixels.segment(
                image, n_segments=self.slic.n_segments, compactness=self.slic.compactness, sigma=self.slic.sigma
            )
            timings["superpixels"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            fusion = fuse(image, sp, clothing, body, self.params)
            label_map = np.asarray(fusion.label_map, dtype=np.uint8)
        else:
            timings["superpixels"] = 0.0
            label_map = np.asarray(pixel_level((h, w), clothing, body, self.mask_thresh), dtype=np.uint8)
        timings["fusion"] = time.perf_counter() - t0
        return ParseResult(h, w, clothing, body, label_map, fusion, sp, self.mask_thresh, timings)

    def _to_modanet(self, dets: Detections) -> Detections:
        """Relabel the clothing engine's classes as ModaNet ids 1-13 (label maps use those ids)."""
        classes = self._label_of[dets.classes] if len(dets) else dets.classes
        return Detections(dets.boxes, dets.scores, classes, dets.masks, MODANET_CLASSES)


def _modanet_lut(class_names: tuple[str, ...]) -> np.ndarray:
    """int64 [C + 1]: engine label -> ModaNet id (index 0 unused). ConfigError for unknown names."""
    lut = np.zeros(len(class_names) + 1, np.int64)
    for i, name in enumerate(class_names):
        if name not in MODANET_CLASSES:
            raise ConfigError(
                f"the clothing model's class {name!r} is not a ModaNet class ({', '.join(MODANET_CLASSES)})"
            )
        lut[i + 1] = MODANET_CLASSES.index(name) + 1
    return lut
