"""Accuracy of every CPU precision on a trained model: engine-level parity against the fp32
torch engine and COCO AP on a test split, one table.

    python -m clothparse.bench.precision_accuracy --model tests/assets/reference-small \\
        --data DATA --calib CALIB_DIR [--split test] [--work WORK] [--json OUT.json]

DATA is a dataset folder (``cpt data synth --n 800 --size 256 --seed 0`` is the reference
model's); CALIB_DIR holds the int8 calibration photos (e.g. 64 photos of the val split).
Rows: torch fp32 (the reference), ONNX Runtime fp32 and int8, OpenVINO f32 and int8, and
OpenVINO bf16 where the CPU has bfloat16. On a CPU without it, a ``torch bf16 (autocast)``
row stands in: PyTorch's CPU autocast runs convolutions and matrix products in bfloat16
with bfloat16 outputs, as OpenVINO's bf16 mode does, so its parity and AP are an estimate
of what bf16 costs, labelled as such (``parity.REDUCED["bf16"]`` cites it). Parity runs on
``parity.parity_photos`` at the score floor; AP with every detection above the floor.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from clothparse.engines.base import Detections


class AutocastEngine:
    """A torch engine run under ``torch.autocast("cpu", dtype=torch.bfloat16)``: an estimate
    of bf16 arithmetic on CPUs that cannot run OpenVINO's bf16."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.class_names = engine.class_names

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            out: list[Detections] = self.engine.infer(images)
        return out


def _engines(model: Path, work: Path, calib: list[np.ndarray], floor: float) -> list[tuple[str, str, Callable[[], Any]]]:
    """(row name, tolerance key, opener) for every row after the torch reference."""
    from clothparse.export.exporter import ExportSpec, derive_precision, export_onnx_model

    from clothparse.engines.onnx_engine import OnnxEngine
    from clothparse.engines.openvino_engine import OpenVinoEngine, cpu_has_bf16
    from clothparse.engines.torch_engine import TorchEngine
    from clothparse.model.checkpoint import load_checkpoint, resolve_checkpoint

    loaded = load_checkpoint(model)
    from clothparse.contract.sidecar import sidecar_path

    fp32 = work / "model.onnx"
    if not sidecar_path(fp32).exists():
        export_onnx_model(loaded.model, loaded.class_names, fp32, ExportSpec(), source=resolve_checkpoint(model)[0])
    int8 = work / "model.int8.onnx"
    if not sidecar_path(int8).exists():
        derive_precision(fp32, "int8", int8, calib)
    rows: list[tuple[str, str, Callable[[], Any]]] = [
        ("onnxruntime fp32", "fp32", lambda: OnnxEngine(fp32, device="cpu", score_thresh=floor)),
        ("onnxruntime int8", "int8", lambda: OnnxEngine(int8, device="cpu", score_thresh=floor)),
        ("openvino f32", "fp32", lambda: OpenVinoEngine(fp32, precision="f32", score_thresh=floor)),
        ("openvino int8", "int8", lambda: OpenVinoEngine(int8, score_thresh=floor)),
    ]
    if cpu_has_bf16():
        rows.append(("openvino bf16", "bf16", lambda: OpenVinoEngine(fp32, precision="bf16", score_thresh=floor)))
    else:
        rows.append(("torch bf16 (autocast, estimate)", "bf16",
                     lambda: AutocastEngine(TorchEngine(loaded.model, loaded.class_names, "cpu", score_thresh=floor))))
    return rows


def _ap(engine: Any, data: Path, split: str) -> dict[str, float]:
    from clothparse.evaluate.coco_eval import coco_evaluate, load_gt
    from clothparse.evaluate.predict import label_mapping, predict_coco
    from clothparse.evaluate.runner import select_images, split_annotation_path

    gt = load_gt(split_annotation_path(data, split))
    ids = select_images(gt, None)
    run = predict_coco(engine, gt, data / "images", ids, label_mapping(engine.class_names, gt))
    if run.failed:
        raise RuntimeError(f"{len(run.failed)} test images failed, e.g. {run.failed[0][1]}")
    metrics = coco_evaluate(gt, run.results, run.image_ids).to_dict()
    return {f"{kind}_{k}": float(metrics[kind][k]) for kind in ("bbox", "segm") for k in ("AP", "AP50")}


def measure(model: Path, data: Path, split: str, calib_dir: Path, work: Path) -> list[dict[str, Any]]:
    """One dict per row: name, parity figures against torch fp32, AP and its difference to torch's."""
    from clothparse.export import parity
    from clothparse.export.exporter import DEFAULT_SCORE_FLOOR

    from clothparse.engines.torch_engine import TorchEngine
    from clothparse.io.images import IMAGE_SUFFIXES, read_rgb

    calib = [read_rgb(p) for p in sorted(calib_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not calib:
        raise SystemExit(f"error: {calib_dir}: no calibration photos")
    work.mkdir(parents=True, exist_ok=True)
    floor = DEFAULT_SCORE_FLOOR
    reference = TorchEngine.from_checkpoint(model, device="cpu", score_thresh=floor)
    photos = parity.parity_photos(reference.canvas.max_size)
    rows: list[dict[str, Any]] = [{"name": "torch fp32 (reference)", **_ap(reference, data, split)}]
    for name, tol_key, open_engine in _engines(model, work, calib, floor):
        engine = open_engine()
        tol = parity.FP32 if tol_key == "fp32" else parity.REDUCED[tol_key]
        p = parity.engine_parity(f"{name} vs torch", reference, engine, photos, floor, tol)
        rows.append({
            "name": name, "precision": getattr(engine, "precision", tol_key), "parity_ok": p.ok,
            "compared": p.matched, "borderline": p.borderline, "match_rate": p.match_rate, "min_iou": p.min_iou,
            "max_score_diff": p.max_score_diff, "mask_diff": p.mask_diff, "problems": p.failures(),
            **_ap(engine, data, split),
        })
        print(format_rows(rows), flush=True)
    for r in rows[1:]:
        for k in ("bbox_AP", "segm_AP"):
            r[f"d_{k}"] = r[k] - rows[0][k]
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    head = "| engine | compared | match | min IoU | max score diff | mask px | parity | bbox AP | segm AP | Δ bbox AP | Δ segm AP |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    ref = rows[0]
    for r in rows:
        if "compared" not in r:
            lines.append(f"| {r['name']} | - | - | - | - | - | reference | {r['bbox_AP']:.4f} | {r['segm_AP']:.4f} | - | - |")
            continue
        lines.append(
            f"| {r['name']} | {r['compared']} | {r['match_rate']:.1%} | {r['min_iou']:.3f} | {r['max_score_diff']:.3g} | "
            f"{r['mask_diff']:.2%} | {'ok' if r['parity_ok'] else 'FAIL'} | {r['bbox_AP']:.4f} | {r['segm_AP']:.4f} | "
            f"{r['bbox_AP'] - ref['bbox_AP']:+.4f} | {r['segm_AP'] - ref['segm_AP']:+.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="checkpoint (run folder or .safetensors)")
    ap.add_argument("--data", type=Path, required=True, help="dataset folder with <split>.json and images/")
    ap.add_argument("--split", default="test")
    ap.add_argument("--calib", type=Path, required=True, help="folder of int8 calibration photos")
    ap.add_argument("--work", type=Path, default=Path("precision_accuracy"), help="exports are written (and reused) here")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = measure(args.model, args.data, args.split, args.calib, args.work)
    print(format_rows(rows))
    if args.json is not None:
        from clothparse.bench.report import machine_info

        from clothparse.io.atomic import write_json

        write_json(args.json, {"machine": machine_info(), "model": str(args.model), "split": args.split, "rows": rows})


if __name__ == "__main__":
    main()
