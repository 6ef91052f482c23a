"""Open the engines and build the ``Parser`` the way ``cpt parse`` does: one home shared by
``cpt parse``, ``cpt serve`` and the Ray actors (``clothparse.distributed``).

Errors are one-line ``CptError``s naming the flag (``--vote``, ``--body-model``...), so every
front end reports them alike.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clothparse.engines.base import Engine
from clothparse.errors import ConfigError, DataError
from clothparse.parse.batch import engine_batch
from clothparse.parse.fusion_params import FusionParams
from clothparse.parse.pipeline import Parser, SlicParams


@dataclass(frozen=True)
class EngineChoice:
    """How the engines are opened: ``kind`` (None: from each file's type), the openvino
    ``precision`` and the model's CPU ``threads`` (0: the runtime's default)."""

    kind: str | None
    device: str
    precision: str = "auto"
    threads: int = 0


def open_clothing_engine(path: Path, how: EngineChoice, score_thresh: float | None, batch: int, quiet: bool) -> Engine:
    from clothparse.engines.loader import open_engine

    eng = open_engine(path, kind=how.kind, device=how.device, score_thresh=score_thresh, batch_size=batch,
                      precision=how.precision, threads=how.threads)
    _print_note("clothing", eng, quiet)
    return eng


def _print_note(role: str, eng: Engine, quiet: bool) -> None:
    note = getattr(eng, "note", None)
    if note and not quiet:
        print(f"note: {role} model: {note}", file=sys.stderr)


def is_no_body(path: Path | None) -> bool:
    """``--body-model none`` (any case): parse without a body model."""
    return path is not None and str(path).lower() == "none"


def open_body_engine(path: Path | None, how: EngineChoice, score_thresh: float, batch: int, quiet: bool) -> Engine:
    """The body model: a checkpoint/exported file, a torchvision COCO ``.pth``, or the default
    torchvision COCO Mask R-CNN from the local cache (a clear error when it is not there)."""
    from clothparse.engines.torch_engine import TorchEngine

    if path is None or path.suffix.lower() in (".pth", ".pt"):
        from clothparse.model.builder import body_config, build_body_model

        if path is not None and not path.is_file():
            raise DataError("no such weights file", path)
        from clothparse.model.weights import flag_hint

        with flag_hint("--body-model"):
            model = build_body_model(init="coco", weights_path=path)
        return TorchEngine(model, tuple(body_config().class_names), how.device, score_thresh=score_thresh,
                           batch_size=batch)
    from clothparse.engines.loader import can_open, open_engine

    # --engine names the clothing model's runtime; the body file's own type decides here
    # unless that runtime reads it too (e.g. openvino for both .onnx exports).
    kind = how.kind if how.kind is not None and can_open(how.kind, path) else None
    # --precision int8 names the clothing model's Q/DQ export; a float body export runs at auto.
    precision = how.precision if kind == "openvino" and how.precision != "int8" else "auto"
    eng = open_engine(path, kind=kind, device=how.device, score_thresh=score_thresh, batch_size=batch,
                      precision=precision, threads=how.threads)
    _print_note("body", eng, quiet)
    return eng


def fusion_params(vote: str, skin_rule: str, soft_thresh: float) -> FusionParams:
    """The fusion settings of ``--vote``, ``--skin-rule`` and ``--soft-thresh`` (one-line errors naming the flag)."""
    if vote not in ("area", "centroid", "soft"):
        raise ConfigError(f"--vote: unknown vote {vote!r}; choose area, centroid or soft")
    if skin_rule not in ("growth", "all"):
        raise ConfigError(f"--skin-rule: unknown rule {skin_rule!r}; choose growth or all")
    if not 0.0 < soft_thresh <= 1.0:
        raise ConfigError(f"--soft-thresh must be in (0, 1], got {soft_thresh}")
    return FusionParams(vote=vote, skin_rule=skin_rule, soft_thresh=soft_thresh)  # type: ignore[arg-type]


def batch_size(engine: Engine, asked: int | None) -> int:
    """``--batch``, or the engine's own; warns when an export's fixed batch does not divide
    the asked one (its calls get padded)."""
    fixed = engine_batch(engine)
    if asked is None:
        return fixed or 1
    if fixed and asked % fixed:
        print(f"warning: --batch {asked} is not a multiple of the model's fixed batch {fixed}; "
              "its last call of every batch is padded", file=sys.stderr)
    return asked


def build_parser(
    model: Path, body_model: Path | None, how: EngineChoice, score_thresh: float | None,
    body_score_thresh: float, sp_backend: str | None, fusion: FusionParams, slic: SlicParams, batch: int, quiet: bool,
) -> Parser:
    backend: Any = None
    if sp_backend is not None:
        from clothparse.parse.superpixels import get_backend

        backend = get_backend(sp_backend)
    clothing = open_clothing_engine(model, how, score_thresh, batch, quiet)
    body = None if is_no_body(body_model) else open_body_engine(body_model, how, body_score_thresh, batch, quiet)
    return Parser(clothing, body, backend, fusion, slic, body_score_thresh=body_score_thresh)
