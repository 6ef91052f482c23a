"""Model builder and pretrained initialisation (offline: weights come from files the test writes)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.ops import misc as misc_nn_ops

from clothparse.config import ModelConfig
from clothparse.errors import ConfigError, ModelError, WeightsUnavailableError
from clothparse.model import weights
from clothparse.model.builder import body_config, build_model
from clothparse.train.toy import TOY_CLASSES, toy_sample


class _Evil:
    """Any pickled class instance: ``weights_only`` loading must refuse it."""


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the torch hub cache at an empty folder (no cached weights)."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


@pytest.mark.parametrize("backbone", ["resnet101", "resnet50"])
def test_resnet_models_build_with_seed_settings(backbone: str) -> None:
    cfg = ModelConfig(backbone=backbone)
    m = build_model(cfg)
    assert m.roi_heads.box_predictor.cls_score.out_features == 14  # 13 ModaNet + background
    assert m.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 14
    assert m.roi_heads.box_head.fc6.out_features == 1024
    assert m.roi_heads.score_thresh == 0.9 and m.roi_heads.nms_thresh == 0.3
    assert m.rpn.nms_thresh == 0.7
    assert m.transform.min_size == (800,) and m.transform.max_size == 1024
    assert [s[0] for s in m.rpn.anchor_generator.sizes] == [32, 64, 128, 256, 512]
    assert all(r == (0.5, 1.0, 2.0) for r in m.rpn.anchor_generator.aspect_ratios)
    assert m.roi_heads.detections_per_img == 100
    # The seed's strides 4-64: one anchor size per FPN level P2-P6 at those strides.
    with torch.no_grad():
        feats = m.eval().backbone(torch.rand(1, 3, 64, 64))
    assert [64 // f.shape[-1] for f in feats.values()] == [4, 8, 16, 32, 64]
    assert len(feats) == len(m.rpn.anchor_generator.sizes)
    assert isinstance(m.backbone.body.bn1, misc_nn_ops.FrozenBatchNorm2d)
    n_blocks = len(m.backbone.body.layer3)
    assert n_blocks == (23 if backbone == "resnet101" else 6)


def test_body_config_matches_torchvision_coco_model() -> None:
    cfg = body_config()
    assert cfg.num_classes == 91 and cfg.class_names[0] == "person"
    ours = build_model(cfg).state_dict()
    ref = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91
    )
    # torchvision's pretrained model has FrozenBatchNorm (no num_batches_tracked buffers)
    ref_sd = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert set(ours) == set(ref_sd)
    assert all(ours[k].shape == ref_sd[k].shape for k in ours)


@pytest.mark.parametrize("train", [True, False])
def test_small_model_runs_five_levels(train: bool) -> None:
    cfg = ModelConfig.small(class_names=list(TOY_CLASSES), min_size=128, max_size=128)
    m = build_model(cfg)
    img, target = toy_sample(3, size=128)
    feats = m.backbone(torch.rand(1, 3, 128, 128))
    assert [f.shape[-1] for f in feats.values()] == [32, 16, 8, 4, 2]  # strides 4..64
    assert all(f.shape[1] == cfg.fpn_channels for f in feats.values())
    if train:
        m.train()
        losses = m([img], [target])
        assert set(losses) == {
            "loss_classifier",
            "loss_box_reg",
            "loss_mask",
            "loss_objectness",
            "loss_rpn_box_reg",
        }
        assert all(torch.isfinite(v) for v in losses.values())
    else:
        m.eval()
        with torch.no_grad():
            out = m([img])[0]
        n = out["boxes"].shape[0]
        assert out["masks"].shape == (n, 1, 128, 128)
        assert n <= cfg.detections_per_img


def test_offline_without_weights_names_the_file(empty_hub: Path) -> None:
    with pytest.raises(WeightsUnavailableError) as e:
        build_model(ModelConfig(backbone="resnet50"), init="coco")
    msg = str(e.value)
    assert (
        "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth" in msg and str(empty_hub / "checkpoints") in msg
    )
    # The library serves several commands, so its message names no flag; each command adds its own.
    assert "--" not in msg and "\n" not in msg
    with pytest.raises(WeightsUnavailableError, match=r"resnet101-63fe2227\.pth"):
        build_model(ModelConfig(backbone="resnet101"), init="imagenet")


def test_flag_hint_names_the_calling_commands_option(empty_hub: Path) -> None:
    with pytest.raises(WeightsUnavailableError) as e, weights.flag_hint("--body-model"):
        build_model(ModelConfig(backbone="resnet50"), init="coco")
    msg = str(e.value)
    assert msg.endswith(", or pass --body-model FILE") and "maskrcnn_resnet50_fpn_coco" in msg
    assert "--weights" not in msg and "\n" not in msg
    # The R101 trunk for the COCO hybrid comes from the cache only: the caller's file replaces
    # the COCO model, not the trunk, so no option is offered for it.
    coco = empty_hub.parent / "coco.pth"
    torch.save(build_model(ModelConfig(backbone="resnet50"), init="none").state_dict(), coco)
    with pytest.raises(WeightsUnavailableError) as e, weights.flag_hint("--weights"):
        build_model(ModelConfig(backbone="resnet101"), init="coco", weights_path=coco)
    assert "resnet101-63fe2227.pth" in str(e.value) and "--weights" not in str(e.value)
    # An explicit file that is missing names the file, with no hint.
    with pytest.raises(WeightsUnavailableError, match="weights file not found") as e, weights.flag_hint("--weights"):
        build_model(ModelConfig(backbone="resnet50"), init="coco", weights_path=empty_hub / "nope.pth")
    assert "--weights" not in str(e.value)


def test_coco_init_loads_matching_tensors_and_skips_predictors(
    tmp_path: Path, empty_hub: Path
) -> None:
    src = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91
    )
    path = tmp_path / "coco.pth"
    torch.save(src.state_dict(), path)
    m = build_model(ModelConfig(backbone="resnet50"), init="coco", weights_path=path)
    sd, ref = m.state_dict(), src.state_dict()
    assert torch.equal(
        sd["backbone.body.layer2.0.conv1.weight"], ref["backbone.body.layer2.0.conv1.weight"]
    )
    assert torch.equal(sd["roi_heads.mask_head.0.0.weight"], ref["roi_heads.mask_head.0.0.weight"])
    assert torch.equal(sd["rpn.head.cls_logits.weight"], ref["rpn.head.cls_logits.weight"])
    # class-specific layers differ in shape (91 vs 14 classes): kept random
    assert sd["roi_heads.box_predictor.cls_score.weight"].shape[0] == 14


def test_coco_file_found_in_hub_cache(empty_hub: Path) -> None:
    src = build_model(body_config())
    (empty_hub / "checkpoints").mkdir(parents=True)
    torch.save(
        src.state_dict(), empty_hub / "checkpoints" / "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
    )
    from clothparse.model.builder import build_body_model

    m = build_body_model()
    assert not m.training
    for k, v in src.state_dict().items():
        assert torch.equal(m.state_dict()[k], v), k


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with path.open("wb") as fh:
        pickle.dump({"x": _Evil()}, fh, protocol=2)
    with pytest.raises(ModelError, match=r"evil\.pth"):
        weights.load_state(path)


def test_small_backbone_has_no_pretrained_weights() -> None:
    with pytest.raises(ConfigError, match="--init none"):
        build_model(ModelConfig.small(), init="imagenet")
