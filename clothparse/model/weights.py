"""Pretrained initialisation from torchvision weights, strictly offline.

Files are looked up in the torch hub cache, ``torch.hub.get_dir()/checkpoints/<name>``
(``<name>`` = last part of the torchvision weights URL, e.g.
``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth``), or taken from an explicit file
given by the caller. Nothing is ever downloaded: a missing file raises
``WeightsUnavailableError`` naming the file and the folder to put it in. The message names
no command-line flag (this module serves several commands); a CLI command wraps its call in
``flag_hint("--its-flag")`` so the error says which of its options takes the file.

What each ``init`` loads:
- ``imagenet``: the torchvision ImageNet ResNet-50/101 classifier weights into the
  backbone trunk; FPN and heads stay random.
- ``coco`` + ``resnet50``: torchvision's COCO Mask R-CNN R50-FPN (``COCO_V1``), every
  tensor whose shape fits; the class-specific predictors (91 COCO classes vs ours) are
  skipped and stay random.
- ``coco`` + ``resnet101``: torchvision publishes no R101 Mask R-CNN, so this is a
  hybrid, stated honestly: ImageNet R101 trunk + the COCO R50-FPN model's FPN, RPN,
  box head and mask head (their shapes do not depend on the trunk depth). The trunk
  was never trained jointly with those heads, so fine-tuning matters more than for R50.
  It needs two files in the cache, ``resnet101-63fe2227.pth`` and
  ``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth`` (the second may be given as a file
  instead); when either is missing, one error names both and says which is missing.
- ``small``: no pretrained weights exist; any init but ``none`` is a ``ConfigError``.

Weights are read with safetensors or ``torch.load(weights_only=True)``: no unpickling.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from clothparse.config import ModelConfig
from clothparse.errors import ConfigError, ModelError, WeightsUnavailableError

log = logging.getLogger(__name__)

COCO_MASKRCNN_R50_URL = "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
IMAGENET_URLS = {
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
}


def hub_checkpoint_dir() -> Path:
    """The folder torchvision caches downloaded weights in."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def file_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


class CachedWeightsMissing(WeightsUnavailableError):
    """The hub cache lacks a weights file that the caller could also have given as a file."""


@contextmanager
def flag_hint(flag: str) -> Iterator[None]:
    """Add ``, or pass FLAG FILE`` to a ``CachedWeightsMissing`` raised inside: the option of
    the calling command that takes the weights file (``--weights``, ``--body-model``)."""
    try:
        yield
    except CachedWeightsMissing as exc:
        raise CachedWeightsMissing(f"{exc}, or pass {flag} FILE") from None


def resolve(url: str, weights_path: str | Path | None = None, *, replaceable: bool = True) -> Path:
    """Path of the weights file for ``url``: ``weights_path`` if given, else the hub cache.

    Raises ``WeightsUnavailableError`` (one line: which file, which folder) when absent:
    ``CachedWeightsMissing`` when the cache lacks it and ``replaceable`` (the caller's own
    weights file could stand in for it, so ``flag_hint`` may name that option).
    """
    if weights_path is not None:
        p = Path(weights_path)
        if not p.is_file():
            raise WeightsUnavailableError("weights file not found", p)
        return p
    p = hub_checkpoint_dir() / file_name(url)
    if p.is_file():
        return p
    cls = CachedWeightsMissing if replaceable else WeightsUnavailableError
    raise cls(
        f"pretrained weights not available offline: place {file_name(url)} (from {url}) "
        f"in {hub_checkpoint_dir()}"
    )


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict (``.safetensors`` or a tensors-only torch file) without unpickling."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, or pickled objects weights_only refuses
        raise ModelError(f"cannot read weights ({type(exc).__name__}: {exc})", path) from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # torchvision reference-script checkpoints nest the weights
    if not isinstance(state, dict):
        raise ModelError("not a state dict", path)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_matching(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> tuple[int, list[str]]:
    """Copy every tensor of ``state`` whose name and shape exist in ``module``.

    Returns (number loaded, names skipped for a shape mismatch). Skips are logged:
    they are expected for class-specific predictors (e.g. 91 COCO vs 13 ModaNet classes).
    """
    own = module.state_dict()
    take: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for k, v in state.items():
        if k not in own:
            continue
        if own[k].shape != v.shape:
            skipped.append(k)
            continue
        take[k] = v.to(own[k].dtype)
    module.load_state_dict(take, strict=False)
    if skipped:
        log.info("%s: skipped %d tensors with a different shape: %s", source, len(skipped), ", ".join(skipped))
    log.info("%s: loaded %d of %d tensors", source, len(take), len(own))
    return len(take), skipped


def init_model(model: nn.Module, cfg: ModelConfig, init: str, weights_path: str | Path | None = None) -> None:
    """Initialise ``model`` (built from ``cfg``) in place; see the module docstring."""
    if init == "none":
        return
    if init not in ("imagenet", "coco"):
        raise ConfigError(f"unknown init {init!r}; choose from none, imagenet, coco")
    if cfg.backbone == "small":
        raise ConfigError("the small backbone has no pretrained weights; use --init none")
    body: nn.Module = model.get_submodule("backbone.body")
    if init == "imagenet":
        path = resolve(IMAGENET_URLS[cfg.backbone], weights_path)
        n, _ = load_matching(body, load_state(path), str(path))
        if n == 0:
            raise ModelError(f"no tensor matches the {cfg.backbone} trunk", path)
        return
    if cfg.backbone == "resnet101":
        coco_path, r101 = resolve_coco_r101(weights_path)
        coco = {k: v for k, v in load_state(coco_path).items() if not k.startswith("backbone.body.")}
        load_matching(body, load_state(r101), str(r101))
    else:
        coco_path = resolve(COCO_MASKRCNN_R50_URL, weights_path)
        coco = load_state(coco_path)
    n, _ = load_matching(model, coco, str(coco_path))
    if n == 0:
        raise ModelError("no tensor matches a torchvision Mask R-CNN", coco_path)


def resolve_coco_r101(weights_path: str | Path | None = None) -> tuple[Path, Path]:
    """(COCO R50-FPN Mask R-CNN file, ImageNet R101 file) for the ``coco`` + ``resnet101`` hybrid.

    Both are looked up before either is loaded, so one error names both files and says
    which are missing from the hub cache. ``weights_path`` replaces the COCO file only (the
    R101 trunk always comes from the cache); a given file that does not exist is a
    ``WeightsUnavailableError`` naming it. The error is ``CachedWeightsMissing`` (so
    ``flag_hint`` may offer the caller's weights option) only when the COCO file alone is
    missing.
    """
    coco = Path(weights_path) if weights_path is not None else hub_checkpoint_dir() / file_name(COCO_MASKRCNN_R50_URL)
    if weights_path is not None and not coco.is_file():
        raise WeightsUnavailableError("weights file not found", coco)
    r101 = hub_checkpoint_dir() / file_name(IMAGENET_URLS["resnet101"])
    missing = [p.name for p in (r101, coco) if not p.is_file()]
    if not missing:
        return coco, r101
    coco_what = f"{coco} (given)" if weights_path is not None else file_name(COCO_MASKRCNN_R50_URL)
    cls = CachedWeightsMissing if missing == [coco.name] else WeightsUnavailableError
    raise cls(
        "COCO init of resnet101 needs two pretrained files, offline: "
        f"{file_name(IMAGENET_URLS['resnet101'])} (ImageNet ResNet-101 trunk, from {IMAGENET_URLS['resnet101']}) "
        f"and {coco_what} (COCO Mask R-CNN R50-FPN heads, from {COCO_MASKRCNN_R50_URL}); "
        f"missing from {hub_checkpoint_dir()}: {', '.join(missing)}"
    )
