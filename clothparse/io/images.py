"""Robust photo decoding: any common file in, RGB uint8 out, or a one-line DataError.

Handles EXIF orientation, CMYK, palette, grayscale, RGBA (composited on white),
16-bit and float modes, and rejects empty, truncated, non-image, tiny and huge files.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from clothparse.errors import DataError

#: Smallest side we accept; SLIC and the detector need a few pixels to work with.
MIN_SIDE = 8
#: Largest pixel count we decode (about 16k x 16k); beyond this we refuse rather than OOM.
MAX_PIXELS = 268_435_456

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def to_rgb(img: Image.Image) -> np.ndarray:
    """Convert a decoded PIL image to RGB uint8 [H, W, 3], applying EXIF orientation."""
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit integer grayscale: scale the full range to 8 bits instead of clipping.
        # A 16-bit mode means a 0-65535 range even when this photo is dark; a 32-bit "I"
        # image carries no range, so take the smallest of 8/16 bits that holds its values.
        arr = np.asarray(img, dtype=np.float64)
        peak = float(arr.max()) if arr.size else 0.0
        if img.mode.startswith("I;16") or peak > 255:
            hi = 65535.0 if peak <= 65535 else peak
        else:
            hi = 255.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo if hi > lo else 1.0) * 255.0
        return np.repeat(np.clip(arr + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB uint8 [H, W, 3] (values 0-255, RGB order).

    Raises DataError naming the file for: missing file, zero bytes, not an image,
    truncated/corrupt data, images smaller than MIN_SIDE or larger than MAX_PIXELS.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file", path)
    if path.stat().st_size == 0:
        raise DataError("file is empty (0 bytes)", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise DataError(f"image is too large ({w}x{h} > {MAX_PIXELS} pixels)", path)
                img.load()
                arr = to_rgb(img)
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError("not an image file (unrecognised format)", path) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError("image is too large (decompression bomb limit)", path) from None
    except OSError as exc:
        raise DataError(f"corrupt or truncated image ({exc})", path) from None
    except (ValueError, SyntaxError) as exc:
        raise DataError(f"cannot decode image ({exc})", path) from None
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise DataError(f"image is too small ({w}x{h}; each side must be >= {MIN_SIDE})", path)
    return arr


def decode_rgb(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (JPEG/PNG/...) to RGB uint8 [H, W, 3]; DataError on failure."""
    import io

    if not data:
        raise DataError("empty image data", name)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return to_rgb(img)
    except UnidentifiedImageError:
        raise DataError("not an image (unrecognised format)", name) from None
    except OSError as exc:
        raise DataError(f"corrupt or truncated image ({exc})", name) from None
