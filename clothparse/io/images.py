"""Robust photo decoding: any common file in, RGB uint8 out, or a one-line DataError.

Handles EXIF orientation, CMYK, palette, grayscale, RGBA (composited on white),
16-bit and float modes, and rejects empty, truncated, non-image and huge files (a 1x1
photo is a photo: the model resizes it). ``read_rgb`` (files) and ``decode_rgb`` (bytes) share one decoder and its checks.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from clothparse.errors import DataError

#: Largest pixel count we decode (about 16k x 16k); beyond this we refuse rather than OOM.
MAX_PIXELS = 268_435_456

#: The one list of photo suffixes (lower case) that folders and globs are searched for.
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
    truncated/corrupt data, images larger than MAX_PIXELS. Any size from 1x1 up is a photo.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file", path)
    if path.stat().st_size == 0:
        raise DataError("file is empty (0 bytes)", path)
    return _decode(path, path)


def decode_rgb(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (JPEG/PNG/...) to RGB uint8 [H, W, 3], with ``read_rgb``'s checks."""
    if not data:
        raise DataError("file is empty (0 bytes)", name)
    return _decode(io.BytesIO(data), name)


def _decode(source: Path | io.BytesIO, name: str | Path) -> np.ndarray:
    """The one decoder: size and decompression-bomb checks, then ``to_rgb``; DataError naming ``name``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise DataError(f"image is too large ({w}x{h} > {MAX_PIXELS} pixels)", name)
                img.load()
                return to_rgb(img)
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError("not an image file (unrecognised format)", name) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError("image is too large (decompression bomb limit)", name) from None
    except OSError as exc:
        raise DataError(f"corrupt or truncated image ({exc})", name) from None
    except (ValueError, SyntaxError) as exc:
        raise DataError(f"cannot decode image ({exc})", name) from None
