"""Does OpenVINO IR bring anything over reading the ONNX export directly? Compile time of both.

    python -m clothparse.bench.openvino_compile MODEL.onnx [--runs 3]

Converts MODEL.onnx to IR (``openvino.save_model``: ``.xml`` + ``.bin``, weights compressed to
fp16 as OpenVINO does by default) in a temporary folder, then times ``Core.compile_model``
from each file on the CPU (f32 hint, latency), with a fresh ``Core`` every run: without a
cache, and with a ``CACHE_DIR`` already filled by one untimed compile (what a second
``cpt parse`` start sees). Prints medians of ``--runs`` and the file sizes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def compile_seconds(path: Path, cache_dir: Path | None, runs: int) -> float:
    """Median seconds of ``Core().compile_model(path)`` over ``runs`` (a filled cache when given)."""
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}

    def once() -> float:
        core = ov.Core()
        if cache_dir is not None:
            core.set_property({"CACHE_DIR": str(cache_dir)})
        t = time.perf_counter()
        core.compile_model(str(path), "CPU", config)
        return time.perf_counter() - t

    if cache_dir is not None:
        once()  # fills the cache
    return statistics.median(once() for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="an exported .onnx")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import openvino as ov

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        xml = work / "model.xml"
        ov.save_model(ov.Core().read_model(str(args.model)), str(xml))
        print(f"files: onnx {args.model.stat().st_size / 1e6:.1f} MB, IR {xml.with_suffix('.bin').stat().st_size / 1e6:.1f} MB (.bin)")
        for label, path in (("onnx", args.model), ("IR", xml)):
            cold = compile_seconds(path, None, args.runs)
            warm = compile_seconds(path, work / f"cache_{label}", args.runs)
            print(f"{label:>4}: compile {cold:.2f} s without a cache, {warm:.2f} s from a filled cache (median of {args.runs})")


if __name__ == "__main__":
    main()
