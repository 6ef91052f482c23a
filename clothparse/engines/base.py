"""The engine interface shared by the torch, ONNX Runtime and TensorRT runtimes.

An engine turns photos into ``Detections`` exactly as the mask head gives them:
masks stay 28x28 probabilities inside their boxes and are never pasted to full
resolution here (the fusion kernel pastes them on the fly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class Detections:
    """Detections of one image, in that image's pixel coordinates.

    boxes:   float32 [N, 4], (x1, y1, x2, y2) in original-image pixels (may extend past the image).
    scores:  float32 [N], in [0, 1].
    classes: int64 [N], 1-based label into ``class_names`` (label i -> class_names[i - 1]).
    masks:   float32 [N, M, M] (M = 28 for torchvision), mask-head probabilities in [0, 1],
             covering each box; paste with ``clothparse.parse.paste`` geometry.
    class_names: names of labels 1..C, from the model's metadata.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    masks: np.ndarray
    class_names: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.boxes = np.ascontiguousarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        n = self.boxes.shape[0]
        self.scores = np.ascontiguousarray(self.scores, dtype=np.float32).reshape(n)
        self.classes = np.ascontiguousarray(self.classes, dtype=np.int64).reshape(n)
        masks = np.ascontiguousarray(self.masks, dtype=np.float32)
        if masks.ndim == 4 and masks.shape[1] == 1:
            masks = masks[:, 0]
        if n == 0 and masks.size == 0:
            masks = masks.reshape(0, 28, 28) if masks.ndim != 3 else masks
        if masks.ndim != 3 or masks.shape[0] != n or masks.shape[1] != masks.shape[2]:
            raise ValueError(f"masks must be [N, M, M] with N={n}, got {masks.shape}")
        self.masks = masks
        self.class_names = tuple(self.class_names)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, class_names: tuple[str, ...] = (), mask_size: int = 28) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            np.zeros((0, mask_size, mask_size), np.float32),
            class_names,
        )

    def select(self, keep: np.ndarray) -> Detections:
        """A new Detections with the rows picked by a boolean mask or index array."""
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep], self.masks[keep], self.class_names)

    def filter_score(self, thresh: float) -> Detections:
        return self.select(self.scores >= thresh)

    def filter_class(self, name: str) -> Detections:
        """Keep only detections whose class name is ``name`` (e.g. ``person`` for a COCO body model)."""
        if name not in self.class_names:
            return self.select(np.zeros(len(self), dtype=bool))
        label = self.class_names.index(name) + 1
        return self.select(self.classes == label)


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (None = dynamic) and dtype of an engine input or output."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


@runtime_checkable
class Engine(Protocol):
    """What every engine offers. ``images`` are RGB uint8 [H, W, 3] arrays of any size."""

    class_names: tuple[str, ...]

    @property
    def input_specs(self) -> list[TensorSpec]: ...

    @property
    def output_specs(self) -> list[TensorSpec]: ...

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """Detect on each image; returns one Detections per image, in image coordinates."""
        ...
