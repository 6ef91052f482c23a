"""The PyTorch engine: a torchvision Mask R-CNN run stage by stage, masks left unpasted.

``model(images)`` would end with ``transform.postprocess``, which pastes every
28x28 mask into an image-sized tensor (N full-resolution masks, hundreds of MB for
large photos). This engine runs the same stages explicitly -- ``transform`` ->
``backbone`` -> ``rpn`` -> ``roi_heads`` -- and only rescales the boxes to the photo,
so the masks come out exactly as the mask head gives them.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torchvision.models.detection.transform import resize_boxes

from clothparse.device import resolve_device
from clothparse.engines.base import Detections, TensorSpec
from clothparse.errors import ConfigError, ModelError


def _mask_size(model: Any) -> int:
    """Side of the mask head's output: twice the mask RoI pool size (28 for torchvision)."""
    pool = getattr(model.roi_heads, "mask_roi_pool", None)
    size = getattr(pool, "output_size", (14, 14)) if pool is not None else (14, 14)
    side = size[0] if isinstance(size, list | tuple) else int(size)
    return 2 * int(side)


def image_to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """RGB uint8 [H, W, 3] -> float32 [3, H, W] in [0, 1] on ``device`` (normalisation is in the model)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    # torch warns on read-only arrays (PIL-backed ones are); a writable C copy only when needed.
    t = torch.from_numpy(np.require(image, requirements=["C", "W"])).to(device)
    return t.permute(2, 0, 1).float().div_(255.0)


class TorchEngine:
    """Run a torchvision Mask R-CNN (eval mode) on RGB uint8 photos.

    ``class_names`` are the names of labels 1..C (from the checkpoint metadata).
    ``score_thresh`` overrides the model's detection threshold (``roi_heads.score_thresh``;
    it is applied before the per-image top-k, so lowering it can surface more boxes).
    ``batch_size`` images go through the network together (padded by the model's transform).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        class_names: tuple[str, ...] | list[str],
        device: str | torch.device = "cpu",
        score_thresh: float | None = None,
        batch_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        # Typed Any: torchvision's MaskRCNN attributes (transform, rpn, roi_heads) are untyped.
        self.model: Any = cast(Any, model)
        self.model.eval().to(self.device)  # in place for modules
        self.class_names = tuple(class_names)
        self.batch_size = int(batch_size)
        if score_thresh is not None:
            if not 0.0 <= score_thresh <= 1.0:
                raise ConfigError(f"score threshold must be in [0, 1], got {score_thresh}")
            self.model.roi_heads.score_thresh = float(score_thresh)
        self.mask_size = _mask_size(self.model)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "auto",
        score_thresh: float | None = None,
        batch_size: int = 1,
    ) -> TorchEngine:
        """Open a checkpoint (folder or ``.safetensors``); class names come from its metadata."""
        from clothparse.model.checkpoint import load_checkpoint

        dev = resolve_device(device)
        loaded = load_checkpoint(path, device=str(dev))
        return cls(loaded.model, tuple(loaded.config.class_names), dev, score_thresh, batch_size)

    @property
    def score_thresh(self) -> float:
        return float(self.model.roi_heads.score_thresh)

    @property
    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec("image", (None, None, 3), "uint8")]

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
        """Detect on each RGB uint8 [H, W, 3] image; one Detections per image, photo coordinates."""
        out: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            out.extend(self._infer_batch(images[start : start + self.batch_size]))
        return out

    def _infer_batch(self, images: list[np.ndarray]) -> list[Detections]:
        model = self.model
        with torch.inference_mode():
            tensors = [image_to_tensor(im, self.device) for im in images]
            original_sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
            batch, _ = model.transform(tensors)
            features = model.backbone(batch.tensors)
            if isinstance(features, torch.Tensor):
                features = OrderedDict([("0", features)])
            proposals, _ = model.rpn(batch, features)
            detections, _ = model.roi_heads(features, proposals, batch.image_sizes)
            results: list[Detections] = []
            for det, resized, orig in zip(detections, batch.image_sizes, original_sizes, strict=True):
                boxes = resize_boxes(det["boxes"], list(resized), list(orig))
                masks = det.get("masks")
                if masks is None:
                    raise ModelError("the model has no mask head (need a Mask R-CNN)")
                results.append(
                    Detections(
                        boxes.float().cpu().numpy(),
                        det["scores"].float().cpu().numpy(),
                        det["labels"].cpu().numpy(),
                        masks.float().cpu().numpy(),
                        self.class_names,
                    )
                )
        return results
