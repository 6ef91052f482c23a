"""The PyTorch engine: a torchvision Mask R-CNN run stage by stage on the contract's canvas.

Photos are prepared by ``clothparse.contract.canvas`` -- torchvision's resize rule, placed
top-left in the model's fixed canvas -- exactly as for the exported engines, so the torch
engine and every export see the same pixels and answer alike. The stages are torchvision's
own: ``transform.normalize`` -> ``backbone`` -> ``rpn`` -> ``roi_heads``, with each photo's
region in the canvas as ``image_sizes``. ``model(images)`` would end with
``transform.postprocess``, which pastes every 28x28 mask into an image-sized tensor (N
full-resolution masks); here only the boxes go back to the photo and the masks come out
exactly as the mask head gives them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.ops.poolers import initLevelMapper

from clothparse.contract.canvas import STRIDE, CanvasSpec, boxes_to_photo, prepare_batch
from clothparse.device import resolve_device
from clothparse.engines.base import Detections, TensorSpec
from clothparse.errors import ConfigError, ModelError

#: Below a threshold t, torchvision keeps ``score > t``; the engines keep ``score >= t``
#: (``clothparse.engines.raw``). Running roi_heads just below t and filtering at t gives
#: the same items as an export filtered at t.
_BELOW = np.float32(-np.inf)


def _mask_size(model: Any) -> int:
    """Side of the mask head's output: twice the mask RoI pool size (28 for torchvision)."""
    pool = getattr(model.roi_heads, "mask_roi_pool", None)
    size = getattr(pool, "output_size", (14, 14)) if pool is not None else (14, 14)
    side = size[0] if isinstance(size, list | tuple) else int(size)
    return 2 * int(side)


def model_canvas(model: Any, height: int | None = None, width: int | None = None) -> CanvasSpec:
    """The canvas of a torchvision detector: its transform's resize rule (``min_size[-1]``,
    ``max_size``, as at inference), square by default (``CanvasSpec.for_model``)."""
    t = model.transform
    return CanvasSpec.for_model(int(t.min_size[-1]), int(t.max_size), height, width)


def fix_pooler_scales(model: Any) -> None:
    """Set the RoI poolers' level scales (1 / each feature level's stride).

    torchvision infers them on the first call from that call's image sizes (height only)
    and caches them; a photo filling less than ~70 % of the canvas height would round to
    the wrong power of two. The scales are a property of the backbone's strides, so they
    are fixed here from one dummy pass over a small canvas-compatible input (its side a
    multiple of every stride, so feature side / input side is exactly 1 / stride).
    """
    heads = model.roi_heads
    poolers = [p for p in (heads.box_roi_pool, getattr(heads, "mask_roi_pool", None)) if p is not None]
    dev = next(model.parameters()).device
    side = 2 * STRIDE
    with torch.inference_mode():
        feats = model.backbone(torch.zeros(1, 3, side, side, device=dev))
    for pooler in poolers:
        scales = [2.0 ** round(math.log2(feats[n].shape[-2] / side)) for n in pooler.featmap_names]
        pooler.scales = scales
        pooler.map_levels = initLevelMapper(
            int(-math.log2(scales[0])), int(-math.log2(scales[-1])),
            canonical_scale=pooler.canonical_scale, canonical_level=pooler.canonical_level,
        )


class TorchEngine:
    """Run a torchvision Mask R-CNN (eval mode) on RGB uint8 photos, on the contract's canvas.

    ``class_names`` are the names of labels 1..C (from the checkpoint metadata).
    ``score_thresh``: keep detections scoring >= this (default: the model's own
    ``roi_heads.score_thresh``); applied before the per-image top-k, as in torchvision.
    ``canvas``: the fixed input size (default ``model_canvas(model)``); pass an export's
    ``sidecar.canvas`` to compare with that export.
    ``batch_size`` photos go through the network together (each on its own canvas).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        class_names: tuple[str, ...] | list[str],
        device: str | torch.device = "cpu",
        score_thresh: float | None = None,
        batch_size: int = 1,
        canvas: CanvasSpec | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        # Typed Any: torchvision's MaskRCNN attributes (transform, rpn, roi_heads) are untyped.
        self.model: Any = cast(Any, model)
        self.model.eval().to(self.device)  # in place for modules
        if getattr(self.model.roi_heads, "mask_head", None) is None:
            raise ModelError("the model has no mask head (need a Mask R-CNN)")
        self.class_names = tuple(class_names)
        self.batch_size = int(batch_size)
        self.canvas = canvas or model_canvas(self.model)
        fix_pooler_scales(self.model)
        self.score_thresh = float(self.model.roi_heads.score_thresh) if score_thresh is None else float(score_thresh)
        if not 0.0 <= self.score_thresh <= 1.0:
            raise ConfigError(f"score threshold must be in [0, 1], got {self.score_thresh}")
        self.mask_size = _mask_size(self.model)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "auto",
        score_thresh: float | None = None,
        batch_size: int = 1,
        canvas: CanvasSpec | None = None,
    ) -> TorchEngine:
        """Open a checkpoint (folder or ``.safetensors``); class names come from its metadata."""
        from clothparse.model.checkpoint import load_checkpoint

        dev = resolve_device(device)
        loaded = load_checkpoint(path, device=str(dev))
        return cls(loaded.model, tuple(loaded.config.class_names), dev, score_thresh, batch_size, canvas)

    @property
    def input_specs(self) -> list[TensorSpec]:
        c = self.canvas
        return [TensorSpec("images", (None, 3, c.height, c.width), "uint8"), TensorSpec("image_sizes", (None, 2), "int32")]

    @property
    def output_specs(self) -> list[TensorSpec]:
        m = self.mask_size
        return [
            TensorSpec("boxes", (None, 4), "float32"),
            TensorSpec("scores", (None,), "float32"),
            TensorSpec("classes", (None,), "int64"),
            TensorSpec("masks", (None, m, m), "float32"),
        ]

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """Detect on each RGB uint8 [H, W, 3] photo; one Detections per photo, photo pixels."""
        out: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            batch, sizes, placements = prepare_batch(chunk, self.canvas)
            dets = self.run_canvas(batch, sizes)
            for det, pl in zip(dets, placements, strict=True):
                det.boxes = boxes_to_photo(det.boxes, pl)
            out.extend(dets)
        return out

    def run_canvas(self, images: np.ndarray, image_sizes: np.ndarray) -> list[Detections]:
        """torchvision's stages on uint8 [B, 3, H, W] canvases with int32 [B, 2] photo sizes
        -> Detections in canvas pixels, scores >= ``score_thresh``."""
        model = self.model
        thresh = np.float32(self.score_thresh)
        heads = model.roi_heads
        with torch.inference_mode():
            x = torch.from_numpy(images).to(self.device).float().div_(255.0)
            x = model.transform.normalize(x)
            sizes = [(int(h), int(w)) for h, w in image_sizes]
            features = model.backbone(x)
            if isinstance(features, torch.Tensor):
                features = OrderedDict([("0", features)])
            proposals, _ = model.rpn(ImageList(x, sizes), features)
            saved = heads.score_thresh
            heads.score_thresh = float(np.nextafter(thresh, _BELOW))
            try:
                detections, _ = heads(features, proposals, sizes)
            finally:
                heads.score_thresh = saved
        return [
            Detections(
                d["boxes"].float().cpu().numpy(), d["scores"].float().cpu().numpy(), d["labels"].cpu().numpy(),
                d["masks"].float().cpu().numpy(), self.class_names,
            ).filter_score(float(thresh))
            for d in detections
        ]
