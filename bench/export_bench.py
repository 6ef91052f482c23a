"""Export speed benchmark: ONNX Runtime CPU (fp32, fp16 mixed precision, int8 Q/DQ) vs
the torch engine, every engine on the same H x W canvas.

    python -m clothparse.bench.export_bench [--height 800 --width 1024 --runs 5 --threads 2]
        [--models resnet50,resnet101 | --models path/to/checkpoint]

Random-init models come from ``clothparse.bench.models.random_model`` (BN tamed, score
threshold 0 so the top-K is full); exports from the one exporter. Each engine is timed in
the same process, batch 1, ``engine.infer([photo])``, median of ``--runs`` after one
warm-up. fp16 and int8 are matched against fp32 at the score floor (engine-level parity).
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


def bench_model(name: str, tm: Any, height: int, width: int, runs: int, threads: int, work: Path) -> dict[str, float | str]:
    """Time one model: torch engine, ORT fp32 / fp16 / int8 exports, all on one H x W canvas."""
    from clothparse.bench.inputs import load_images
    from clothparse.bench.models import export_model
    from clothparse.export import parity

    from clothparse.engines.onnx_engine import OnnxEngine
    from clothparse.engines.torch_engine import TorchEngine, model_canvas

    photos = [im.rgb for im in load_images(None, height, width, 8)[0]]
    torch_eng = TorchEngine(tm.model, tm.class_names, "cpu", canvas=model_canvas(tm.model, height, width))
    row: dict[str, float | str] = {"model": name, "eager_s": _median_time(lambda: torch_eng.infer(photos[:1]), runs)}
    engines = {}
    for prec in ("fp32", "fp16", "int8"):
        path = export_model(tm, work, height, width, 1, "onnx", prec, photos)
        engines[prec] = OnnxEngine(path, device="cpu", threads=threads)
        eng = engines[prec]
        row[f"ort_{prec}_s"] = _median_time(lambda: eng.infer(photos[:1]), runs)  # noqa: B023 (called at once)
    floor = engines["fp32"].sidecar.score_floor
    for prec in ("fp16", "int8"):
        acc = parity.engine_parity(f"{prec} vs fp32", engines["fp32"], engines[prec], photos, floor, parity.REDUCED[prec])
        row[f"{prec}_match"], row[f"{prec}_max_score_diff"], row["dets_fp32"] = acc.match_rate, acc.max_score_diff, acc.n_ref
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="resnet50,resnet101", help="backbones (random init) or checkpoint paths")
    args = ap.parse_args()
    from clothparse.bench.models import load_torch_model, random_model

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.models.split(","):
            tm = load_torch_model(Path(spec)) if Path(spec).exists() else random_model(spec)
            rows.append(bench_model(spec, tm, args.height, args.width, args.runs, args.threads, Path(tmp)))
            r = rows[-1]
            e = float(r["eager_s"])
            print(
                f"{r['model']:<10} {args.height}x{args.width} b1 threads={args.threads}: torch {e:.3f} s | "
                + " | ".join(f"ORT {p} {float(r[f'ort_{p}_s']):.3f} s ({float(r[f'ort_{p}_s']) / e:.2f}x)" for p in ("fp32", "fp16", "int8"))
                + " | vs fp32 at the floor: "
                + ", ".join(f"{p} {float(r[f'{p}_match']):.1%} matched, max score diff {float(r[f'{p}_max_score_diff']):.3f}" for p in ("fp16", "int8"))
                + f" ({r['dets_fp32']} fp32 dets)",
                flush=True,
            )


if __name__ == "__main__":
    main()
