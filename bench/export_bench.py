"""Export speed benchmark: the CPU engines against eager PyTorch, every engine on the same
H x W canvas: torch (eager), ONNX Runtime (fp32, fp16 mixed precision, int8 Q/DQ) and
OpenVINO (f32 and bf16 from the fp32 export, int8 from the Q/DQ export).

    python -m clothparse.bench.export_bench [--height 800 --width 1024 --runs 5 --threads 2]
        [--models resnet50,resnet101 | --models path/to/checkpoint] [--json OUT.json]

Random-init models come from ``clothparse.bench.models.random_model`` (BN tamed, score
threshold 0 so the top-K is full); exports from the one exporter. Each engine is timed in
the same process, batch 1, ``engine.infer([photo])``, median of ``--runs`` after one
warm-up, and reported with its ratio to eager. OpenVINO bf16 is a skipped column where the
CPU has no bfloat16 (OpenVINO would quietly run f32). Every reduced-precision engine is
matched against ONNX Runtime fp32 at the score floor (engine-level parity; on a random model
near-tied scores re-order, so these rates are about the graph, not about accuracy: accuracy
is ``clothparse.bench.precision_accuracy`` on a trained model).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def _median_time(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


#: (column, engine kind, export precision, openvino precision) in table order.
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("ort_fp32", "onnx", "fp32", ""),
    ("ort_fp16", "onnx", "fp16", ""),
    ("ort_int8", "onnx", "int8", ""),
    ("ov_f32", "openvino", "fp32", "f32"),
    ("ov_bf16", "openvino", "fp32", "bf16"),
    ("ov_int8", "openvino", "int8", "int8"),
)


def _open(kind: str, path: Path, ov_precision: str, threads: int) -> Any:
    if kind == "onnx":
        from clothparse.engines.onnx_engine import OnnxEngine

        return OnnxEngine(path, device="cpu", threads=threads)
    from clothparse.engines.openvino_engine import OpenVinoEngine

    return OpenVinoEngine(path, precision=ov_precision, threads=threads)


def bench_model(name: str, tm: Any, height: int, width: int, runs: int, threads: int, work: Path) -> dict[str, Any]:
    """Time one model: eager torch, then every column of ``COLUMNS`` on one H x W canvas.

    Returns {"model", "eager_s", "<col>_s" (or "<col>_skipped": reason), "<col>_match",
    "<col>_max_score_diff", "dets_fp32"}.
    """
    from clothparse.bench.inputs import load_images
    from clothparse.bench.models import export_model
    from clothparse.export import parity

    from clothparse.engines.openvino_engine import cpu_has_bf16
    from clothparse.engines.torch_engine import TorchEngine, model_canvas

    photos = [im.rgb for im in load_images(None, height, width, 8)[0]]
    torch_eng = TorchEngine(tm.model, tm.class_names, "cpu", canvas=model_canvas(tm.model, height, width))
    row: dict[str, Any] = {"model": name, "eager_s": _median_time(lambda: torch_eng.infer(photos[:1]), runs)}
    engines: dict[str, Any] = {}
    for col, kind, prec, ov_prec in COLUMNS:
        if ov_prec == "bf16" and not cpu_has_bf16():
            row[f"{col}_skipped"] = "no bfloat16 on this CPU"
            continue
        path = export_model(tm, work, height, width, 1, "onnx", prec, photos)
        eng = engines[col] = _open(kind, path, ov_prec, threads)
        row[f"{col}_s"] = _median_time(lambda: eng.infer(photos[:1]), runs)  # noqa: B023 (called at once)
    ref = engines["ort_fp32"]
    floor = ref.sidecar.score_floor
    for col, _, prec, ov_prec in COLUMNS[1:]:
        if col not in engines:
            continue
        tol = parity.REDUCED.get(prec, parity.FP32) if prec != "fp32" else parity.REDUCED.get(ov_prec, parity.FP32)
        acc = parity.engine_parity(f"{col} vs ort_fp32", ref, engines[col], photos, floor, tol)
        row[f"{col}_match"], row[f"{col}_max_score_diff"] = acc.match_rate, acc.max_score_diff
        row["dets_fp32"] = acc.n_ref
    return row


def format_rows(rows: list[dict[str, Any]], height: int, width: int, threads: int) -> str:
    """A markdown table: seconds per image and the ratio to eager, one row per model."""
    head = ["model", "eager", *(c for c, *_ in COLUMNS)]
    lines = [f"{height}x{width}, batch 1, {threads} threads, median seconds (ratio to eager)",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        e = float(r["eager_s"])
        cells = [str(r["model"]), f"{e:.3f}"]
        for col, *_ in COLUMNS:
            cells.append(f"{r[f'{col}_s']:.3f} ({r[f'{col}_s'] / e:.2f}x)" if f"{col}_s" in r else f"- ({r[f'{col}_skipped']})")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("agreement with ORT fp32 at the score floor (matched share, max score difference):")
    for r in rows:
        lines.append(f"  {r['model']} ({r.get('dets_fp32', 0)} fp32 detections): " + ", ".join(
            f"{c} {float(r[f'{c}_match']):.1%} / {float(r[f'{c}_max_score_diff']):.3f}"
            for c, *_ in COLUMNS[1:] if f"{c}_match" in r))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="resnet50,resnet101", help="backbones (random init) or checkpoint paths")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows and the machine here")
    args = ap.parse_args()
    from clothparse.bench.models import load_torch_model, random_model

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.models.split(","):
            tm = load_torch_model(Path(spec)) if Path(spec).exists() else random_model(spec)
            rows.append(bench_model(spec, tm, args.height, args.width, args.runs, args.threads, Path(tmp)))
            print(format_rows(rows[-1:], args.height, args.width, args.threads), flush=True)
    print(format_rows(rows, args.height, args.width, args.threads))
    if args.json is not None:
        from clothparse.bench.report import machine_info

        from clothparse.io.atomic import write_json

        write_json(args.json, {"machine": machine_info(), "height": args.height, "width": args.width,
                               "threads": args.threads, "runs": args.runs, "rows": rows})


if __name__ == "__main__":
    main()
