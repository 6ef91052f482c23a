"""Engine-level parity: does an exported engine answer like the model it came from?

``engine_parity`` runs ``engine.infer(photos)`` of an exported engine and of the torch
engine on the same canvas, and matches their detections photo by photo: same class, box
IoU at least ``min_iou``, score within ``max_score_diff``, and binarised 28x28 masks
differing in at most ``max_mask_diff`` of their pixels. A detection scoring within
``max_score_diff`` of the threshold may legitimately sit on either side of it, so if it
has no partner it counts as borderline, not as a miss. A comparison that compared fewer
than ``min_compared`` detections fails: parity of two empty lists proves nothing.
``cpt export`` runs this after every export, on ``parity_photos``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from clothparse.engines.base import Detections, Engine


@dataclass(frozen=True)
class Tolerance:
    """Pass criteria of one comparison (see the module docstring)."""

    min_iou: float = 0.95
    max_score_diff: float = 0.01
    max_mask_diff: float = 0.01
    min_match_rate: float = 0.95
    min_compared: int = 10


#: fp32 exports: the same arithmetic up to kernel rounding (measured: BENCHMARKS.md). Matched
#: detections agree to ~1e-6 in score; what differs is the occasional weak detection whose
#: proposal won a tie (or near-tie, at float32 resolution) in the RPN's top-k or NMS that the
#: two runtimes break differently: on a 6-minute demo model and real photos, 235 of 241
#: matched (97.1 %, all unmatched scores < 0.2) while the PyTorch export wrapper matched the
#: torch engine 100 %. A wrong canvas or stale weights match 0 %.
FP32 = Tolerance()
#: Reduced precision against the torch engine, at the score floor. Measured on the reference
#: model (BENCHMARKS.md, issues 9 and 10; ``python -m clothparse.bench.precision_accuracy``):
#: fp16 in ONNX Runtime matched 100 % (min IoU 0.999, score diff 7e-4), also with fp16
#: activations emulated as TensorRT runs them (score diff 1.7e-3). int8 Q/DQ: ONNX Runtime
#: matched 98 % (min IoU 0.76, scores up to 0.14 apart, 3.6 % of mask pixels); OpenVINO on an
#: AVX2 CPU 97 % (min IoU 0.705, score diff 0.161, 4.2 %), its int8 kernels without VNNI
#: saturating 16-bit sums (OpenVINO's CPU device guide). bf16 (OpenVINO on CPUs with
#: bfloat16), estimated with PyTorch's CPU bf16 autocast: 93 % (min IoU 0.85, score diff 0.13,
#: 2.1 %), bbox/segm AP +0.002/+0.003. Not "the last digits": weak detections move, AP holds.
#: Each bound leaves room over those figures and still fails a broken graph (a wrong canvas,
#: swapped classes, scores shifted by 0.2: tests/test_parity.py, test_engine_agreement.py).
REDUCED: dict[str, Tolerance] = {
    "fp16": Tolerance(min_iou=0.9, max_score_diff=0.05, max_mask_diff=0.05, min_match_rate=0.95),
    "int8": Tolerance(min_iou=0.65, max_score_diff=0.18, max_mask_diff=0.1, min_match_rate=0.9),
    "bf16": Tolerance(min_iou=0.8, max_score_diff=0.18, max_mask_diff=0.05, min_match_rate=0.9),
}


@dataclass
class ParityRow:
    """One comparison, e.g. "onnxruntime fp32 vs torch, score >= 0.05, 9 photos"."""

    name: str
    thresh: float
    tol: Tolerance
    n_ref: int = 0
    n_test: int = 0
    matched: int = 0
    #: Unmatched detections scoring within the score tolerance of the threshold (both sides).
    borderline: int = 0
    #: Unmatched, confident detections of the reference / the test side.
    missed_ref: int = 0
    missed_test: int = 0
    min_iou: float = 1.0
    max_score_diff: float = 0.0
    mask_diff: float = 0.0  # fraction of binarised mask pixels that differ, over matched pairs
    problems: list[str] = field(default_factory=list)

    @property
    def match_rate(self) -> float:
        """Matched / (matched + the larger count of confident unmatched detections)."""
        denom = self.matched + max(self.missed_ref, self.missed_test)
        return 0.0 if denom == 0 else self.matched / denom

    @property
    def ok(self) -> bool:
        return not self.failures()

    def failures(self) -> list[str]:
        """Why this comparison fails (empty when it passes)."""
        t = self.tol
        out = []
        if self.matched < t.min_compared:
            out.append(f"compared only {self.matched} detections (need >= {t.min_compared})")
        if self.matched and self.match_rate < t.min_match_rate:
            out.append(f"match rate {self.match_rate:.1%} < {t.min_match_rate:.0%}")
        if self.max_score_diff > t.max_score_diff:
            out.append(f"score difference {self.max_score_diff:.3g} > {t.max_score_diff:g}")
        if self.mask_diff > t.max_mask_diff:
            out.append(f"mask pixels differ {self.mask_diff:.2%} > {t.max_mask_diff:.0%}")
        return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box a float [4] against boxes b float [N, 4] (xyxy); [N]."""
    xx1, yy1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    xx2, yy2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def compare(
    name: str, refs: Sequence[Detections], tests: Sequence[Detections], thresh: float, tol: Tolerance = FP32
) -> ParityRow:
    """Match each reference detection (score order) to the best unmatched test detection
    of its class; see the module docstring for what counts."""
    row = ParityRow(name, float(thresh), tol)
    diff_px = total_px = 0
    edge = thresh + tol.max_score_diff
    for ref, test in zip(refs, tests, strict=True):
        row.n_ref += len(ref)
        row.n_test += len(test)
        used = np.zeros(len(test), bool)
        for i in np.argsort(-ref.scores, kind="stable"):
            cand = (~used) & (test.classes == ref.classes[i])
            ious = np.where(cand, box_iou(ref.boxes[i], test.boxes), -1.0) if len(test) else np.zeros(0)
            j = int(np.argmax(ious)) if len(ious) else -1
            if j < 0 or ious[j] < tol.min_iou:
                near_ref = bool(ref.scores[i] < edge)
                row.borderline += near_ref
                row.missed_ref += not near_ref
                continue
            used[j] = True
            row.matched += 1
            row.min_iou = min(row.min_iou, float(ious[j]))
            row.max_score_diff = max(row.max_score_diff, float(abs(ref.scores[i] - test.scores[j])))
            diff_px += int(((ref.masks[i] > 0.5) != (test.masks[j] > 0.5)).sum())
            total_px += ref.masks[i].size
        near = test.scores[~used] < edge
        row.borderline += int(near.sum())
        row.missed_test += int((~near).sum())
    row.mask_diff = diff_px / total_px if total_px else 0.0
    return row


def engine_parity(
    name: str, reference: Engine, test: Engine, photos: Sequence[np.ndarray], thresh: float, tol: Tolerance = FP32
) -> ParityRow:
    """``compare`` of ``reference.infer`` and ``test.infer`` on the photos, filtered at ``thresh``.

    photos: RGB uint8 [h, w, 3] of any sizes. Both engines must have been opened with a
    score threshold at or below ``thresh``.
    """
    refs = [d.filter_score(thresh) for d in reference.infer(list(photos))]
    tests = [d.filter_score(thresh) for d in test.infer(list(photos))]
    return compare(name, refs, tests, thresh, tol)


def format_table(rows: Sequence[ParityRow]) -> str:
    """A fixed-width table, one line per comparison; failures are spelled out below it."""
    head = (
        f"{'comparison':<44} {'score>=':>7} {'ref':>5} {'test':>5} {'compared':>8} {'border':>6} "
        f"{'match':>7} {'min IoU':>7} {'score d':>8} {'mask px':>8}  ok"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.name:<44} {r.thresh:>7.3g} {r.n_ref:>5} {r.n_test:>5} {r.matched:>8} {r.borderline:>6} "
            f"{r.match_rate:>7.2%} {r.min_iou:>7.4f} {r.max_score_diff:>8.2e} {r.mask_diff:>8.3%}  "
            f"{'yes' if r.ok else 'NO'}"
        )
    for r in rows:
        for why in r.failures():
            lines.append(f"  {r.name}: {why}")
    return "\n".join(lines)


def skimage_photos() -> list[np.ndarray]:
    """Real photos that scikit-image (a dependency) ships, RGB uint8: astronaut (square,
    a person), a portrait crop of it, chelsea and coffee (landscape), rocket (portrait)."""
    from skimage import data

    astronaut = data.astronaut()
    return [astronaut, np.ascontiguousarray(astronaut[:, 110:390]), data.chelsea(), data.coffee(), data.rocket()]


def synthetic_photos(side: int, n: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Paper-doll scenes like the training data at three aspect ratios, RGB uint8: square
    (``side``), portrait (a 3:5 crop) and landscape (two scenes side by side), ``n`` each."""
    from clothparse.data.synth.scene import render_scene

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b = render_scene(rng, side).image, render_scene(rng, side).image
        cut = side // 5
        out += [a, np.ascontiguousarray(b[:, cut : side - cut]), np.concatenate([a, b], axis=1)]
    return out


def parity_photos(side: int, seed: int = 0) -> list[np.ndarray]:
    """The photos ``cpt export`` checks parity on: ``synthetic_photos`` at the model's scale
    plus ``skimage_photos``, every one of a size other than the canvas."""
    return synthetic_photos(side, seed=seed) + skimage_photos()


def export_parity(model: Any, paths: Sequence[Any], photos: Sequence[np.ndarray] | None = None) -> list[ParityRow]:
    """Parity rows of exported files (ONNX or TensorRT, with sidecars) against the torch
    engine of ``model`` on the same canvas: one row at the score floor (gated on
    ``min_compared``: the floor row sees every detection the graph returns) and one at the
    default run-time threshold when that is higher. ``photos`` default: ``parity_photos``.
    """
    from pathlib import Path

    from clothparse.contract.sidecar import load_sidecar
    from clothparse.engines.loader import open_engine
    from clothparse.engines.torch_engine import TorchEngine

    rows: list[ParityRow] = []
    for p in paths:
        path = Path(str(p))
        sc = load_sidecar(path)
        ref = TorchEngine(model, sc.class_names, "cpu", score_thresh=sc.score_floor, canvas=sc.canvas)
        test = open_engine(path, device="cpu", score_thresh=sc.score_floor)
        shots = list(photos) if photos is not None else parity_photos(sc.min_size)
        tol = FP32 if sc.precision == "fp32" else REDUCED[sc.precision]
        kind = "onnxruntime" if sc.runtime == "onnx" else "tensorrt"
        refs, tests = ref.infer(shots), test.infer(shots)
        if sc.keep_labels:  # a body export keeps only `person`
            refs = [d.select(np.isin(d.classes, sc.keep_labels)) for d in refs]
        label = f"{kind} {sc.precision} vs torch ({len(shots)} photos)"
        rows.append(compare(label, refs, tests, sc.score_floor, tol))
        if sc.score_thresh > sc.score_floor:
            t = sc.score_thresh
            # Detections above the default threshold are a subset of the floor row's; a photo
            # set with none above it still passes on the floor row, so no minimum here.
            rows.append(compare(label, [d.filter_score(t) for d in refs], [d.filter_score(t) for d in tests], t,
                                replace(tol, min_compared=0)))
    return rows
