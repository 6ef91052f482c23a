"""The raw outputs of an exported graph -> ``Detections`` in photo pixels, filtered at the
run-time score threshold. Shared by every runtime of exported models (ONNX Runtime,
TensorRT) and by the parity checks, so they all read the graph the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from clothparse.contract.canvas import Placement, boxes_to_photo, prepare_batch
from clothparse.contract.sidecar import Sidecar
from clothparse.engines.base import Detections
from clothparse.errors import ConfigError, ModelError


def io_shapes(sc: Sidecar) -> dict[str, tuple[int, ...]]:
    """Name -> static shape of every graph input and output that ``sc`` describes."""
    b, k, m = sc.batch, sc.top_k, sc.mask_size
    shapes = [(b, 3, sc.height, sc.width), (b, 2), (b, k, 4), (b, k), (b, k), (b, k, m, m), (b,)]
    return dict(zip([*sc.inputs, *sc.outputs], shapes, strict=True))


def check_io(got: dict[str, tuple[int, ...]], sc: Sidecar, path: str | Path) -> None:
    """ModelError naming every tensor whose name or static shape differs from what ``sc`` describes."""
    expected = io_shapes(sc)
    if got != expected:
        diff = "; ".join(f"{n}: {got.get(n)} vs {expected.get(n)}" for n in sorted(set(got) | set(expected)) if got.get(n) != expected.get(n))
        raise ModelError(f"model inputs/outputs do not match the sidecar ({diff}): re-export", path)


def infer_on_canvas(
    images: Sequence[np.ndarray],
    sc: Sidecar,
    run_raw: Callable[[np.ndarray, np.ndarray], Sequence[np.ndarray]],
    score_thresh: float,
) -> list[Detections]:
    """RGB uint8 [H, W, 3] photos -> one Detections per photo, in photo pixels, through an
    exported graph of fixed batch ``sc.batch``: chunks of photos on the contract's canvas
    (the last chunk padded), ``run_raw(uint8 [B,3,H,W], int32 [B,2])`` -> the five raw outputs."""
    out: list[Detections] = []
    for start in range(0, len(images), sc.batch):
        images_arr, sizes, placements = prepare_batch(list(images[start : start + sc.batch]), sc.canvas, batch=sc.batch)
        out.extend(outputs_to_detections(run_raw(images_arr, sizes), placements, sc.class_names, score_thresh))
    return out


def check_score_thresh(thresh: float, floor: float, path: str | Path | None = None) -> float:
    """``thresh`` as a float, or ConfigError when it is outside [floor, 1].

    The graph only keeps detections scoring above its floor, so a lower run-time
    threshold would silently return fewer detections than asked for.
    """
    thresh = float(thresh)
    if not 0.0 <= thresh <= 1.0:
        raise ConfigError(f"score threshold must be in [0, 1], got {thresh}", path)
    if thresh < floor:
        raise ConfigError(
            f"--score-thresh {thresh:g} is below this export's score floor {floor:g}: "
            f"re-export with `cpt export --score-floor {thresh:g}`",
            path,
        )
    return thresh


def outputs_to_detections(
    outputs: Sequence[np.ndarray],
    placements: Sequence[Placement] | None,
    class_names: Sequence[str],
    score_thresh: float = 0.0,
) -> list[Detections]:
    """Graph outputs (boxes, scores, classes, masks, num_detections) -> Detections per photo.

    outputs: float32 [B,K,4] canvas xyxy, float32 [B,K] in [0,1], int [B,K] 1-based,
    float [B,K,M,M] probabilities (fp16 graphs give float16; returned as float32), int [B].
    With ``placements`` the boxes go back to photo pixels (one per real photo; padding
    canvases of a fixed batch beyond ``len(placements)`` are dropped), else they stay in
    canvas pixels. Rows past num_detections and scoring below ``score_thresh`` are dropped.
    """
    boxes, scores, classes, masks, num = outputs
    count = len(placements) if placements is not None else int(boxes.shape[0])
    dets = []
    for i in range(count):
        n = int(num[i])
        s = np.asarray(scores[i, :n], np.float32)
        keep = s >= np.float32(score_thresh)
        b = np.asarray(boxes[i, :n], np.float32)[keep]
        if placements is not None:
            b = boxes_to_photo(b, placements[i])
        dets.append(Detections(b, s[keep], classes[i, :n][keep], np.asarray(masks[i, :n][keep], np.float32), tuple(class_names)))
    return dets
