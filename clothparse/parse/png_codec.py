"""PNG writing for ``cpt parse``'s outputs: RGB images (the overlay) and palette label maps.

Every row is Paeth-filtered (the PNG filter that predicts photos best: 3-9 % smaller than
"Up" under the same deflate on overlays), then deflated. Level 1, the default, uses the
Numba encoder of ``clothparse.parse.deflate_kernel`` (what zlib's level 1 with its
run-length strategy writes, about three times faster than zlib 1.2 does it); levels 0 and
2-9 use zlib at that level with its strategy for filtered data (``Z_FILTERED``): 1-5 %
smaller than level 1 at 9-75 times its time. Every level gives a lossless PNG that any
decoder reads (BENCHMARKS.md, issue 10).
"""

from __future__ import annotations

import functools
import struct
import threading
import zlib
from typing import Any

import numpy as np

#: PNG filter type 4 (Paeth), the one every row gets.
PAETH = 4
#: The allowed ``level`` values: zlib's 0 (stored) to 9 (smallest).
LEVELS = range(10)


def check_level(level: int) -> int:
    """``level`` if it is an int 0-9, else ValueError naming the allowed range."""
    if isinstance(level, bool) or not isinstance(level, int | np.integer) or int(level) not in LEVELS:
        raise ValueError(f"PNG compression level must be an integer 0-9 (zlib levels), got {level!r}")
    return int(level)


def rgb_png(image: np.ndarray, level: int = 1) -> bytes:
    """PNG bytes of an RGB uint8 [H, W, 3] image (8-bit truecolour), lossless at any ``level`` 0-9."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"expected RGB uint8 [H, W, 3], got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, adaptive filters, no interlace
    return _png(ihdr, b"", np.ascontiguousarray(image).reshape(h, w * 3), 3, check_level(level))


def palette_png(labels: np.ndarray, palette: bytes, level: int = 1) -> bytes:
    """PNG bytes of a uint8 [H, W] index image in palette mode (8-bit indices).

    palette: RGB triples, R G B R G B ... (at most 256 colours, covering every index used).
    """
    if labels.dtype != np.uint8 or labels.ndim != 2 or 0 in labels.shape:
        raise ValueError(f"label map must be uint8 [H, W], got {labels.dtype} {labels.shape}")
    if len(palette) % 3 or not 0 < len(palette) <= 768:
        raise ValueError(f"palette must hold 1-256 RGB triples, got {len(palette)} bytes")
    h, w = labels.shape
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)  # 8-bit palette indices
    return _png(ihdr, _chunk(b"PLTE", bytes(palette)), np.ascontiguousarray(labels), 1, check_level(level))


def _png(ihdr: bytes, extra: bytes, rows: np.ndarray, bpp: int, level: int) -> bytes:
    """The PNG file: signature, IHDR, ``extra`` chunks, one IDAT of the Paeth-filtered
    scanlines of uint8 [H, B] ``rows``, IEND."""
    k = _kernels()
    h, b = rows.shape
    scan = _scratch("scan", h * (b + 1))
    k.png_scanlines(rows, bpp, PAETH, scan)
    head = _SIGNATURE + _chunk(b"IHDR", ihdr) + extra
    if level != 1:
        z = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_FILTERED)
        return head + _chunk(b"IDAT", z.compress(scan.data) + z.flush()) + _IEND
    # Level 1: the file is assembled in one reused buffer, the deflate stream written in
    # place after the IDAT length, type and zlib header (0x78 0x01: deflate, 32 KiB
    # window, "fastest"; RFC 1950), so the only full-size copy is the final ``bytes``.
    at = len(head) + 10
    capacity = scan.size + scan.size // 8 + 4096
    while True:
        buf = _scratch("png", at + capacity + 8 + len(_IEND))
        n = int(k.deflate_rle(scan, buf[at : at + capacity], k.BLOCK_TOKENS, k.LEN_SYM, k.LEN_NBITS, k.LEN_BITS, k.CL_ORDER))
        if n >= 0:
            break
        capacity *= 2
    end = at + n
    buf[: len(head)] = np.frombuffer(head, np.uint8)
    buf[len(head) : at] = np.frombuffer(struct.pack(">I", n + 6) + b"IDAT\x78\x01", np.uint8)
    buf[end : end + 4] = np.frombuffer(struct.pack(">I", zlib.adler32(scan.data)), np.uint8)
    crc = zlib.crc32(buf[len(head) + 4 : end + 4].data)  # type and data
    buf[end + 4 : end + 8] = np.frombuffer(struct.pack(">I", crc), np.uint8)
    buf[end + 8 : end + 8 + len(_IEND)] = np.frombuffer(_IEND, np.uint8)
    return buf[: end + 8 + len(_IEND)].tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type + data (all big-endian)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IEND = _chunk(b"IEND", b"")
_local = threading.local()


def _scratch(name: str, size: int) -> np.ndarray:
    """uint8 [size] work buffer, reused by this thread's later calls (contents undefined).

    Fresh multi-megabyte arrays cost page faults on every call (~5 ms for the overlay's
    buffers on a VM); reusing them costs nothing after the first photo.
    """
    pool = _local.__dict__.setdefault("pool", {})
    buf = pool.get(name)
    if buf is None or buf.size < size:
        buf = np.empty(size + size // 4, np.uint8)  # room for slightly bigger photos
        pool[name] = buf
    return buf[:size]


@functools.cache
def _kernels() -> Any:
    """``clothparse.parse.deflate_kernel`` (Numba imported on first use: `cpt` starts fast)."""
    from clothparse.parse import deflate_kernel

    return deflate_kernel
