"""Throughput of `cpt parse --ray` with 1, 2, ... CPU actors against single-process `cpt parse`.

  python -m clothparse.bench.ray_throughput --model M [--body-model B] --n 100 --actors 1,2

Writes N synthetic JPEG photos (``--size``, ``clothparse.bench.parse_throughput.write_photos``)
into ``--work`` (default: a temporary folder, removed at the end), then on the same photos:

1. single process: the ``Parser`` that ``cpt parse`` builds, warmed up on one photo, then
   ``clothparse.parse.batch.run_batch`` (``--workers``, default ``DEFAULT_WORKERS``) -> photos/s;
2. Ray: a local instance (``--cpus``, default every core; started once, not timed), then for
   each ``--actors`` count ``clothparse.distributed.ray_parse.parse_on_ray`` into an empty
   folder, timed end to end -- actor start-up (each actor loads the models), reading,
   scheduling, parsing, writing, results_coco.json and the results manifest -> photos/s.

Before each timed run, a run on one photo per actor (into another folder) measures the fixed
start-up: a new actor pool (fresh processes importing torch, loading the models, loading
Numba's kernels) plus one photo each. Reported per actor count:

* photos/s end to end (N / wall), and steady photos/s: ``(N - actors) / (wall - start-up)``;
* Ray overhead per photo: ``(actors x wall - busy) / N`` where ``busy`` is the sum of every
  photo's stage timings (decode, models, superpixels, fusion, encode; from the results
  manifest): actor time not spent parsing -- start-up, idling, writing files, scheduling and
  transfers -- shared out over the photos; and ``wall - single`` per photo.

Options:
  --model PATH          clothing model (required); --body-model PATH (default: none)
  --engine KIND, --device DEV (default cpu), --score-thresh T
  --n N                 photos (default 100); --size HxW (default 1024x800); --distinct K (default 20)
  --actors LIST         comma-separated actor counts (default 1,2)
  --batch B             photos per engine call (default 1)
  --workers W           single-process post-model threads (default DEFAULT_WORKERS)
  --cpus N              CPUs of the local Ray instance (default: every core)
  --work DIR            folder for photos and outputs (kept)
  --json                print one final ``RESULT {json}`` line too
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _spec(args: argparse.Namespace) -> Any:
    from clothparse.distributed.actor import ParserSpec
    from clothparse.parse.build import EngineChoice
    from clothparse.parse.fusion_params import FusionParams
    from clothparse.parse.superpixels import SlicParams

    body = args.body_model if args.body_model is not None else Path("none")
    return ParserSpec(args.model, body, EngineChoice(args.engine, args.device), args.score_thresh, 0.5, "auto",
                      FusionParams(), SlicParams(), args.batch, True)


def single_rate(spec: Any, paths: list[Path], out: Path, workers: int | None) -> dict[str, float]:
    """Single-process ``cpt parse`` (``run_batch``) after one warm-up photo -> seconds and photos/s."""
    from clothparse.io.images import read_rgb
    from clothparse.parse.batch import run_batch

    parser = spec.build(0, spec.how.device)
    parser.parse(read_rgb(paths[0]))  # warm-up: Numba cache, engine start-up
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    summary = run_batch(parser, paths, out, batch=spec.batch, workers=workers)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "photos_s": len(paths) / wall, "ok": summary.count("ok")}


def ray_rate(spec: Any, paths: list[Path], out: Path, actors: int) -> dict[str, float]:
    """``parse_on_ray`` with ``actors`` CPU actors on the running Ray instance, timed end to end."""
    import pyarrow.parquet as pq

    from clothparse.distributed.ray_parse import RaySettings, parse_on_ray
    from clothparse.distributed.results import RESULTS_MANIFEST_NAME, TIMING_COLUMNS
    from clothparse.parse.outputs import OverlayOptions

    shutil.rmtree(out, ignore_errors=True)
    errors: list[str] = []
    t0 = time.perf_counter()
    summary = parse_on_ray([str(p) for p in paths], None, out, spec, OverlayOptions(), None,
                           RaySettings(actors=actors, gpus_per_actor=0), lambda e: errors.append(str(e)), quiet=True)
    wall = time.perf_counter() - t0
    rows = pq.read_table(out / RESULTS_MANIFEST_NAME).to_pylist()
    busy = sum(sum(r[c] or 0.0 for c in TIMING_COLUMNS) for r in rows) / 1000.0
    n = len(paths)
    return {"actors": actors, "wall_s": wall, "photos_s": n / wall, "ok": summary.count("ok"),
            "busy_s": busy, "overhead_ms_per_photo": (actors * wall - busy) / n * 1000.0, "errors": len(errors)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray
    from clothparse.bench.parse_throughput import write_photos
    from clothparse.bench.report import machine_info

    from clothparse.parse.threads import available_cores

    height, width = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cpt_ray_throughput_"))
    cpus = args.cpus or available_cores()
    try:
        paths = write_photos(work / "photos", args.n, height, width, args.distinct)
        spec = _spec(args)
        result: dict[str, Any] = {"machine": machine_info()["cpu"], "cpus": cpus, "n": args.n,
                                  "size": f"{height}x{width}", "batch": args.batch, "model": str(args.model),
                                  "body": args.body_model is not None}
        result["single"] = single_rate(spec, paths, work / "single", args.workers)
        t0 = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        result["ray_init_s"] = time.perf_counter() - t0
        try:
            result["ray"] = []
            for k in args.actors:
                startup = ray_rate(spec, paths[:k], work / f"start{k}", k)["wall_s"]
                row = ray_rate(spec, paths, work / f"ray{k}", k)
                row["startup_s"] = startup
                row["steady_photos_s"] = (args.n - k) / (row["wall_s"] - startup) if row["wall_s"] > startup else 0.0
                row["vs_single_ms_per_photo"] = (row["wall_s"] - result["single"]["wall_s"]) / args.n * 1000.0
                result["ray"].append(row)
        finally:
            ray.shutdown()
        return result
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def print_report(r: dict[str, Any]) -> None:
    s = r["single"]
    print(f"{r['machine']}, {r['cpus']} CPUs; {r['n']} photos {r['size']}, batch {r['batch']}, "
          f"{'with' if r['body'] else 'no'} body model; ray.init {r['ray_init_s']:.1f} s (not timed)")
    print("| path | photos/s | wall s | start-up s | steady photos/s | Ray overhead ms/photo | wall - single, ms/photo |")
    print("|---|---|---|---|---|---|---|")
    print(f"| cpt parse (single process, warm) | {s['photos_s']:.2f} | {s['wall_s']:.1f} | - | {s['photos_s']:.2f} | - | - |")
    for row in r["ray"]:
        print(f"| --ray --actors {row['actors']} | {row['photos_s']:.2f} | {row['wall_s']:.1f} | {row['startup_s']:.1f} | "
              f"{row['steady_photos_s']:.2f} | {row['overhead_ms_per_photo']:.0f} | {row['vs_single_ms_per_photo']:+.0f} |")


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--body-model", type=Path, default=None)
    ap.add_argument("--engine", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--score-thresh", type=float, default=None)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--size", default="1024x800")
    ap.add_argument("--distinct", type=int, default=20)
    ap.add_argument("--actors", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--cpus", type=int, default=None)
    ap.add_argument("--work", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.n < 1 or args.batch < 1 or args.distinct < 1 or any(k < 1 for k in args.actors):
        ap.error("--n, --batch, --distinct and --actors must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    result = run(args)
    print_report(result)
    if args.json:
        print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
