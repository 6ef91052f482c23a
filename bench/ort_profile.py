"""Where an exported model spends its time in ONNX Runtime: per op type and per graph scope.

    python -m clothparse.bench.ort_profile MODEL.onnx [--runs 3] [--threads 2]

Runs the model on random uint8 input with ORT's own profiler and prints the kernel time
per run, grouped by op type and by the first levels of the node name (the PyTorch module
path the exporter kept: /backbone/body, /head/conv, /mask_head/..., ...).
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path


def profile(path: Path, runs: int, threads: int) -> tuple[float, collections.Counter[str], collections.Counter[str]]:
    """(ms per run, ms per op type, ms per scope), kernel time only, averaged over ``runs``."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).integers(0, 255, inp.shape, dtype=np.uint8)
    for _ in range(runs):
        sess.run(None, {inp.name: x})
    trace = Path(sess.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    by_op: collections.Counter[str] = collections.Counter()
    by_scope: collections.Counter[str] = collections.Counter()
    total = 0.0
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        ms = e["dur"] / 1000.0 / runs
        total += ms
        by_op[e["args"]["op_name"]] += ms
        by_scope["/".join(e["name"].removesuffix("_kernel_time").split("/")[:3])] += ms
    return total, by_op, by_scope


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--top", type=int, default=12)
    a = p.parse_args(argv)
    total, by_op, by_scope = profile(a.model, a.runs, a.threads)
    print(f"{a.model}: {total:.1f} ms kernel time per run ({a.runs} runs, {a.threads} threads)")
    print("| op type | ms |\n|---|---|")
    for k, v in by_op.most_common(a.top):
        print(f"| {k} | {v:.1f} |")
    print("\n| scope | ms |\n|---|---|")
    for k, v in by_scope.most_common(a.top):
        print(f"| {k} | {v:.1f} |")


if __name__ == "__main__":
    main()
