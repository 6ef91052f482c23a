"""Benchmark input photos, held as JPEG bytes so the decode stage is timed on real data.

Sources, in order: ``--images DIR`` (every photo there, resized to the cell size);
else synthetic scenes from ``clothparse.data.synth`` (fixed seed); else matplotlib's
sample photo ``grace_hopper.jpg``. Every photo is brought to exactly H x W (RGB,
bilinear resize after a centre crop to the aspect ratio) and re-encoded as JPEG
quality 95, so all engines and sizes see the same content.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from clothparse.errors import DataError
from clothparse.io.images import IMAGE_SUFFIXES

JPEG_QUALITY = 95


@dataclass(frozen=True)
class BenchImage:
    """One input: name, JPEG bytes and the decoded RGB uint8 [H, W, 3] photo."""

    name: str
    jpeg: bytes
    rgb: np.ndarray


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """RGB uint8 [h, w, 3] -> RGB uint8 [height, width, 3]: centre crop to the aspect ratio, then bilinear resize."""
    h, w = image.shape[:2]
    target = width / height
    if w / h > target:
        cw = max(1, round(h * target))
        x0 = (w - cw) // 2
        image = image[:, x0 : x0 + cw]
    else:
        ch = max(1, round(w / target))
        y0 = (h - ch) // 2
        image = image[y0 : y0 + ch]
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.Resampling.BILINEAR))


def _encode(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _from_folder(folder: Path, n: int) -> tuple[list[tuple[str, np.ndarray]], str]:
    from clothparse.io.images import read_rgb

    if not folder.is_dir():
        raise DataError("--images: not a folder", folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"--images: no photos ({'/'.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}) in this folder", folder)
    return [(p.name, read_rgb(p)) for p in files[:n]], f"photos from {folder}"


def _synthetic(n: int, size: int, seed: int) -> tuple[list[tuple[str, np.ndarray]], str] | None:
    try:
        from clothparse.data.synth.scene import render_scene
    except ImportError:
        return None
    rng = np.random.default_rng(seed)
    return [(f"synth_{i}.jpg", render_scene(rng, size).image) for i in range(n)], f"synthetic scenes (clothparse.data.synth, seed {seed})"


def _sample_photo() -> tuple[list[tuple[str, np.ndarray]], str]:
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(str(path)) as im:
        rgb = np.asarray(im.convert("RGB"))
    return [("grace_hopper.jpg", rgb)], "matplotlib sample photo grace_hopper.jpg"


def load_images(folder: Path | None, height: int, width: int, n: int, seed: int = 0) -> tuple[list[BenchImage], str]:
    """``n`` inputs of exactly ``height`` x ``width`` (photos repeat cyclically when fewer exist) and a description of the source."""
    if n < 1:
        raise ValueError("need at least one image")
    if folder is not None:
        raw, source = _from_folder(folder, n)
    else:
        synth = _synthetic(n, max(height, width), seed)
        raw, source = synth if synth is not None else _sample_photo()
    out = []
    for i in range(n):
        name, rgb = raw[i % len(raw)]
        fitted = fit(rgb, height, width)
        jpeg = _encode(fitted)
        # The pipeline sees the decoded JPEG, as it would from disk.
        out.append(BenchImage(name, jpeg, np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))))
    return out, source
