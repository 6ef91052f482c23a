"""The parsing-quality ablation (bench/parsing_quality.py) on a tiny synthetic split."""

from __future__ import annotations

from clothparse.bench import parsing_quality
from helpers_parse import save_tiny

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
    import json

    report = json.loads(out.read_text())
    assert report["n_images"] == 3
    for name in parsing_quality.VARIANTS:
        v = report["variants"][name]
        assert v["n_images"] == 3
        assert len(v["per_class"]) == NUM_PARSING_LABELS
        # Every ground-truth pixel of the three 96x96 images is counted exactly once.
        assert sum(c["gt_pixels"] for c in v["per_class"]) == 3 * 96 * 96
        assert 0.0 <= v["pixel_acc"] <= 1.0
    table = capsys.readouterr().out
    assert "| **mIoU** |" in table and table.count("\n|") >= 4
