"""The demo's photos: held-out synthetic test photos and real photos that dependencies ship.

    python -m clothparse.bench.demo_photos --data demo/data --out demo/photos [--n 8]

Copies the first ``--n`` photos of ``DATA/test.json`` (never seen in training) and writes
matplotlib's ``grace_hopper.jpg`` and scikit-image's ``astronaut`` as JPEGs next to them, so the
demo needs nothing from the network. Existing files are overwritten (atomically).
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from clothparse.data.coco_json import read_coco_json
from clothparse.errors import CptError
from clothparse.io.atomic import write_bytes


def real_photos() -> dict[str, bytes]:
    """File name -> JPEG bytes of the real photos the installed dependencies ship."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    out = {"grace_hopper.jpg": Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()}
    buf = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(buf, "JPEG", quality=95)
    out["astronaut.jpg"] = buf.getvalue()
    return out


def write_demo_photos(data: Path, out: Path, n: int = 8) -> list[Path]:
    """Copy ``n`` test photos of ``data`` and the real photos into ``out``; returns the paths written."""
    coco = read_coco_json(data / "test.json", image_fields=("file_name",))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for im in coco["images"][:n]:
        dst = out / Path(im["file_name"]).name
        shutil.copyfile(data / "images" / im["file_name"], dst)
        written.append(dst)
    for name, blob in real_photos().items():
        write_bytes(out / name, blob)
        written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=8)
    args = ap.parse_args(argv)
    try:
        paths = write_demo_photos(args.data, args.out, args.n)
    except CptError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"{len(paths)} photos in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
