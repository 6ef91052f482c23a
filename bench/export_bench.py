"""Export speed benchmark: ONNX Runtime CPU (fp32 and int8 QDQ) vs PyTorch eager.

    python -m clothparse.bench.export_bench [--height 800 --width 1024 --runs 5 --threads 2]

For ResNet-50-FPN and ResNet-101-FPN Mask R-CNN (random init, last BN of each bottleneck
scaled down so proposals exist; score threshold 0.05 so the top-100 is full, as in the
stock figures): export the static-shape wrapper, quantise it, and time in the same
process, batch 1, median of ``--runs`` after one warm-up: torchvision eager
``model([image])`` (stock inference, masks pasted), the eager wrapper, ORT fp32, ORT
int8. The int8 accuracy change is measured against fp32 detections (class + IoU > 0.5)
on synthetic images. A trained model in runs/small_synth is used too when present.
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


def _random_model(backbone: str) -> tuple[Any, list[str]]:
    from torchvision.models.resnet import Bottleneck

    from clothparse.config import ModelConfig
    from clothparse.model.builder import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, score_thresh=0.05)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for m in model.backbone.body.modules():
            if isinstance(m, Bottleneck):
                m.bn3.weight.mul_(0.2)  # random-init activations otherwise explode (ANCHORS.md)
    return model, list(cfg.class_names)


def bench_model(name: str, model: Any, names: list[str], height: int, width: int, runs: int, threads: int, work: Path) -> dict[str, float | str]:
    import onnxruntime as ort
    from clothparse.export import parity
    from clothparse.export.onnx_export import export_onnx
    from clothparse.export.preprocess import prepare_batch
    from clothparse.export.quantize import quantize_int8
    from clothparse.export.wrapper import ExportWrapper

    wrapper = ExportWrapper(model, height, width, top_k=100)
    fp32 = work / f"{name}.onnx"
    export_onnx(wrapper, fp32, batch=1)
    calib = parity.sample_images(height, width, n=8, seed=1, with_photo=False)
    int8 = quantize_int8(fp32, work / f"{name}.int8.onnx", calib, 1, height, width)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s32 = ort.InferenceSession(str(fp32), opts, providers=["CPUExecutionProvider"])
    s8 = ort.InferenceSession(str(int8), opts, providers=["CPUExecutionProvider"])
    photo = parity.sample_images(height, width, n=1, seed=2, with_photo=False)[0]
    arr, _ = prepare_batch([photo], height, width)
    tensor = torch.from_numpy(arr[0]).float() / 255.0
    model.transform.min_size, model.transform.max_size = (height,), width  # no resize: same pixels for all

    def eager() -> object:
        with torch.inference_mode():
            return model([tensor])

    def eager_wrapper() -> object:
        with torch.inference_mode():
            return wrapper(torch.from_numpy(arr))

    t_eager = _median_time(eager, runs)
    t_wrap = _median_time(eager_wrapper, runs)
    t32 = _median_time(lambda: s32.run(None, {"images": arr}), runs)
    t8 = _median_time(lambda: s8.run(None, {"images": arr}), runs)
    evals = parity.batched(parity.sample_images(height, width, n=4, seed=3, with_photo=False), 1, height, width)
    ref = [d for a in evals for d in parity.runner_detections(lambda x: s32.run(None, {"images": x}), a, names)]
    q = [d for a in evals for d in parity.runner_detections(lambda x: s8.run(None, {"images": x}), a, names)]
    acc = parity.compare("int8 vs fp32", ref, q, min_iou=0.5)
    return {
        "model": name, "eager_s": t_eager, "eager_wrapper_s": t_wrap, "ort_fp32_s": t32, "ort_int8_s": t8,
        "int8_match@0.5": acc.match_rate, "int8_max_score_diff": acc.max_score_diff, "dets_fp32": acc.n_ref,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="resnet50,resnet101")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in args.models.split(","):
            model, names = _random_model(backbone)
            rows.append(bench_model(backbone, model, names, args.height, args.width, args.runs, args.threads, Path(tmp)))
            r = rows[-1]
            print(
                f"{r['model']:<10} {args.height}x{args.width} b1 threads={args.threads}: eager {r['eager_s']:.3f} s | "
                f"eager wrapper {r['eager_wrapper_s']:.3f} s | ORT fp32 {r['ort_fp32_s']:.3f} s "
                f"({float(r['ort_fp32_s']) / float(r['eager_s']):.2f}x eager) | ORT int8 {r['ort_int8_s']:.3f} s "
                f"({float(r['ort_int8_s']) / float(r['eager_s']):.2f}x) | int8 vs fp32: {float(r['int8_match@0.5']):.1%} of "
                f"{r['dets_fp32']} dets matched at IoU>0.5, max score diff {float(r['int8_max_score_diff']):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
