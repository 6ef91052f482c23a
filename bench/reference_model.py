"""The reference model: a small clothing model trained on the synthetic data, shipped in
``tests/assets/reference-small`` so that parity, accuracy and agreement checks run on a
*trained* model (a random one scores every box near 1/num_classes, and near-ties make
parity meaningless) without downloading anything.

    python -m clothparse.bench.reference_model --work demo --minutes 40 --out tests/assets/reference-small
    python -m clothparse.bench.reference_model --work demo --task body --minutes 35 --out tests/assets/reference-body

Steps (each skipped when its output exists): ``cpt data synth --n 800 --size 256 --seed 0``
into WORK/data, ``cpt train --task TASK --backbone small --time-limit MINUTES`` into
WORK/ref (WORK/ref-body for the body task: person masks from the same photos), then the
best checkpoint's weights are stored as float16 safetensors (half the bytes; the model *is*
those rounded weights, loaded into float32) with its metadata and this provenance.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

#: Where the tests look for it.
DEFAULT_OUT = Path("tests/assets/reference-small")


def store_half(run: Path, out: Path, provenance: dict[str, object]) -> Path:
    """Write ``run``'s best checkpoint to ``out/best.{safetensors,json}`` with float16 weights."""
    import torch
    from safetensors.torch import save_file

    from clothparse.model.checkpoint import read_meta, read_tensors, resolve_checkpoint

    weights, meta_path = resolve_checkpoint(run)
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in read_tensors(weights).items()}
    meta = read_meta(meta_path)
    meta["reference"] = provenance
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "best.safetensors"))
    (out / "best.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    assert all(v.dtype in (torch.float16, torch.int64) for v in state.values())
    return out / "best.safetensors"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("demo"))
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--task", choices=("clothing", "body"), default="clothing")
    args = ap.parse_args(argv)
    data, run = args.work / "data", args.work / ("ref" if args.task == "clothing" else "ref-body")
    synth = ["cpt", "data", "synth", "--out", str(data), "--n", "800", "--size", "256", "--seed", "0", "-q"]
    train = ["cpt", "train", "--data", str(data), "--out", str(run), "--task", args.task, "--backbone", "small",
             "--time-limit", f"{args.minutes:g}", "-q"]
    if not (data / "test.json").is_file():
        subprocess.run(synth, check=True)
    if not (run / "best.safetensors").is_file():
        subprocess.run(train, check=True)
    path = store_half(run, args.out, {"commands": [" ".join(synth), " ".join(train)], "weights": "float16"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
