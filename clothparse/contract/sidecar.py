"""The JSON sidecar written next to every exported model, and its validation on load.

``model.onnx`` -> ``model.onnx.json``; ``model.engine`` -> ``model.engine.json``. The
sidecar carries what the graph cannot: class names (engines never hard-code them), the
canvas and the resize rule of the preprocessing contract (``clothparse.contract.canvas``),
the score floor the graph filters at and the default run-time threshold, the I/O names and
sizes the engines check, precision, the SHA-256 of the model file (checked on load), and for
provenance the opset, the source checkpoint and its SHA-256 and the tool versions (for TensorRT: the version of the module that built the engine). Loading checks the model file's
hash, so a corrupt file or a sidecar from another export is a one-line ``ModelError``.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clothparse.contract.canvas import CanvasSpec
from clothparse.errors import ModelError
from clothparse.io.atomic import write_json

SIDECAR_FORMAT = "clothparse-export"
SIDECAR_VERSION = 3

INPUT_NAMES: tuple[str, ...] = ("images", "image_sizes")
OUTPUT_NAMES: tuple[str, ...] = ("boxes", "scores", "classes", "masks", "num_detections")


def sidecar_path(model_path: str | Path) -> Path:
    p = Path(model_path)
    return p.with_name(p.name + ".json")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape an export (missing optional ones are left out)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("clothparse", "torch", "torchvision", "onnx", "onnxruntime", "onnxruntime-gpu"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return out


@dataclass
class Sidecar:
    """Metadata of one exported model (see module docstring)."""

    class_names: list[str]
    height: int
    width: int
    batch: int
    top_k: int
    opset: int  # provenance
    precision: str
    runtime: str  # "onnx" or "trt"
    model_sha256: str  # checked on every load
    #: Default run-time threshold (the model's own, or ``cpt export --score-thresh``).
    score_thresh: float
    #: The graph keeps the top-K detections scoring above this; run-time thresholds below it are refused.
    score_floor: float
    #: The resize rule of the checkpoint (torchvision ``min_size``/``max_size``).
    min_size: int
    max_size: int
    keep_labels: list[int] | None = None
    mask_size: int = 28
    #: Graph I/O names; shapes follow from batch, height, width, top_k and mask_size
    #: (ARCHITECTURE.md, "Exported graphs"), and the engines check them on load.
    inputs: list[str] = field(default_factory=lambda: list(INPUT_NAMES))
    outputs: list[str] = field(default_factory=lambda: list(OUTPUT_NAMES))
    #: Provenance, for people auditing an export (cpt reads only tools["tensorrt"]).
    source_checkpoint: str = ""
    source_sha256: str = ""
    tools: dict[str, str] = field(default_factory=tool_versions)
    format: str = SIDECAR_FORMAT
    version: int = SIDECAR_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def canvas(self) -> CanvasSpec:
        return CanvasSpec(self.height, self.width, self.min_size, self.max_size)


def write_sidecar(model_path: str | Path, sidecar: Sidecar) -> Path:
    """Write ``sidecar`` next to ``model_path`` (atomically); returns the sidecar path."""
    path = sidecar_path(model_path)
    write_json(path, sidecar.to_dict())
    return path


def load_sidecar(model_path: str | Path, verify_hash: bool = True) -> Sidecar:
    """Read and validate the sidecar of ``model_path``; every problem is a one-line ModelError."""
    model_path = Path(model_path)
    path = sidecar_path(model_path)
    if not model_path.is_file():
        raise ModelError("no such model file", model_path)
    if not path.is_file():
        raise ModelError(f"missing sidecar {path.name} (re-export with `cpt export`)", model_path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"unreadable sidecar: {exc}", path) from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise ModelError(f"not a clothparse export sidecar (format != {SIDECAR_FORMAT!r})", path)
    if data.get("version") != SIDECAR_VERSION:
        raise ModelError(
            f"sidecar version {data.get('version')} is not {SIDECAR_VERSION}: exported by another clothparse version, re-export",
            path,
        )
    known = set(Sidecar.__dataclass_fields__)
    try:
        sc = Sidecar(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise ModelError(f"incomplete sidecar: {exc}", path) from None
    for name in ("height", "width", "batch", "top_k", "opset", "min_size", "max_size", "mask_size"):
        if type(getattr(sc, name)) is not int:
            raise ModelError(f"sidecar {name} must be an integer, got {getattr(sc, name)!r}", path)
    for name in ("score_thresh", "score_floor"):
        if type(getattr(sc, name)) not in (int, float):
            raise ModelError(f"sidecar {name} must be a number, got {getattr(sc, name)!r}", path)
    for name in ("inputs", "outputs"):
        if not isinstance(getattr(sc, name), list) or not all(isinstance(v, str) for v in getattr(sc, name)):
            raise ModelError(f"sidecar {name} must be a list of names", path)
    if not sc.class_names or not all(isinstance(c, str) for c in sc.class_names):
        raise ModelError("sidecar class_names must be a non-empty list of strings", path)
    if min(sc.height, sc.width, sc.batch, sc.top_k, sc.min_size, sc.max_size) < 1:
        raise ModelError("sidecar height/width/batch/top_k/min_size/max_size must be positive", path)
    if not 0.0 <= sc.score_floor <= sc.score_thresh <= 1.0:
        raise ModelError(f"sidecar needs 0 <= score_floor <= score_thresh <= 1, got {sc.score_floor}/{sc.score_thresh}", path)
    if verify_hash:
        actual = sha256_file(model_path)
        if actual != sc.model_sha256:
            raise ModelError(
                f"file does not match its sidecar (sha256 {actual[:12]} != {sc.model_sha256[:12]}): corrupt or replaced, re-export",
                model_path,
            )
    return sc
