"""How much ONNX Runtime's spinning workers slow the CPU stage that follows the model.

    python -m clothparse.bench.ort_spin MODEL.onnx [--rounds 4] [--threads 2]

For spinning on and off (``session.intra_op.allow_spinning``), each round runs the model once
on random uint8 input, then the native SLIC (scikit-image's when the native one is missing)
on a photo of the model's input size right after it, then once more. With spinning on, idle
ORT workers keep the cores busy for a while after the run, so the first SLIC is slower than
the second; ``OnnxEngine`` turns spinning off for that reason.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def measure(path: Path, spin: bool, rounds: int, threads: int) -> list[tuple[float, float, float]]:
    """Per round: (model ms, SLIC ms right after the model, SLIC ms again)."""
    import numpy as np
    import onnxruntime as ort
    from clothparse.bench.slic_bench import test_image

    from clothparse.parse.superpixels import get_backend

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inp, sizes_in = sess.get_inputs()
    b, _, height, width = inp.shape
    feed = {
        inp.name: np.random.default_rng(0).integers(0, 255, inp.shape, dtype=np.uint8),
        sizes_in.name: np.array([[height, width]] * int(b), np.int32),
    }
    photo = test_image(int(width), int(height))
    backend = get_backend("auto")

    def superpixels() -> None:
        backend.segment(photo)  # the seed's settings (SlicParams' defaults)

    sess.run(None, feed)
    superpixels()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        sess.run(None, feed)
        t1 = time.perf_counter()
        superpixels()
        t2 = time.perf_counter()
        superpixels()
        t3 = time.perf_counter()
        out.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3))
    return out


def main(argv: list[str] | None = None) -> None:
    """Print one line per round for spinning on, then off."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="an exported .onnx with a static input shape")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="ORT intra-op threads")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"{args.model}: no such file")
    for spin in (True, False):
        for model_ms, after_ms, again_ms in measure(args.model, spin, args.rounds, args.threads):
            print(
                f"spinning {'on ' if spin else 'off'}  model {model_ms:7.0f} ms  "
                f"superpixels right after {after_ms:6.1f} ms  again {again_ms:6.1f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
