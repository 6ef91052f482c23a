"""SLIC speed: native vs scikit-image (and fast-slic when importable), same images, same run.

Sizes 600x400 and 1024x768 (width x height) of a real photo (scikit-image's ``coffee``,
resized), ~900 segments, the seed's compactness 20 and sigma 2 (fast-slic has no sigma; it
runs with its own compactness default). Each timing is the
median (and min) of ``--repeat`` runs after one warm-up run; the native and fast-slic runs
alternate so that a slow spell of a shared machine hits them alike.

Run: ``python -m clothparse.bench.slic_bench [--threads 2] [--repeat 15] [--json OUT.json]
[--other-build OLD/_slic.so]``; the other build (say, an older commit's, built with
``cmake -S . -B OLD -DCLOTHPARSE_BUILD_PYTHON=ON``) is timed in the same round-robin.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from clothparse.parse.superpixels import SlicParams

SIZES = ((600, 400), (1024, 768))  # (width, height)
#: The seed's SLIC settings, from their one home.
SEED = SlicParams()


def test_image(width: int, height: int) -> np.ndarray:
    """RGB uint8 [height, width, 3]: scikit-image's ``coffee`` photo resized (bicubic)."""
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.coffee()).resize((width, height), Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def time_call(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(median wall, min wall, median process CPU) in ms of ``repeat`` calls after one warm-up.

    Process CPU time sums all threads; for a one-thread run it is the wall time the call would
    take on an idle core, which is the robust figure on a shared, oversubscribed machine.
    """
    return time_interleaved({"fn": fn}, repeat)["fn"]


def time_interleaved(
    fns: dict[str, Callable[[], object]], repeat: int
) -> dict[str, tuple[float, float, float]]:
    """:func:`time_call` for several functions, run round-robin (one warm-up call each).

    Round-robin (``clothparse.bench.timing.time_alternating``) spreads a slow spell of a shared
    machine over every implementation alike, so their ratios hold even when the absolute
    times drift between spells.
    """
    from clothparse.bench.timing import time_alternating

    cpu: dict[str, list[float]] = {name: [] for name in fns}

    def with_cpu(name: str, fn: Callable[[], object]) -> Callable[[], None]:
        def call() -> None:
            c0 = time.process_time()
            fn()
            cpu[name].append((time.process_time() - c0) * 1e3)

        return call

    wall = time_alternating({name: with_cpu(name, fn) for name, fn in fns.items()}, 1, repeat)
    return {
        name: (
            float(np.median(wall[name])) * 1e3,
            float(np.min(wall[name])) * 1e3,
            float(np.median(cpu[name][1:])),  # [0] is the warm-up call
        )
        for name in fns
    }


def native_name(threads: int) -> str:
    """Row label of the native SLIC on ``threads`` threads."""
    return f"native ({threads} thread{'s' if threads != 1 else ''})"


def load_other_build(path: str) -> Any:
    """Another build of ``clothparse._slic`` (e.g. an older commit's ``.so``), as a module.

    Raises ``clothparse.errors.DependencyError`` naming the file when it cannot be loaded.
    """
    import importlib.util

    from clothparse.errors import DependencyError

    spec = importlib.util.spec_from_file_location("_slic", path)
    if spec is None or spec.loader is None:
        raise DependencyError(f"{path}: not a loadable extension module")
    try:
        module = importlib.util.module_from_spec(spec)  # dlopen happens here
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise DependencyError(f"{path}: cannot load it as clothparse._slic ({exc})") from None
    if not hasattr(module, "slic"):
        raise DependencyError(f"{path}: has no slic() function; is it a clothparse._slic build?")
    return module


def segmenters(
    threads: int, other_build: str | None = None
) -> dict[str, Callable[[np.ndarray], object]]:
    """Name -> function of an RGB uint8 image, for every implementation installed.

    other_build: path of another ``clothparse._slic`` build, timed as "native, other build".
    """
    from skimage.segmentation import slic as sk_slic

    from clothparse.parse import slic_native

    out: dict[str, Callable[[np.ndarray], object]] = {
        "skimage": lambda im: sk_slic(
            im, n_segments=SEED.n_segments, compactness=SEED.compactness, sigma=SEED.sigma,
            start_label=0, channel_axis=-1,
        ),
    }
    if slic_native.available():
        out[native_name(threads)] = lambda im: slic_native.slic(im, num_threads=threads)
        # num_threads=0: what the parse pipeline uses (the OpenMP default thread count).
        out["native (auto threads)"] = lambda im: slic_native.slic(im)
        if threads != 1:
            out[native_name(1)] = lambda im: slic_native.slic(im, num_threads=1)
    if other_build is not None:
        other = load_other_build(other_build)
        out[f"native, other build ({threads} thread{'s' if threads != 1 else ''})"] = (
            lambda im: other.slic(im, SEED.n_segments, SEED.compactness, SEED.sigma, num_threads=threads)
        )
    try:
        from fast_slic.avx2 import SlicAvx2
    except ImportError:
        pass
    else:
        engine = SlicAvx2(num_components=SEED.n_segments, num_threads=threads)
        out["fast-slic avx2"] = lambda im: engine.iterate(im)
    return out


def run(
    repeat: int,
    threads: int,
    skimage_repeat: int,
    sizes: tuple[tuple[int, int], ...] = SIZES,
    other_build: str | None = None,
) -> list[dict[str, Any]]:
    """One row per (size, implementation): median/min ms and the ratio to the native median."""
    rows: list[dict[str, Any]] = []
    impls = segmenters(threads, other_build)
    for width, height in sizes:
        img = test_image(width, height)
        # scikit-image alone (it is ~40x slower); the fast implementations round-robin.
        timed = {
            name: time_call(partial(fn, img), skimage_repeat)
            for name, fn in impls.items()
            if name == "skimage"
        }
        timed.update(
            time_interleaved(
                {name: partial(fn, img) for name, fn in impls.items() if name != "skimage"},
                repeat,
            )
        )
        size_rows: list[dict[str, Any]] = []
        for name in impls:
            med, best, cpu = timed[name]
            size_rows.append(
                {
                    "size": f"{width}x{height}",
                    "impl": name,
                    "median_ms": med,
                    "min_ms": best,
                    "cpu_ms": cpu,
                    "runs": skimage_repeat if name == "skimage" else repeat,
                }
            )
        native = next((r for r in size_rows if r["impl"] == native_name(threads)), None)
        for r in size_rows:
            r["x_native"] = r["median_ms"] / native["median_ms"] if native else float("nan")
        rows.extend(size_rows)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the timing rows."""
    lines = [
        "| size | implementation | median ms | min ms | median CPU ms | runs | × native median |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['impl']} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | {r['cpu_ms']:.2f} | {r['runs']} | {r['x_native']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the timing table; optionally write it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for native and fast-slic")
    parser.add_argument(
        "--repeat", type=int, default=15, help="timed runs per native/fast-slic row"
    )
    parser.add_argument(
        "--skimage-repeat", type=int, default=5, help="timed runs per scikit-image row"
    )
    parser.add_argument("--json", help="write the rows to this JSON file")
    parser.add_argument(
        "--other-build",
        metavar="SO",
        help="another build of clothparse._slic (e.g. an older commit's .so) to time alongside",
    )
    args = parser.parse_args(argv)
    from clothparse.errors import CptError

    try:
        rows = run(args.repeat, args.threads, args.skimage_repeat, other_build=args.other_build)
    except CptError as exc:
        parser.error(str(exc))
    print(markdown(rows))
    if args.json:
        from clothparse.io.atomic import atomic_open

        with atomic_open(args.json, "w") as fh:
            json.dump(
                {"n_segments": SEED.n_segments, "threads": args.threads, "rows": rows}, fh, indent=2
            )


if __name__ == "__main__":
    main()
