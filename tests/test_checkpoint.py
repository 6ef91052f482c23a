"""Checkpoints: safetensors + JSON round trip, folder resolution, and every way loading must fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from clothparse.config import ModelConfig
from clothparse.errors import ModelError
from clothparse.model.builder import build_model
from clothparse.model.checkpoint import (
    FORMAT,
    load_checkpoint,
    load_optimizer,
    save_checkpoint,
    save_optimizer,
)
from clothparse.train.toy import TOY_CLASSES, toy_sample


def _cfg() -> ModelConfig:
    return ModelConfig.small(class_names=list(TOY_CLASSES), min_size=96, max_size=96, small_widths=[8, 8, 16, 16, 32], fpn_channels=16)


def _trained_model(cfg: ModelConfig) -> torch.nn.Module:
    """A model whose BatchNorm statistics and weights are no longer the initial ones."""
    m = build_model(cfg)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    img, t = toy_sample(1)
    loss = sum(m([img], [t]).values())
    loss.backward()
    opt.step()
    return m.eval()


def test_round_trip_same_state_and_outputs(tmp_path: Path) -> None:
    cfg = _cfg()
    m = _trained_model(cfg)
    w = save_checkpoint(tmp_path / "run" / "best", m, cfg, {"epoch": 3, "step": 30, "metrics": {"val_loss": 1.5}})
    assert w.name == "best.safetensors" and (tmp_path / "run" / "best.json").is_file()
    loaded = load_checkpoint(tmp_path / "run")
    assert not loaded.model.training
    assert loaded.config == cfg and loaded.class_names == list(TOY_CLASSES)
    sd, sd2 = m.state_dict(), loaded.model.state_dict()
    assert set(sd) == set(sd2) and all(torch.equal(sd[k], sd2[k]) for k in sd)
    meta = loaded.meta
    assert meta["format"] == FORMAT and meta["image_mean"] == cfg.image_mean
    assert meta["train"]["epoch"] == 3 and meta["train"]["torch"] == torch.__version__
    img, _ = toy_sample(7)
    with torch.no_grad():
        a, b = m([img])[0], loaded.model([img])[0]
    for k in ("boxes", "scores", "labels", "masks"):
        assert torch.equal(a[k], b[k])


def test_folder_prefers_best_then_last_and_accepts_json(tmp_path: Path) -> None:
    cfg = _cfg()
    m = build_model(cfg)
    save_checkpoint(tmp_path / "last", m, cfg, {"epoch": 1})
    assert load_checkpoint(tmp_path).meta["train"]["epoch"] == 1
    save_checkpoint(tmp_path / "best", m, cfg, {"epoch": 2})
    assert load_checkpoint(tmp_path).meta["train"]["epoch"] == 2
    assert load_checkpoint(tmp_path / "last.json").meta["train"]["epoch"] == 1
    assert load_checkpoint(tmp_path / "last.safetensors").meta["train"]["epoch"] == 1


def test_no_pickle_in_weights_file(tmp_path: Path) -> None:
    cfg = _cfg()
    w = save_checkpoint(tmp_path / "m", build_model(cfg), cfg, {})
    header_len = int.from_bytes(w.read_bytes()[:8], "little")
    header = json.loads(w.read_bytes()[8 : 8 + header_len])  # the safetensors layout: plain JSON header
    assert "backbone.body.stem.0.weight" in header


def _saved(tmp_path: Path) -> tuple[Path, Path]:
    cfg = _cfg()
    w = save_checkpoint(tmp_path / "m", build_model(cfg), cfg, {})
    return w, tmp_path / "m.json"


@pytest.mark.parametrize(
    "damage",
    ["truncate_weights", "garbage_json", "missing_weights", "missing_json", "wrong_format", "bad_config"],
)
def test_damaged_checkpoint_is_one_line_model_error(tmp_path: Path, damage: str) -> None:
    w, j = _saved(tmp_path)
    if damage == "truncate_weights":
        w.write_bytes(w.read_bytes()[:100])
    elif damage == "garbage_json":
        j.write_text("{not json")
    elif damage == "missing_weights":
        w.unlink()
    elif damage == "missing_json":
        j.unlink()
    elif damage == "wrong_format":
        doc = json.loads(j.read_text())
        doc["format"] = "something-else/9"
        j.write_text(json.dumps(doc))
    elif damage == "bad_config":
        doc = json.loads(j.read_text())
        doc["model_config"]["backbone"] = "vgg"
        j.write_text(json.dumps(doc))
    with pytest.raises(ModelError) as e:
        load_checkpoint(w)
    assert "\n" not in str(e.value) and ("m.json" in str(e.value) or "m.safetensors" in str(e.value))


@pytest.mark.parametrize(
    ("key", "value", "expect"),
    [
        ("fc_size", 128, "shape mismatch"),
        ("class_names", ["a", "b", "c"], "shape mismatch"),
        ("mask_head_layers", 5, "missing keys"),
        ("mask_head_layers", 1, "unexpected keys"),
    ],
)
def test_json_that_does_not_match_weights(tmp_path: Path, key: str, value: object, expect: str) -> None:
    _, j = _saved(tmp_path)
    doc = json.loads(j.read_text())
    doc["model_config"][key] = value
    j.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match=expect) as e:
        load_checkpoint(tmp_path / "m.json")
    assert "m.safetensors" in str(e.value)


def test_not_a_checkpoint_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no best\.safetensors"):
        load_checkpoint(tmp_path)
    with pytest.raises(ModelError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "model.pt")


def test_optimizer_state_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for _ in range(2):
        opt.zero_grad()
        net(torch.randn(5, 4)).sum().backward()
        opt.step()
    info = save_optimizer(tmp_path / "o.safetensors", opt)
    json.dumps(info)  # the non-tensor part must be plain JSON
    opt2 = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    load_optimizer(tmp_path / "o.safetensors", opt2, json.loads(json.dumps(info)))
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i in s1["state"]:
        assert torch.equal(s1["state"][i]["momentum_buffer"], s2["state"][i]["momentum_buffer"])
