"""Training: the loop lowers the loss, and `cpt train` writes checkpoints and logs (tiny data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.config import ModelConfig, TrainConfig
from clothparse.model.checkpoint import load_checkpoint
from clothparse.train.loop import fit
from clothparse.train.toy import TOY_CLASSES, ToyShapes, toy_sample

# Tiny but real: the small architecture at a fraction of its width, on 64-96 px images.
TINY = dict(small_widths=[8, 16, 16, 32, 32], fpn_channels=16, fc_size=64, mask_head_channels=16)


def test_training_lowers_the_loss(tmp_path: Path) -> None:
    mc = ModelConfig.small(class_names=list(TOY_CLASSES), min_size=96, max_size=96, **TINY)
    tc = TrainConfig.small(epochs=4, steps_per_epoch=4, validation_steps=1, batch_size=2, warmup_steps=2, seed=0)
    res = fit(mc, tc, ToyShapes(8), ToyShapes(2, seed=1), tmp_path / "run", quiet=True)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4] and res.steps == 16
    first, last = log[0]["train_loss"], log[-1]["train_loss"]
    assert last < 0.7 * first, (first, last)
    assert log[-1]["train_loss_classifier"] < log[0]["train_loss_classifier"]


def _write_dataset(root: Path, n_train: int = 6, n_val: int = 2, size: int = 64) -> Path:
    """A dataset folder in the ARCHITECTURE.md layout, from toy images (masks stored as RLE)."""
    (root / "images").mkdir(parents=True)
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(TOY_CLASSES)]
    ann_id = 1
    for split, ids in (("train", range(n_train)), ("val", range(100, 100 + n_val))):
        images, anns = [], []
        for i in ids:
            img, t = toy_sample(i, size=size)
            name = f"{i:04d}.png"
            Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(root / "images" / name)
            images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
            for m, label, box in zip(t["masks"], t["labels"], t["boxes"], strict=True):
                rle = mask_utils.encode(np.asfortranarray(m.numpy()))
                rle["counts"] = rle["counts"].decode("ascii")
                x0, y0, x1, y1 = box.tolist()
                anns.append({"id": ann_id, "image_id": i + 1, "category_id": int(label), "segmentation": rle,
                             "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(m.sum()), "iscrowd": 0})
                ann_id += 1
        (root / f"{split}.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


def _small_args(data: Path, out: Path) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--backbone", "small", "--epochs", "1",
            "--steps-per-epoch", "2", "--val-steps", "1", "--batch-size", "2", "--min-size", "64",
            "--max-size", "64", "--quiet"]


def test_cli_train_writes_checkpoints_logs_and_resumes(tmp_path: Path) -> None:
    data = _write_dataset(tmp_path / "data")
    out = tmp_path / "run"
    runner = CliRunner()
    r = runner.invoke(app, _small_args(data, out))
    assert r.exit_code == 0, r.output
    for name in ("best.safetensors", "best.json", "last.safetensors", "last.json", "last.optim.safetensors",
                 "log.jsonl", "log.csv"):
        assert (out / name).is_file(), name
    loaded = load_checkpoint(out)
    assert loaded.class_names == list(TOY_CLASSES) and loaded.config.backbone == "small"
    assert loaded.meta["train"]["task"] == "clothing" and loaded.meta["train"]["step"] == 2
    # a second run into the same folder needs --resume; with it, training continues
    r = runner.invoke(app, _small_args(data, out))
    assert r.exit_code == 1 and "--resume" in r.output
    r = runner.invoke(app, [*_small_args(data, out), "--resume", "--epochs", "2"])
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(x["epoch"], x["step"]) for x in log] == [(1, 2), (2, 4)]
    assert (out / "log.csv").read_text().count("\n") == 3
    assert json.loads((out / "last.json").read_text())["resume"]["step"] == 4


def test_time_limit_stops_cleanly_with_a_checkpoint(tmp_path: Path) -> None:
    data = _write_dataset(tmp_path / "data", n_train=4, n_val=1)
    out = tmp_path / "run"
    args = _small_args(data, out)
    args[args.index("--epochs") + 1] = "1000"
    r = CliRunner().invoke(app, [*args, "--time-limit", "0.1"])  # 6 s
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log and log[-1]["wall_s"] < 6.0 + 3.0
    assert log[-1]["epoch"] < 1000 and (out / "best.safetensors").is_file()


@pytest.mark.parametrize("what", ["missing_folder", "no_val_json", "bad_backbone"])
def test_cli_bad_input_is_one_line_error(tmp_path: Path, what: str) -> None:
    data = tmp_path / "data"
    args = _small_args(data, tmp_path / "run")
    if what == "no_val_json":
        _write_dataset(data, n_train=1, n_val=1)
        (data / "val.json").unlink()
    elif what == "bad_backbone":
        _write_dataset(data, n_train=1, n_val=1)
        args[args.index("small")] = "vgg16"
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert {"missing_folder": "data", "no_val_json": "val.json", "bad_backbone": "vgg16"}[what] in lines[0]


def test_lr_warmup_and_drop() -> None:
    from clothparse.train.loop import lr_at

    tc = TrainConfig(lr=0.01, warmup_steps=10)
    assert lr_at(tc, 0, False) == pytest.approx(0.001)
    assert lr_at(tc, 9, False) == pytest.approx(0.01)
    assert lr_at(tc, 500, True) == pytest.approx(0.001)
    assert torch.isfinite(torch.tensor(lr_at(TrainConfig(warmup_steps=0), 0, False)))


@pytest.mark.parametrize("missing", ["resnet101-63fe2227.pth", "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth", "both"])
def test_init_coco_resnet101_names_both_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    """`--init coco` for ResNet-101 needs the ImageNet R101 trunk and the COCO R50 heads:
    a missing one is a one-line error naming both files and the one that is missing."""
    from clothparse.model.weights import COCO_MASKRCNN_R50_URL, IMAGENET_URLS, file_name

    names = [file_name(IMAGENET_URLS["resnet101"]), file_name(COCO_MASKRCNN_R50_URL)]
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    for name in names:
        if missing not in (name, "both"):
            (hub / "checkpoints" / name).write_bytes(b"never read: both files are looked up first")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    data = _write_dataset(tmp_path / "data", n_train=1, n_val=1)
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--backbone", "resnet101",
            "--init", "coco", "--epochs", "1", "--steps-per-epoch", "1", "--device", "cpu", "--quiet"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert all(name in lines[0] for name in names) and str(hub / "checkpoints") in lines[0]
    gone = names if missing == "both" else [missing]
    assert lines[0].split("missing from ")[1].split(": ", 1)[1].startswith(", ".join(gone))
    # Only the COCO file can be replaced by --weights; the R101 trunk comes from the cache.
    assert ("--weights" in lines[0]) == (missing == names[1])


def test_default_schedule_covers_the_originals() -> None:
    """The original trained 150 epochs x 100 steps x batch 4 = 60,000 images; so does `cpt train`."""
    from clothparse.train.run import TrainOptions, configs

    _, tc = configs(TrainOptions(data=Path("d"), out=Path("o")))
    assert tc.epochs * tc.steps_per_epoch * tc.batch_size >= 60_000
    assert (tc.batch_size, tc.steps_per_epoch, tc.validation_steps, tc.lr) == (4, 100, 50, 0.001)
