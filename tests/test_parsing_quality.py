"""The parsing-quality ablation (bench/parsing_quality.py) on a tiny synthetic split."""

from __future__ import annotations

import json

import pytest
from clothparse.bench import parsing_quality
from helpers_parse import save_tiny
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.data.synth.writer import write_dataset
from clothparse.taxonomy import NUM_PARSING_LABELS


def test_ablation_report_is_wellformed(tmp_path, capsys):
    data = tmp_path / "data"
    write_dataset(data, n=6, size=96, seed=3, ratios=(0.5, 0.5, 0.0))
    cloth = save_tiny(tmp_path / "cloth")
    body = save_tiny(tmp_path / "body", class_names=["person"], seed=1)
    out = tmp_path / "q.json"
    parsing_quality.main([
        "--model", str(cloth), "--body-model", str(body), "--data", str(data), "--split", "val",
        "--score-thresh", "0.0", "--body-score-thresh", "0.0", "--superpixels", "skimage",
        "--out", str(out),
    ])
    report = json.loads(out.read_text())
    assert report["n_images"] == 3 and report["image_sizes_wxh"] == {"96x96": 3}
    assert report["boundary_tol_px"] == 2.0 and report["skipped"] == []
    assert list(report["variants"]) == list(parsing_quality.VARIANTS)
    for name, vote, rule in parsing_quality.VARIANT_SPECS:
        v = report["variants"][name]
        assert (v["vote"], v["skin_rule"]) == (vote, rule)
        assert v["n_images"] == 3
        assert len(v["per_class"]) == NUM_PARSING_LABELS
        # Every ground-truth pixel of the three 96x96 images is counted exactly once.
        assert sum(c["gt_pixels"] for c in v["per_class"]) == 3 * 96 * 96
        assert 0.0 <= v["pixel_acc"] <= 1.0
        assert v["boundary_f"] is None or 0.0 <= v["boundary_f"] <= 1.0
    table = capsys.readouterr().out
    assert "| **mIoU** |" in table and "| boundary F (2 px) |" in table
    assert all(f"| {name} |" in table for name in parsing_quality.VARIANTS)


def test_ablation_on_portrait_photos_from_cpt_data_synth(tmp_path, capsys):
    """`cpt data synth --size HxW` makes portrait photos (like ModaNet's 400 wide x 600 tall); the bench runs on them."""
    data = tmp_path / "data"
    r = CliRunner().invoke(app, ["data", "synth", "--out", str(data), "--n", "2", "--size", "96x64",
                                 "--seed", "2", "--ratios", "0,1,0", "-q"])
    assert r.exit_code == 0, r.output
    meta = json.loads((data / "synth.json").read_text())
    assert meta["size"] == "96x64"
    assert {(im["width"], im["height"]) for im in json.loads((data / "val.json").read_text())["images"]} == {(64, 96)}
    cloth = save_tiny(tmp_path / "cloth")
    body = save_tiny(tmp_path / "body", class_names=["person"], seed=1)
    out = tmp_path / "q.json"
    parsing_quality.main([
        "--model", str(cloth), "--body-model", str(body), "--data", str(data), "--split", "val",
        "--score-thresh", "0.0", "--body-score-thresh", "0.0", "--superpixels", "skimage",
        "--boundary-tol", "3", "--out", str(out),
    ])
    report = json.loads(out.read_text())
    assert report["image_sizes_wxh"] == {"64x96": 2} and report["boundary_tol_px"] == 3.0
    assert all(sum(c["gt_pixels"] for c in v["per_class"]) == 2 * 64 * 96 for v in report["variants"].values())
    assert "sizes WxH: 64x96 (2)" in capsys.readouterr().out


def test_unknown_vote_or_skin_rule_is_skipped() -> None:
    assert parsing_quality.fusion_params("area", "growth") is not None
    assert parsing_quality.fusion_params("nope", "growth") is None
    assert parsing_quality.fusion_params("area", "nope") is None


@pytest.mark.parametrize("text", ["600x400", "600X400", "256", "256x256"])
def test_synth_size_parsing(text: str) -> None:
    from clothparse.data.synth.writer import parse_size

    assert parse_size(text) == {"600x400": (600, 400), "600X400": (600, 400), "256": 256, "256x256": 256}[text]
