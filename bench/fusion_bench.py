"""Benchmark of the fusion kernel: ``python -m clothparse.bench.fusion_bench``.

Input (fixed seed): a 1024x768 (W x H) synthetic photo of smooth colour blobs,
scikit-image SLIC with the seed's parameters (~900 superpixels), 100 clothing
detections whose boxes have log-uniform sides of 24-512 px centred on a person-sized
region (some reach past the image border), masks = smooth 28x28 blobs in [0, 1], and
2 body detections. Measures:

- ``fuse`` after JIT: median (and p90) of ``--runs`` calls;
- the first call in a fresh process, with an empty Numba cache (compile) and with the
  cache filled by the previous process (load only), each including ``import``;
- ``pixel_level`` (the ``--no-superpixel`` path), median;
- the seed's way (``clothparse.bench.seed_baseline``: torchvision full-resolution paste,
  regionprops, Python loops), median of ``--seed-runs``; the ratio to ``fuse``.

Prints a Markdown table. Thread count: Numba's default (all cores) unless
``NUMBA_NUM_THREADS`` is set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from clothparse.engines.base import Detections
from clothparse.io.atomic import write_json

H, W = 768, 1024


def make_input(seed: int = 0, n_det: int = 100, n_bodies: int = 2) -> tuple[np.ndarray, np.ndarray, Detections, Detections]:
    """(image uint8 [H, W, 3] RGB, SLIC labels int32 [H, W], clothing, bodies), deterministic."""
    from clothparse.parse.superpixels import get_backend

    rng = np.random.default_rng(seed)
    img = np.stack([gaussian_filter(rng.random((H // 8, W // 8)), 3) for _ in range(3)], axis=-1)
    img = (img - img.min()) / (np.ptp(img) + 1e-9)
    img = np.kron(img, np.ones((8, 8, 1)))[:H, :W] * 200 + rng.normal(0, 6, (H, W, 3))
    image = np.clip(img + 20, 0, 255).astype(np.uint8)
    labels = get_backend("skimage").segment(image)
    return image, labels, _detections(rng, n_det, 13), _detections(rng, n_bodies, 1, big=True)


def _detections(rng: np.random.Generator, n: int, n_classes: int, big: bool = False) -> Detections:
    lo, hi = (300.0, 700.0) if big else (24.0, 512.0)
    size = np.exp(rng.uniform(np.log(lo), np.log(hi), (n, 2)))
    centre = rng.normal([W / 2, H / 2], [W / 5, H / 5], (n, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], -100, W - 2)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], -100, H - 2)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    raw = np.stack([gaussian_filter(rng.normal(size=(28, 28)), 4) for _ in range(n)])
    masks = 1.0 / (1.0 + np.exp(-raw / (raw.std() + 1e-9) * 4 - 1))
    return Detections(boxes, rng.uniform(0.05, 1.0, n), rng.integers(1, n_classes + 1, n), masks)


def _timings(fn, runs: int) -> dict[str, float]:
    """Wall-clock median / p90 / min and process CPU time per call, all in ms."""
    times = []
    cpu0 = time.process_time()
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    cpu = (time.process_time() - cpu0) * 1e3 / runs
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90)), "min": float(np.min(times)), "cpu": cpu}


_CHILD = """
import sys, time, numpy as np
t0 = time.perf_counter()
from clothparse.engines.base import Detections
from clothparse.parse.fusion import fuse
z = np.load(sys.argv[1])
det = lambda p: Detections(z[p + 'b'], z[p + 's'], z[p + 'c'], z[p + 'm'])
c, b = det('c'), det('p')
t1 = time.perf_counter()
fuse(z['img'], z['lab'], c, b)
t2 = time.perf_counter()
fuse(z['img'], z['lab'], c, b)
t3 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
"""


def first_call_times(inputs: tuple[np.ndarray, np.ndarray, Detections, Detections]) -> dict[str, list[float]]:
    """{cold, warm}: [import ms, first fuse ms, second fuse ms] in fresh processes sharing a new cache dir."""
    image, labels, cl, bo = inputs
    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "in.npz"
        np.savez(npz, img=image, lab=labels, cb=cl.boxes, cs=cl.scores, cc=cl.classes, cm=cl.masks,
                 pb=bo.boxes, ps=bo.scores, pc=bo.classes, pm=bo.masks)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba_cache"))
        for name in ("cold", "warm"):
            res = subprocess.run([sys.executable, "-c", _CHILD, str(npz)], env=env, capture_output=True, text=True, check=True)
            out[name] = [float(v) for v in res.stdout.split()]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100, help="timed fuse calls (>= 50 for the report)")
    ap.add_argument("--seed-runs", type=int, default=3, help="timed runs of the seed baseline")
    ap.add_argument("--threads", default="1,2", help="comma-separated Numba thread counts to time fuse with")
    ap.add_argument("--no-subprocess", action="store_true", help="skip the fresh-process cache measurement")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON to this path")
    args = ap.parse_args(argv)

    import numba
    from clothparse.bench.seed_baseline import seed_parse

    from clothparse.parse.fusion import fuse, pixel_level

    load = os.getloadavg()[0]
    inputs = make_input()
    image, labels, cl, bo = inputs
    n_sp = int(labels.max()) + 1
    fuse(image, labels, cl, bo)  # JIT (or cache load)
    pixel_level(image.shape, cl, bo)
    rows = []
    fuse_medians: list[float] = []
    results: dict[str, object] = {"n_superpixels": n_sp, "loadavg_1min": load}
    for n_thr in [int(v) for v in args.threads.split(",")]:
        numba.set_num_threads(min(n_thr, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
        f = _timings(lambda: fuse(image, labels, cl, bo), args.runs)
        px = _timings(lambda: pixel_level(image.shape, cl, bo), max(10, args.runs // 5))
        results[f"fuse_{n_thr}t"], results[f"pixel_level_{n_thr}t"] = f, px
        fuse_medians.append(f["median"])
        rows.append((f"fuse, area vote, {n_thr} thread(s)", f"{f['median']:.2f} ms (p90 {f['p90']:.2f}, min {f['min']:.2f})",
                     f"median of {args.runs}; CPU {f['cpu']:.2f} ms/call"))
        rows.append((f"pixel_level (no superpixels), {n_thr} thread(s)", f"{px['median']:.2f} ms (min {px['min']:.2f})", "median"))
    best = min(fuse_medians)
    seed = _timings(lambda: seed_parse(image, labels, cl, bo), args.seed_runs)
    results["seed"] = seed
    rows.append(("seed way (torchvision paste + regionprops + Python loops)", f"{seed['median']:.0f} ms", f"median of {args.seed_runs}"))
    rows.append(("speed-up vs seed way (best fuse median)", f"{seed['median'] / best:.0f}x", ""))
    proc = None if args.no_subprocess else first_call_times(inputs)
    results["subprocess"] = proc
    if proc:
        for name, what in (("cold", "empty cache: compile"), ("warm", "cache from previous process")):
            imp, first, second = proc[name]
            rows.append((f"fresh process, {what}", f"first fuse {first:.0f} ms, second {second:.2f} ms", f"import {imp:.0f} ms"))
    print(f"\nFusion benchmark: {W}x{H}, {len(cl)} detections, {len(bo)} bodies, {n_sp} superpixels, "
          f"Numba threading layer {numba.threading_layer()}, {os.cpu_count()} CPUs, 1-min load average at start {load:.1f}\n")
    print("| what | time | note |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
