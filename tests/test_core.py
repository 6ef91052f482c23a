"""Taxonomy, configuration, atomic writes and the CLI error formatter."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from clothparse import taxonomy
from clothparse.cli.app import app
from clothparse.cli.errors import format_error
from clothparse.config import ModelConfig, TrainConfig
from clothparse.errors import ConfigError, DataError
from clothparse.io.atomic import atomic_open, write_json

ROOT = Path(__file__).resolve().parents[1]


def test_taxonomy_ids_names_palette():
    assert taxonomy.NUM_CLOTHING_CLASSES == 13
    assert taxonomy.class_name(1) == "bag" and taxonomy.class_name(13) == "scarf/tie"
    assert taxonomy.class_id("pants") == 8
    assert taxonomy.PALETTE.shape == (taxonomy.NUM_PARSING_LABELS, 3)
    # Distinct colours, so a label map can be read back from its overlay colours.
    assert len({tuple(c) for c in taxonomy.PALETTE.tolist()}) == taxonomy.NUM_PARSING_LABELS
    assert len(taxonomy.palette_flat()) == 768
    with pytest.raises(ValueError):
        taxonomy.class_name(14)
    with pytest.raises(ValueError):
        taxonomy.class_id("hat")


def test_cpt_train_without_options_trains_with_the_seed_hyperparameters(tmp_path, monkeypatch):
    """``cpt train DATA OUT`` with no tuning options hands training the seed's settings, and
    they reach what runs: the SGD optimiser, the lr after warm-up, the batches, the epoch
    length, and (through ``ModelConfig``) the model's thresholds and input size."""
    import torch

    from clothparse.train import loop, run
    from clothparse.train.data import make_loader
    from clothparse.train.distributed import DistInfo

    class Tiny(list):
        class_names = tuple(taxonomy.MODANET_CLASSES)

    seen: dict[str, object] = {}

    def fake_fit(mc, tc, train_ds, val_ds, out, **kw):
        seen.update(mc=mc, tc=tc)
        raise ConfigError("stop here")

    monkeypatch.setattr(run, "open_datasets", lambda *a, **k: (Tiny([(torch.zeros(3, 4, 4), {})] * 9), Tiny()))
    monkeypatch.setattr(run, "fit", fake_fit)
    res = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert "stop here" in res.output and res.exit_code == 1, res.output
    mc, tc = seen["mc"], seen["tc"]
    assert isinstance(mc, ModelConfig) and isinstance(tc, TrainConfig)
    assert (mc.backbone, mc.min_size, mc.max_size) == ("resnet101", 800, 1024)
    assert (mc.score_thresh, mc.nms_thresh, mc.rpn_nms_thresh, mc.fc_size) == (0.9, 0.3, 0.7, 1024)
    opt = loop._make_optimizer([torch.nn.Parameter(torch.zeros(1))], tc, None, {})
    assert [(g["lr"], g["momentum"], g["weight_decay"]) for g in opt.param_groups] == [(0.001, 0.9, 1e-4)]
    assert loop.lr_at(tc, tc.warmup_steps + 5, False) == pytest.approx(0.001)
    nine: Any = Tiny([(torch.zeros(3, 4, 4), {})] * 9)
    loader, _ = make_loader(nine, tc.batch_size, 0, DistInfo(), 0, shuffle=True)
    assert [len(images) for images, _ in loader] == [4, 4, 1]
    assert (tc.steps_per_epoch, tc.validation_steps) == (100, 50)


def test_config_round_trip_and_validation():
    cfg = ModelConfig.small()
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    t = TrainConfig(epochs=3)
    assert TrainConfig.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    with pytest.raises(ConfigError):
        ModelConfig(backbone="vgg").validate()
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({"bogus": 1})
    with pytest.raises(ConfigError):
        ModelConfig(min_size=900, max_size=800).validate()


def test_old_checkpoint_metadata_with_strides_still_loads():
    # ``strides`` was a ModelConfig field until it was removed as unused; checkpoints
    # written before that carry it in their metadata.
    old = {**ModelConfig.small().to_dict(), "strides": [4, 8, 16, 32, 64]}
    cfg = ModelConfig.from_dict(old)
    assert cfg == ModelConfig.small() and "strides" not in cfg.to_dict()
    ref = json.loads((ROOT / "tests/assets/reference-small/best.json").read_text())["model_config"]
    assert "strides" in ref and ModelConfig.from_dict(ref).backbone == "small"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_open(target, "w") as fh:
        fh.write("partial")
        raise RuntimeError("boom")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_error_formatter_one_line():
    assert format_error(DataError("bad\nthing", "x.jpg")) == "x.jpg: bad thing"
    assert format_error(FileNotFoundError(2, "No such file", "a.json")) == "a.json: no such file or directory"
    assert format_error(KeyError("k")).startswith("KeyError")


def test_cli_version_and_help():
    runner = CliRunner()
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and "clothparse" in res.output
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("train", "eval", "export", "parse", "bench", "data"):
        assert cmd in res.output


def test_export_and_bench_install_under_the_clothparse_namespace():
    """export/ and bench/ sit at the top level but must import as clothparse.export/.bench."""
    import clothparse.bench
    import clothparse.export

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = cfg["tool"]["scikit-build"]["wheel"]["packages"]
    assert mapping == {"clothparse": "clothparse", "clothparse/export": "export", "clothparse/bench": "bench"}
    assert Path(clothparse.export.__file__).resolve().parent == ROOT / "export"
    assert Path(clothparse.bench.__file__).resolve().parent == ROOT / "bench"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_palette_png_round_trip(tmp_path):
    from PIL import Image

    labels = np.arange(15, dtype=np.uint8).reshape(3, 5)
    img = Image.fromarray(labels, mode="P")
    img.putpalette(taxonomy.palette_flat())
    img.save(tmp_path / "l.png")
    back = Image.open(tmp_path / "l.png")
    assert back.mode == "P"
    np.testing.assert_array_equal(np.asarray(back), labels)
