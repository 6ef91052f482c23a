"""Parity of an exported model against the PyTorch wrapper, and of the wrapper against
torchvision's own inference: detections matched by class and box IoU, masks compared
after binarisation at 0.5. ``cpt export`` runs this after every export.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from clothparse.export.preprocess import outputs_to_detections
from torchvision.models.detection.image_list import ImageList

from clothparse.engines.base import Detections

#: Pass criteria of the issue: >= 99% of detections matched at IoU > 0.99, < 0.1% mask pixels differ.
MIN_MATCH_RATE = 0.99
MIN_IOU = 0.99
MAX_MASK_DIFF = 0.001


@dataclass
class ParityRow:
    """One comparison (e.g. "onnxruntime vs wrapper, batch 2, synthetic")."""

    name: str
    n_ref: int
    n_test: int
    matched: int
    min_iou: float
    max_box_dev: float
    max_score_diff: float
    mask_diff: float  # fraction of binarised mask pixels that differ, over matched pairs

    @property
    def match_rate(self) -> float:
        denom = max(self.n_ref, self.n_test)
        return 1.0 if denom == 0 else self.matched / denom

    @property
    def ok(self) -> bool:
        return self.match_rate >= MIN_MATCH_RATE and self.mask_diff < MAX_MASK_DIFF


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [4] against b [N, 4] (xyxy)."""
    xx1, yy1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    xx2, yy2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), (np.abs(b - a).max(1) == 0).astype(float))


def compare(name: str, refs: Sequence[Detections], tests: Sequence[Detections], min_iou: float = MIN_IOU) -> ParityRow:
    """Greedily match each reference detection (score order) to the best unmatched test detection."""
    row = ParityRow(name, 0, 0, 0, 1.0, 0.0, 0.0, 0.0)
    diff_px = total_px = 0
    for ref, test in zip(refs, tests, strict=True):
        row.n_ref += len(ref)
        row.n_test += len(test)
        used = np.zeros(len(test), bool)
        for i in np.argsort(-ref.scores, kind="stable"):
            cand = (~used) & (test.classes == ref.classes[i])
            if not cand.any():
                continue
            ious = np.where(cand, _iou(ref.boxes[i], test.boxes) if len(test) else 0.0, -1.0)
            j = int(np.argmax(ious))
            if ious[j] <= min_iou:
                continue
            used[j] = True
            row.matched += 1
            row.min_iou = min(row.min_iou, float(ious[j]))
            row.max_box_dev = max(row.max_box_dev, float(np.abs(ref.boxes[i] - test.boxes[j]).max()))
            row.max_score_diff = max(row.max_score_diff, float(abs(ref.scores[i] - test.scores[j])))
            diff_px += int(((ref.masks[i] > 0.5) != (test.masks[j] > 0.5)).sum())
            total_px += ref.masks[i].size
    row.mask_diff = diff_px / total_px if total_px else 0.0
    return row


def wrapper_detections(wrapper: torch.nn.Module, images: np.ndarray, class_names: Sequence[str]) -> list[Detections]:
    """Run the PyTorch wrapper on uint8 [B, 3, H, W]; detections in canvas pixels."""
    with torch.inference_mode():
        outs = [t.numpy() for t in wrapper(torch.from_numpy(images))]
    return outputs_to_detections(outs, None, class_names)


def torchvision_detections(model: Any, images: np.ndarray, class_names: Sequence[str], top_k: int) -> list[Detections]:
    """torchvision's own inference (transform.normalize -> backbone -> rpn -> roi_heads) on
    uint8 [B, 3, H, W] at the export size, i.e. without its resize (the canvas already has
    the export size) and without mask pasting; the first ``top_k`` detections per image."""
    model = model.eval()
    with torch.inference_mode():
        x = torch.from_numpy(images).float() / 255.0
        x = model.transform.normalize(x)
        image_list = ImageList(x, [(int(x.shape[-2]), int(x.shape[-1]))] * int(x.shape[0]))
        feats = model.backbone(x)
        proposals, _ = model.rpn(image_list, feats)
        dets, _ = model.roi_heads(feats, proposals, image_list.image_sizes)
    return [
        Detections(
            d["boxes"][:top_k].numpy(), d["scores"][:top_k].numpy(), d["labels"][:top_k].numpy(),
            d["masks"][:top_k].numpy(), tuple(class_names),
        )
        for d in dets
    ]


def runner_detections(run: Callable[[np.ndarray], Sequence[np.ndarray]], images: np.ndarray, class_names: Sequence[str]) -> list[Detections]:
    """Detections from any runner mapping uint8 [B, 3, H, W] to the five export outputs."""
    return outputs_to_detections(list(run(images)), None, class_names)


def format_table(rows: Sequence[ParityRow]) -> str:
    """A short fixed-width table, one line per comparison."""
    head = f"{'comparison':<40} {'ref':>5} {'test':>5} {'match':>7} {'minIoU':>8} {'box dev':>8} {'score d':>8} {'mask px':>9}  ok"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.name:<40} {r.n_ref:>5} {r.n_test:>5} {r.match_rate:>7.2%} {r.min_iou:>8.5f} "
            f"{r.max_box_dev:>8.4f} {r.max_score_diff:>8.2e} {r.mask_diff:>9.5%}  {'yes' if r.ok else 'NO'}"
        )
    return "\n".join(lines)


def sample_images(height: int, width: int, n: int = 2, seed: int = 0, with_photo: bool = True) -> list[np.ndarray]:
    """Test photos, RGB uint8 [h, w, 3]: smooth synthetic scenes with coloured blobs, plus
    matplotlib's ``grace_hopper.jpg`` when matplotlib is installed and ``with_photo``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = int(height * rng.uniform(0.7, 1.0)), int(width * rng.uniform(0.7, 1.0))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.stack([xx / w, yy / h, 1 - xx / w], -1) * 160 + 40
        for _ in range(6):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.08, 0.3) * min(h, w)
            blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < r**2
            img[blob] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 8, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    if with_photo:
        try:
            from matplotlib import cbook
            from PIL import Image

            path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
            with Image.open(str(path)) as im:
                out.append(np.asarray(im.convert("RGB")))
        except (ImportError, OSError):
            pass
    return out


def batched(images: Sequence[np.ndarray], batch: int, height: int, width: int) -> list[np.ndarray]:
    """Photos -> letterboxed uint8 [batch, 3, H, W] arrays (the last one filled with padding images)."""
    from clothparse.export.preprocess import prepare_batch

    return [prepare_batch(images[i : i + batch], height, width, batch=batch)[0] for i in range(0, len(images), batch)]


def parity_rows(
    label: str,
    model: Any,
    wrapper: torch.nn.Module,
    run: Callable[[np.ndarray], Sequence[np.ndarray]] | None,
    batches: Sequence[np.ndarray],
    class_names: Sequence[str],
    top_k: int,
    check_torchvision: bool = True,
) -> list[ParityRow]:
    """Rows "wrapper vs torchvision" and "<label> vs wrapper" over ``batches`` (uint8 NCHW)."""
    ref_tv: list[Detections] = []
    ref_w: list[Detections] = []
    test: list[Detections] = []
    for arr in batches:
        w = wrapper_detections(wrapper, arr, class_names)
        ref_w += w
        if check_torchvision:
            ref_tv += torchvision_detections(model, arr, class_names, top_k)
        if run is not None:
            test += runner_detections(run, arr, class_names)
    b = int(batches[0].shape[0]) if batches else 0
    rows = []
    if check_torchvision:
        rows.append(compare(f"wrapper vs torchvision (batch {b})", ref_tv, ref_w))
    if run is not None:
        rows.append(compare(f"{label} vs wrapper (batch {b})", ref_w, test))
    return rows
