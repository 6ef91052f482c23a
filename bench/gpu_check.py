"""The GPU check: ``bash bench/gpu_check.sh OUTDIR`` (or ``python bench/gpu_check.py OUTDIR``).

Sections, each in its own subprocess with its own time budget (a crash or a timeout
loses only that section): ``env`` (GPU, versions, TensorRT / onnxruntime-gpu presence),
``model-resnet50`` / ``model-resnet101`` (torch eager fp32/fp16-autocast through
``TorchEngine`` vs the static-shape ``ExportWrapper`` eager and replayed as a CUDA graph,
fp32 and fp16, at 800x1024), ``compile-resnet50`` (``torch.compile`` of the wrapper, if it
compiles in its budget), ``fusion`` (the numba-cuda fusion kernels vs the CPU ``fuse`` on
the same inputs: identical arrays required, and their times) and ``suite`` (``cpt bench``
on the GPU: torch fp32/fp16, trt). Writes ``gpu_check.json`` and ``gpu_check.md`` into
OUTDIR after every section.

Without a CUDA device (or with ``--dry-run``) every path that does not need CUDA runs:
the model section on a tiny model on the CPU, the fusion kernels under the CUDA
simulator on a tiny input, and GPU-only measurements are marked "no CUDA device".
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NO_CUDA = "no CUDA device"
#: Section -> time budget in seconds (they share the 430 s that gpu_check.sh allows the sections).
BUDGETS: dict[str, int] = {"env": 40, "model-resnet50": 75, "model-resnet101": 85, "compile-resnet50": 100, "fusion": 45, "suite": 80}


def register_aliases() -> None:
    """Make ``clothparse.bench`` / ``clothparse.export`` importable from a plain checkout (no install)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import clothparse

    for name in ("bench", "export"):
        full = f"clothparse.{name}"
        if full in sys.modules:
            continue
        try:
            importlib.import_module(full)
            continue
        except ImportError:
            pass
        spec = importlib.util.spec_from_file_location(full, ROOT / name / "__init__.py", submodule_search_locations=[str(ROOT / name)])
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[full] = mod
        spec.loader.exec_module(mod)
        setattr(clothparse, name, mod)


def _guard(out: dict[str, Any], key: str, fn: Any) -> None:
    """out[key] = fn(), or {"status": "error", "error": ...}: one failure never loses the rest."""
    try:
        out[key] = fn()
    except Exception as exc:
        out[key] = {"status": "error", "error": " ".join(f"{type(exc).__name__}: {exc}".split())[:400]}


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def section_env(dry: bool) -> dict[str, Any]:
    from clothparse.bench.report import machine_info, versions

    out: dict[str, Any] = {"machine": machine_info(), "versions": versions(), "dry_run": dry}
    for mod in ("triton", "cupy", "numba_cuda", "tensorrt", "onnxruntime"):
        try:
            m = importlib.import_module(mod)
            out[mod] = getattr(m, "__version__", "installed")
        except Exception:
            out[mod] = None
    out["tensorrt_note"] = "TensorRT is installed" if out["tensorrt"] else "TensorRT is not installed: no trt rows were run"
    try:
        import onnxruntime as ort

        out["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        out["onnxruntime_providers"] = []
    out["cuda"] = _cuda() and not dry
    return out


def _stats(seconds: list[float], **extra: Any) -> dict[str, Any]:
    from clothparse.bench.timing import summarize

    return {"status": "ok", **summarize(seconds).to_dict(), **extra}


def section_model(backbone: str, checkpoint: str | None, dry: bool, repeat: int = 10) -> dict[str, Any]:
    import torch
    from clothparse.bench.inputs import load_images
    from clothparse.bench.models import load_torch_model, random_model
    from clothparse.bench.timing import cuda_event_times, time_fn
    from clothparse.export.wrapper import ExportWrapper

    from clothparse.contract.canvas import prepare_batch
    from clothparse.engines.torch_engine import TorchEngine, model_canvas

    cuda = _cuda() and not dry
    dev = torch.device("cuda" if cuda else "cpu")
    h, w = (800, 1024) if cuda else (128, 128)
    warm = 2 if cuda else 0
    if not cuda:
        backbone, repeat = "small", 1
    tm = load_torch_model(Path(checkpoint)) if checkpoint else random_model(backbone)
    model = tm.model.to(dev).eval()
    img = load_images(None, h, w, 1)[0][0].rgb
    timer = cuda_event_times if cuda else time_fn
    out: dict[str, Any] = {"model": tm.source, "size": f"{h}x{w}", "device": str(dev), "timer": "cuda events" if cuda else "perf_counter"}
    canvas = model_canvas(model, h, w)
    eng = TorchEngine(model, tm.class_names, dev, canvas=canvas)
    _guard(out, "eager_fp32", lambda: _stats(timer(lambda: eng.infer([img]), warm, repeat), detections=len(eng.infer([img])[0])))

    def eager16() -> dict[str, Any]:
        with torch.autocast("cuda", dtype=torch.float16):
            return _stats(timer(lambda: eng.infer([img]), 2, repeat))

    _guard(out, "eager_fp16", eager16 if cuda else lambda: {"status": NO_CUDA})
    wrapper = ExportWrapper(model, h, w).to(dev).eval()
    arr, sizes, _ = prepare_batch([img], canvas, 1)
    x, s = torch.from_numpy(arr).to(dev), torch.from_numpy(sizes).to(dev)

    def wrapped() -> dict[str, Any]:
        with torch.no_grad():
            return _stats(timer(lambda: wrapper(x, s), warm, repeat), detections=int(wrapper(x, s)[4][0]))

    _guard(out, "wrapper_eager_fp32", wrapped)
    for prec in ("fp32", "fp16"):
        _guard(out, f"wrapper_cuda_graph_{prec}", (lambda p=prec: _graph(wrapper, (x, s), p, repeat)) if cuda else lambda: {"status": NO_CUDA})
    return out


def _graph(wrapper: Any, inputs: tuple[Any, Any], prec: str, repeat: int) -> dict[str, Any]:
    """Capture the wrapper (inputs: images, image_sizes) as a CUDA graph (autocast fp16 inside
    for fp16); replay timing and parity with eager."""
    import contextlib

    import torch
    from clothparse.bench.timing import cuda_event_times

    ctx = (lambda: torch.autocast("cuda", dtype=torch.float16)) if prec == "fp16" else contextlib.nullcontext
    static_in = tuple(t.clone() for t in inputs)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad(), ctx():
        for _ in range(3):
            wrapper(*static_in)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    t0 = time.perf_counter()
    with torch.no_grad(), torch.cuda.graph(graph), ctx():
        outs = wrapper(*static_in)
    capture_s = time.perf_counter() - t0
    times = cuda_event_times(graph.replay, 3, repeat)
    with torch.no_grad(), ctx():
        ref = wrapper(*static_in)
    graph.replay()
    torch.cuda.synchronize()
    same_n = bool(torch.equal(ref[4], outs[4]))
    box_diff = float((ref[0].float() - outs[0].float()).abs().max()) if ref[0].numel() else 0.0
    return _stats(times, capture_s=round(capture_s, 3), parity_same_num_detections=same_n, parity_max_box_diff_px=box_diff)


def section_compile(backbone: str, checkpoint: str | None, dry: bool) -> dict[str, Any]:
    if dry or not _cuda():
        return {"status": NO_CUDA}
    import torch
    from clothparse.bench.inputs import load_images
    from clothparse.bench.models import load_torch_model, random_model
    from clothparse.bench.timing import cuda_event_times
    from clothparse.export.wrapper import ExportWrapper

    from clothparse.contract.canvas import prepare_batch
    from clothparse.engines.torch_engine import model_canvas

    h, w = 800, 1024
    tm = load_torch_model(Path(checkpoint)) if checkpoint else random_model(backbone)
    wrapper = ExportWrapper(tm.model.cuda().eval(), h, w).cuda().eval()
    arr, sizes, _ = prepare_batch([load_images(None, h, w, 1)[0][0].rgb], model_canvas(tm.model, h, w), 1)
    x, s = torch.from_numpy(arr).cuda(), torch.from_numpy(sizes).cuda()
    compiled = torch.compile(wrapper)
    with torch.no_grad():
        t0 = time.perf_counter()
        compiled(x, s)
        torch.cuda.synchronize()
        compile_s = time.perf_counter() - t0
        times = cuda_event_times(lambda: compiled(x, s), 2, 10)
    return _stats(times, model=tm.source, size=f"{h}x{w}", first_call_s=round(compile_s, 2))


def section_fusion(dry: bool) -> dict[str, Any]:
    """numba-cuda fusion kernels vs the CPU ``fuse`` on the same inputs (identical arrays required)."""
    import numpy as np
    from clothparse.bench import fusion_cuda as fc
    from clothparse.bench.timing import time_fn

    from clothparse.parse.fusion import fuse

    if fc.SIMULATOR or dry:
        image, labels, clothing, bodies = _tiny_fusion_input()
        res = fc.compare_with_cpu(image, labels, clothing, bodies)
        return {"status": f"simulator ({NO_CUDA})", "size": f"{image.shape[0]}x{image.shape[1]}", **res}
    from clothparse.bench.fusion_bench import make_input

    image, labels, clothing, bodies = make_input()
    res = fc.compare_with_cpu(image, labels, clothing, bodies)
    gpu = time_fn(lambda: fc.gpu_fusion_arrays(image, labels, clothing, bodies, 0.5), 2, 10)
    cpu = time_fn(lambda: fuse(image, labels, clothing, bodies), 2, 10)
    lut = np.zeros(int(labels.max()) + 1, np.uint8)
    look = time_fn(lambda: fc.gpu_lookup(labels, lut), 2, 10)
    return {
        "status": "ok", "size": f"{image.shape[0]}x{image.shape[1]}", **res,
        "gpu_pixel_kernels_incl_transfers": _stats(gpu), "gpu_lookup_incl_transfers": _stats(look), "cpu_fuse_whole": _stats(cpu),
    }


def _tiny_fusion_input() -> tuple[Any, Any, Any, Any]:
    import numpy as np

    from clothparse.engines.base import Detections
    from clothparse.parse.superpixels import get_backend

    rng = np.random.default_rng(0)
    h, w = 24, 32
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    labels = get_backend("skimage").segment(img, n_segments=12, compactness=10, sigma=1)

    def dets(n: int, ncls: int) -> Detections:
        b = rng.uniform(-5, 30, (n, 4)).astype(np.float32)
        b[:, 2:] = b[:, :2] + rng.uniform(2, 20, (n, 2))
        return Detections(b, rng.uniform(0, 1, n), rng.integers(1, ncls + 1, n), rng.uniform(0, 1, (n, 28, 28)), ())

    return img, labels, dets(3, 13), dets(1, 1)


def section_suite(out_dir: Path, dry: bool) -> dict[str, Any]:
    if dry or not _cuda():
        return {"status": NO_CUDA}
    from clothparse.bench.report import write_outputs
    from clothparse.bench.suite import SuiteConfig, run_suite

    cfg = SuiteConfig(
        engines=["torch", "trt"], precisions=["fp32", "fp16"], sizes=[(800, 1024)], backbone="resnet50",
        body_model="random", warmup=1, repeat=5, seed_repeat=1, out=out_dir / "suite", device="cuda",
    )
    report = run_suite(cfg, log=lambda m: print(m, file=sys.stderr))
    write_outputs(report, out_dir / "suite")
    return {"status": "ok", "rows": report["rows"], "baselines": report["baselines"], "notes": report["notes"]}


def run_section(name: str, out_dir: Path, checkpoint: str | None, dry: bool) -> dict[str, Any]:
    if name == "env":
        return section_env(dry)
    if name.startswith("model-"):
        if dry and name != "model-resnet50":
            return {"status": f"{NO_CUDA} (dry run: same code path as model-resnet50)"}
        return section_model(name.split("-", 1)[1], checkpoint, dry)
    if name.startswith("compile-"):
        return section_compile(name.split("-", 1)[1], checkpoint, dry)
    if name == "fusion":
        return section_fusion(dry)
    if name == "suite":
        return section_suite(out_dir, dry)
    raise ValueError(f"unknown section {name!r}")


def _in_subprocess(name: str, out_dir: Path, checkpoint: str | None, dry: bool, budget: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    frag = out_dir / f".{name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), str(out_dir), "--section", name]
    cmd += ["--checkpoint", checkpoint] if checkpoint else []
    cmd += ["--dry-run"] if dry else []
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, timeout=budget, capture_output=True, text=True, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "budget_s": round(budget)}
    if proc.returncode != 0 or not frag.exists():
        tail = " ".join(proc.stderr.split()[-60:])
        return {"status": "error", "returncode": proc.returncode, "stderr_tail": tail[-600:]}
    data: dict[str, Any] = json.loads(frag.read_text())
    frag.unlink()
    data["wall_s"] = round(time.perf_counter() - t0, 1)
    return data


def to_markdown(report: dict[str, Any]) -> str:
    env = report["sections"].get("env", {})
    gpu = (env.get("machine") or {}).get("gpu") or NO_CUDA
    lines = [f"# GPU check ({gpu})", "", f"- {env.get('tensorrt_note', 'TensorRT: unknown')}",
             f"- onnxruntime providers: {', '.join(env.get('onnxruntime_providers', []) or ['?'])}", ""]
    lines += ["| section | measurement | status | median ms | p90 ms | notes |", "|---|---|---|---|---|---|"]
    for sec, data in report["sections"].items():
        if sec in ("env", "suite") or not isinstance(data, dict):
            continue
        items = {k: v for k, v in data.items() if isinstance(v, dict) and "status" in v}
        if not items:
            items = {"-": data}
        for key, v in items.items():
            extra = {k: x for k, x in v.items() if k not in ("status", "median_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "mean_ms", "n")}
            med = f"{v['median_ms']:.2f}" if "median_ms" in v else ""
            p90 = f"{v['p90_ms']:.2f}" if "p90_ms" in v else ""
            note = "; ".join(f"{k}={x}" for k, x in extra.items() if not isinstance(x, dict | list))
            lines.append(f"| {sec} | {key} | {v.get('status')} | {med} | {p90} | {note} |")
    suite = report["sections"].get("suite", {})
    if suite.get("status") == "ok":
        lines += ["", "Suite rows (median ms per image):", ""]
        for r in suite["rows"]:
            if r.get("status") == "ok":
                st = ", ".join(f"{k} {v['median_ms']:.1f}" for k, v in r["stages"].items())
                lines.append(f"- {r['name']}: e2e {r['end_to_end']['median_ms']:.1f} ms; {st}")
            else:
                lines.append(f"- {r['name']}: skipped ({r.get('reason')})")
    else:
        lines += ["", f"Suite: {suite.get('status', 'not run')}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--section", default=None, help="Run one section in this process (used internally).")
    ap.add_argument("--checkpoint", default=None, help="A trained checkpoint instead of random-init models.")
    ap.add_argument("--dry-run", action="store_true", help="Behave as if there were no CUDA device.")
    ap.add_argument("--budget", type=float, default=450.0, help="Seconds for the whole run.")
    args = ap.parse_args(argv)
    register_aliases()
    from clothparse.io.atomic import write_json, write_text

    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.section:
        data = run_section(args.section, args.out_dir, args.checkpoint, args.dry_run)
        write_json(args.out_dir / f".{args.section}.json", data)
        return 0
    deadline = time.monotonic() + args.budget
    dry = args.dry_run or not _cuda()
    report: dict[str, Any] = {"format": "clothparse-gpu-check/1", "dry_run": dry, "sections": {}}
    for name, budget in BUDGETS.items():
        left = deadline - time.monotonic() - 5
        if left < 10:
            report["sections"][name] = {"status": "not run: total time budget spent"}
            continue
        print(f"[gpu_check] {name} (budget {min(budget, left):.0f} s)", file=sys.stderr)
        if dry and name != "fusion":
            section: dict[str, Any] = {}
            _guard(section, name, lambda n=name: run_section(n, args.out_dir, args.checkpoint, True))
            report["sections"][name] = section[name]
        else:
            env = {"NUMBA_ENABLE_CUDASIM": "1"} if dry else None
            report["sections"][name] = _in_subprocess(name, args.out_dir, args.checkpoint, dry, min(budget, left), env)
        write_json(args.out_dir / "gpu_check.json", report)
        write_text(args.out_dir / "gpu_check.md", to_markdown(report))
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
