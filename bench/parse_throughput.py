"""Throughput of `cpt parse` against the model alone, and its memory as the folder grows.

  python -m clothparse.bench.parse_throughput --model M [--body-model B] [--engine E] --n 50 [--batch B --workers W]

Writes N synthetic photos (JPEG quality 95, ``--size`` H x W, default 1024x800: ``--distinct``
scenes of ``clothparse.data.synth`` made by ``clothparse.bench.inputs``, repeated cyclically)
into ``--work`` (default: a temporary folder, removed at the end), opens the engines once, parses
one photo to warm up (Numba cache, engine start-up) and then, in the same process:

1. model only: ``Parser.detect_batch`` -- the clothing and body engines' ``infer`` -- on the
   first ``min(N, --model-n)`` photos, decoded beforehand, ``--batch`` at a time -> photos/s;
2. cpt parse: ``run_batch``, the command's own path (decoding, model, superpixels, fusion,
   encoding, atomic writes, results_coco.json) over all N photos, once per ``--workers``
   value -> photos/s and its ratio to the model-only rate;
3. the process's peak RSS (``resource.getrusage``).

With ``--memory 100,1000`` it runs itself once per count in a fresh process (cpt parse only,
first ``--workers`` value) and prints each run's peak RSS: equal peaks mean flat memory.

Options:
  --model PATH          clothing model: checkpoint folder/.safetensors, .onnx or .engine (required)
  --body-model PATH     body (person) model file; default: none (nothing becomes skin/body)
  --engine KIND         engine of both models (default: from each file's type)
  --device DEV          auto, cpu, cuda, cuda:N (default auto)
  --precision P         openvino engine: auto, f32, bf16, int8 (default auto)
  --score-thresh T      clothing score threshold (default: the model's own)
  --n N                 photos to parse (default 50)
  --batch B             photos per engine call (default: the model's own: an export's fixed batch, else 1)
  --workers LIST        comma-separated post-model thread counts to time; 0 = sequential
                        (default: clothparse.parse.threads.DEFAULT_WORKERS)
  --post-threads N      SLIC + Numba threads per worker (default: the thread plan's share)
  --engine-threads N    engine threads: torch intra-op, ONNX Runtime's or OpenVINO's (default: all cores)
  --superpixels NAME    auto, native or skimage (default auto)
  --size HxW            photo size (default 1024x800)
  --distinct K          different scenes among the N photos (default 20)
  --model-n N           photos for the model-only rate (default 50)
  --work DIR            folder for photos and outputs (kept)
  --memory LIST         e.g. 100,1000: peak RSS of cpt parse per photo count, each in a new process
  --skip-model          time cpt parse only (used by --memory)
  --result-json         print one final ``RESULT {json}`` line (used by --memory)
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from clothparse.parse.threads import (
    DEFAULT_WORKERS,
    ThreadPlan,
    available_cores,
    engine_threads,
    plan_threads,
)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def write_photos(folder: Path, n: int, height: int, width: int, distinct: int) -> list[Path]:
    """``n`` JPEG photos of ``height`` x ``width`` in ``folder``: ``distinct`` synthetic scenes, cycled."""
    from clothparse.bench.inputs import load_images

    images, _ = load_images(None, height, width, min(n, distinct), seed=0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"photo_{i:05d}.jpg"
        p.write_bytes(images[i % len(images)].jpeg)
        paths.append(p)
    return paths


def build_parser(args: argparse.Namespace, batch: int) -> Any:
    """The ``Parser`` as ``cpt parse`` builds it (``clothparse.parse.build``: ``--engine``,
    ``--precision``, ``--threads``); no body model unless ``--body-model``."""
    from clothparse.parse.build import EngineChoice
    from clothparse.parse.build import build_parser as build
    from clothparse.parse.fusion_params import FusionParams
    from clothparse.parse.superpixels import SlicParams

    how = EngineChoice(args.engine, args.device, args.precision, args.engine_threads)
    body = args.body_model if args.body_model is not None else Path("none")
    return build(args.model, body, how, args.score_thresh, 0.5, args.superpixels, FusionParams(), SlicParams(), batch, True)


def model_rate(parser: Any, paths: list[Path], batch: int) -> float:
    """Photos/s of both engines alone (``detect_batch``) on the decoded ``paths``."""
    from clothparse.io.images import read_rgb

    images = [read_rgb(p) for p in paths]
    t0 = time.perf_counter()
    for start in range(0, len(images), batch):
        parser.detect_batch(images[start : start + batch])
    return len(images) / (time.perf_counter() - t0)


def parse_rate(parser: Any, paths: list[Path], out: Path, batch: int, plan: ThreadPlan) -> tuple[float, int]:
    """(photos/s, photos parsed) of ``run_batch`` over ``paths`` into ``out`` with ``plan``."""
    from clothparse.parse.batch import run_batch

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    summary = run_batch(parser, paths, out, batch=batch, workers=plan)
    return len(paths) / (time.perf_counter() - t0), summary.count("ok")


def thread_plan(workers: int, post_threads: int | None, engine_threads: int) -> ThreadPlan:
    plan = plan_threads(workers)
    if workers == 0:
        return plan
    post = plan.post_threads if post_threads is None else post_threads
    return ThreadPlan(plan.workers, engine_threads or plan.engine, post)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from clothparse.bench.report import machine_info

    from clothparse.parse.batch import engine_batch

    height, width = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cpt_throughput_"))
    try:
        paths = write_photos(work / "photos", args.n, height, width, args.distinct)
        parser = build_parser(args, args.batch or 1)
        batch = args.batch or engine_batch(parser.clothing) or 1
        from clothparse.io.images import read_rgb

        parser.parse(read_rgb(paths[0]))  # warm-up: Numba cache, engine start-up
        rates: dict[str, Any] = {
            "machine": machine_info()["cpu"], "cores": available_cores(), "n": args.n, "size": f"{height}x{width}",
            "batch": batch, "engine": type(parser.clothing).__name__,
            "precision": getattr(parser.clothing, "precision", None), "body": args.body_model is not None,
        }
        if not args.skip_model:
            rates["model_photos_s"] = model_rate(parser, paths[: min(args.n, args.model_n)], batch)
        rates["parse"] = []
        for w in args.workers:
            plan = thread_plan(w, args.post_threads, args.engine_threads)
            rate, ok = parse_rate(parser, paths, work / "out", batch, plan)
            row = {"workers": w, "engine_threads": plan.engine, "post_threads": plan.post_threads, "photos_s": rate, "ok": ok}
            if "model_photos_s" in rates:
                row["ratio"] = rate / rates["model_photos_s"]
            rates["parse"].append(row)
        rates["peak_rss_mib"] = peak_rss_mib()
        return rates
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def print_report(r: dict[str, Any]) -> None:
    print(f"{r['machine']}, {r['cores']} cores; {r['n']} photos {r['size']}, batch {r['batch']}, {r['engine']}"
          f"{' + body model' if r['body'] else ', no body model'}")
    if "model_photos_s" in r:
        print(f"model only (clothing + body engines): {r['model_photos_s']:.2f} photos/s")
    print("| workers | engine threads | post threads | cpt parse photos/s | / model only |")
    print("|---|---|---|---|---|")
    for row in r["parse"]:
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else "-"
        print(f"| {row['workers']} | {row['engine_threads'] or 'default'} | {row['post_threads'] or 'default'} | {row['photos_s']:.2f} | {ratio} |")
    print(f"peak RSS: {r['peak_rss_mib']:.0f} MiB")


def memory_check(argv: list[str], counts: list[int]) -> None:
    """Run this benchmark once per photo count in a new process; print each peak RSS."""
    base = _without(argv, ("--memory", "--n", "--workers"))
    rows = []
    for n in counts:
        cmd = [sys.executable, "-m", "clothparse.bench.parse_throughput", *base, "--n", str(n),
               "--workers", str(_args(argv).workers[0]), "--skip-model", "--result-json"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if done.returncode or line is None:
            sys.exit(f"error: the run with --n {n} failed:\n{done.stderr[-2000:]}")
        r = json.loads(line[len("RESULT "):])
        rows.append((n, r["peak_rss_mib"], r["parse"][0]["photos_s"]))
    print("| photos | peak RSS MiB | cpt parse photos/s |")
    print("|---|---|---|")
    for n, rss, rate in rows:
        print(f"| {n} | {rss:.0f} | {rate:.2f} |")


def _without(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """``argv`` without the options ``names`` (each with its value)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in names:
            skip = True
        elif not a.startswith(tuple(f"{n}=" for n in names)):
            out.append(a)
    return out


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--body-model", type=Path, default=None)
    ap.add_argument("--engine", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--score-thresh", type=float, default=None)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--workers", type=lambda s: [int(v) for v in s.split(",")], default=[DEFAULT_WORKERS])
    ap.add_argument("--post-threads", type=int, default=None)
    ap.add_argument("--engine-threads", type=int, default=0)
    ap.add_argument("--superpixels", default="auto")
    ap.add_argument("--size", default="1024x800")
    ap.add_argument("--distinct", type=int, default=20)
    ap.add_argument("--model-n", type=int, default=50)
    ap.add_argument("--work", default=None)
    ap.add_argument("--memory", type=lambda s: [int(v) for v in s.split(",")], default=None)
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--result-json", action="store_true")
    args = ap.parse_args(argv)
    if args.n < 1 or args.model_n < 1 or args.distinct < 1 or (args.batch is not None and args.batch < 1):
        ap.error("--n, --model-n, --distinct and --batch must be >= 1")
    if any(w < 0 for w in args.workers):
        ap.error("--workers must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _args(argv)
    if args.memory:
        memory_check(argv, args.memory)
        return 0
    with engine_threads(args.engine_threads):
        result = run(args)
    print_report(result)
    if args.result_json:
        print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
