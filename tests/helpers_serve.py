"""Shared helpers of the `cpt serve` tests: a server on tiny random models, photos as bytes."""

from __future__ import annotations

import io
import time
import warnings
from pathlib import Path

import numpy as np
from helpers_parse import save_tiny, synthetic_photo
from PIL import Image

from clothparse.parse.build import EngineChoice, build_parser
from clothparse.parse.fusion_params import FusionParams
from clothparse.parse.pipeline import Parser
from clothparse.parse.superpixels import SlicParams

with warnings.catch_warnings():  # starlette asks for httpx2; httpx works
    warnings.filterwarnings("ignore", message="Using `httpx` with")
    from fastapi.testclient import TestClient

__all__ = ["TestClient", "decode_png", "make_parser", "photo", "png_bytes", "tiny_models", "wait_ready"]

#: The SLIC settings of every serve test (small photos: few superpixels, fast).
N_SEGMENTS = 60


def tiny_models(d: Path) -> tuple[Path, Path]:
    """A random clothing model and a random ``person`` body model, saved in ``d``."""
    return save_tiny(d / "clothing", seed=4), save_tiny(d / "body", ["person"], seed=1)  # seed 4: masks cover pixels


def make_parser(clothing: Path, body: Path | None, batch: int = 4) -> Parser:
    """The parser ``cpt serve`` would build (thresholds 0 so that random weights detect things)."""
    return build_parser(clothing, body, EngineChoice(None, "cpu"), 0.0, 0.0, "skimage",
                         FusionParams(), SlicParams(N_SEGMENTS), batch, True)


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def photo(seed: int, h: int = 128, w: int = 96) -> tuple[np.ndarray, bytes]:
    """RGB uint8 [h, w, 3] and its PNG bytes."""
    im = synthetic_photo(h, w, seed=seed)
    return im, png_bytes(im)


def decode_png(data: bytes) -> np.ndarray:
    """RGB uint8 [H, W, 3] of PNG bytes."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def wait_ready(client, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"not ready after {timeout} s: {client.get('/readyz').json()}")
