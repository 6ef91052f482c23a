"""Shared helpers of the parse tests: tiny random models saved as real checkpoints.

A random Mask R-CNN scores every box near 1/num_classes, so the tests set the score
threshold to 0.0 to make it produce detections.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clothparse.config import ModelConfig
from clothparse.model.builder import build_model
from clothparse.model.checkpoint import save_checkpoint


def tiny_config(class_names: list[str] | None = None, **overrides: object) -> ModelConfig:
    """The small backbone at 128-160 px, thresholds 0 so that random weights detect things."""
    kw: dict[str, object] = dict(
        score_thresh=0.0, min_size=128, max_size=160, detections_per_img=12
    )
    if class_names is not None:
        kw["class_names"] = class_names
    kw.update(overrides)
    return ModelConfig.small(**kw)


def save_tiny(
    path_stem: Path, class_names: list[str] | None = None, seed: int = 0, **overrides: object
) -> Path:
    """Build a random tiny model and save it as ``path_stem.safetensors`` + ``.json``."""
    torch.manual_seed(seed)
    cfg = tiny_config(class_names, **overrides)
    model = build_model(cfg, init="none").eval()
    return save_checkpoint(path_stem, model, cfg, {"note": "random test model"})


def synthetic_photo(h: int = 160, w: int = 120, seed: int = 0) -> np.ndarray:
    """RGB uint8 [h, w, 3]: a skin-toned figure with a coloured top and trousers on grey."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 200, np.uint8)
    img[:] = img + rng.integers(0, 8, (h, w, 3), dtype=np.uint8)
    cx = w // 2
    img[int(0.05 * h) : int(0.2 * h), cx - w // 10 : cx + w // 10] = (224, 172, 140)  # head (skin)
    img[int(0.2 * h) : int(0.55 * h), cx - w // 4 : cx + w // 4] = (200, 30, 40)  # top
    img[int(0.55 * h) : int(0.95 * h), cx - w // 5 : cx + w // 5] = (30, 40, 120)  # trousers
    return img
