"""Do two engines give the same items on your photos? Engine-level parity on a folder.

    python -m clothparse.bench.engine_agreement CHECKPOINT EXPORTED PHOTOS_DIR [--score-thresh 0.3]

Opens the checkpoint with the torch engine on the export's canvas and the exported file
(``.onnx`` or ``.engine``) with its own engine, both at ``--score-thresh``, runs
``engine.infer`` on every photo of the folder and prints the parity table
(``clothparse.export.parity``: class, box IoU, score and mask differences, how many
detections were compared). Exits 1 when the comparison fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("exported", type=Path)
    ap.add_argument("photos", type=Path)
    ap.add_argument("--score-thresh", type=float, default=None, help="default: the export's own")
    args = ap.parse_args(argv)
    from clothparse.export import parity

    from clothparse.contract.sidecar import load_sidecar
    from clothparse.engines.loader import open_engine
    from clothparse.engines.torch_engine import TorchEngine
    from clothparse.io.images import IMAGE_SUFFIXES, read_rgb
    from clothparse.model.checkpoint import load_checkpoint

    sc = load_sidecar(args.exported)
    thresh = sc.score_thresh if args.score_thresh is None else args.score_thresh
    files = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    photos = [read_rgb(p) for p in files]
    loaded = load_checkpoint(args.checkpoint)
    reference = TorchEngine(loaded.model, loaded.class_names, "cpu", score_thresh=thresh, canvas=sc.canvas)
    test = open_engine(args.exported, score_thresh=thresh)
    tol = parity.FP32 if sc.precision == "fp32" else parity.REDUCED[sc.precision]
    row = parity.engine_parity(f"{args.exported.name} vs torch ({len(files)} photos)", reference, test, photos, thresh, tol)
    print(parity.format_table([row]))
    return 0 if row.ok else 1


if __name__ == "__main__":
    sys.exit(main())
