"""`cpt parse` through the CLI: inputs, outputs, toggles, skip-existing, COCO results, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers_parse import save_tiny, synthetic_photo
from PIL import Image
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.parse.mask_codec import decode_rle
from clothparse.taxonomy import PALETTE

runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("models")
    return save_tiny(d / "clothing"), save_tiny(d / "body", ["person"], seed=1)


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "folder").mkdir(parents=True)
    (root / "globbed").mkdir()
    Image.fromarray(synthetic_photo(160, 120, seed=1)).save(root / "folder" / "one.png")
    Image.fromarray(synthetic_photo(128, 128, seed=2)).save(root / "folder" / "two.jpg", quality=95)
    Image.fromarray(synthetic_photo(140, 100, seed=3)).save(root / "globbed" / "three.png")
    Image.fromarray(synthetic_photo(140, 100, seed=4)).save(root / "globbed" / "skip.bmp")
    return root


def _args(models: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    clothing, body = models
    return [
        "--model",
        str(clothing),
        "--body-model",
        str(body),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--score-thresh",
        "0",
        "--body-score-thresh",
        "0",
        "--n-segments",
        "60",
        "--superpixels",
        "skimage",
        "--quiet",
        *extra,
    ]


def _run(args: list[str]):
    return runner.invoke(app, ["parse", *args])


def test_parse_folder_and_glob(models, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _run([str(photos / "folder"), str(photos / "globbed" / "*.png"), *_args(models, out)])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            f"{n}{s}"
            for n in ("one", "two", "three")
            for s in (".json", "_labels.png", "_overlay.png")
        ]
        + ["results_coco.json"]
    )
    rec = json.loads((out / "one.json").read_text())
    assert rec["image"]["width"] == 120 and rec["image"]["height"] == 160
    assert rec["superpixels"] is True and len(rec["items"]) > 0
    assert set(rec["items"][0]) >= {
        "class",
        "score",
        "box",
        "mask",
        "polygons",
        "area",
        "changed_by_superpixels",
    }
    assert set(rec["timings_ms"]) == {
        "decode",
        "clothing_model",
        "body_model",
        "superpixels",
        "fusion",
        "encode",
    }
    labels = Image.open(out / "one_labels.png")
    assert labels.mode == "P" and labels.size == (120, 160) and np.asarray(labels).max() <= 14
    results = json.loads((out / "results_coco.json").read_text())
    assert {r["image_id"] for r in results} <= {1, 2, 3} and results
    assert all(len(r["bbox"]) == 4 and r["segmentation"]["counts"] for r in results)
    assert "parsed" in res.output and "all" in res.output  # the summary table
    # No --ann: the ids are positions, and the command says so once, on stderr.
    warnings = [ln for ln in res.stderr.splitlines() if "image ids are positions" in ln]
    assert len(warnings) == 1 and str(out / "results_coco.json") in warnings[0] and "--ann" in warnings[0], res.stderr


def test_results_are_accepted_by_eval(models, photos: Path, tmp_path: Path) -> None:
    from clothparse.evaluate.coco_eval import load_gt
    from clothparse.evaluate.runner import load_results
    from clothparse.taxonomy import coco_categories

    ann = tmp_path / "test.json"
    sizes = {"one.png": (160, 120), "two.jpg": (128, 128)}
    doc = {
        "images": [
            {"id": 10 + k, "file_name": n, "height": h, "width": w}
            for k, (n, (h, w)) in enumerate(sizes.items())
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 10,
                "category_id": 9,
                "bbox": [30, 30, 60, 50],
                "area": 3000,
                "iscrowd": 0,
                "segmentation": [[30, 30, 90, 30, 90, 80, 30, 80]],
            }
        ],
        "categories": coco_categories(),
    }
    ann.write_text(json.dumps(doc))
    out = tmp_path / "out"
    res = _run([str(photos / "folder"), *_args(models, out, "--ann", str(ann))])
    assert res.exit_code == 0, res.output
    assert "image ids are positions" not in res.output  # --ann given: the ids are the file's
    results_path = out / "results_coco.json"
    kept, other = load_results(results_path, load_gt(ann))
    assert other == 0 and kept and {r["image_id"] for r in kept} <= {10, 11}
    ev = runner.invoke(
        app,
        [
            "eval",
            "--results",
            str(results_path),
            "--data",
            str(tmp_path),
            "--split",
            "test",
            "--out",
            str(tmp_path / "eval.json"),
        ],
    )
    assert ev.exit_code == 0, ev.output


def test_skip_existing(models, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [str(photos / "folder"), *_args(models, out)]
    assert _run(args).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("one*")}
    results_before = json.loads((out / "results_coco.json").read_text())
    (out / "two_overlay.png").unlink()  # incomplete outputs are redone
    res = _run([*args, "--skip-existing"])
    assert res.exit_code == 0, res.output
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("one*")} == before
    assert (out / "two_overlay.png").is_file()
    assert "1 parsed, 1 skipped" in res.output
    assert len(json.loads((out / "results_coco.json").read_text())) == len(results_before)


def test_no_superpixel_and_toggles(models, photos: Path, tmp_path: Path) -> None:
    one = str(photos / "folder" / "one.png")
    out = tmp_path / "pix"
    res = _run([one, *_args(models, out, "--no-superpixel")])
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "one.json").read_text())
    assert rec["superpixels"] is False and not any(
        it["changed_by_superpixels"] for it in rec["items"]
    )
    assert rec["timings_ms"]["superpixels"] == 0
    plain, toggled = tmp_path / "plain", tmp_path / "toggled"
    assert _run([one, *_args(models, plain, "--vote", "centroid")]).exit_code == 0
    res = _run(
        [
            one,
            *_args(
                models,
                toggled,
                "--vote",
                "centroid",
                "--show-boxes",
                "--show-superpixels",
                "--unpredicted-only",
            ),
        ]
    )
    assert res.exit_code == 0, res.output
    a = np.asarray(Image.open(plain / "one_overlay.png"))
    b = np.asarray(Image.open(toggled / "one_overlay.png"))
    # The photo part differs; the legend (unpredicted-only names only what it colours) may too.
    assert (a[:160, :120] != b[:160, :120]).any()
    assert (plain / "one_labels.png").read_bytes() == (toggled / "one_labels.png").read_bytes()
    for flag in ("--show-superpixels", "--unpredicted-only"):
        bad = _run([one, *_args(models, tmp_path / "x", "--no-superpixel", flag)])
        assert bad.exit_code == 1 and "need the superpixel stage" in bad.output


# ---------------------------------------------------------------- views and display toggles


def _overlay(folder: Path, name: str = "one") -> np.ndarray:
    return np.asarray(Image.open(folder / f"{name}_overlay.png").convert("RGB"))


def _record(folder: Path, name: str = "one") -> dict:
    rec = json.loads((folder / f"{name}.json").read_text())
    rec.pop("timings_ms")
    return rec


def _painted_body(over: np.ndarray, photo: np.ndarray, labels: np.ndarray) -> int:
    """Pixels of label 14 that carry the parse view's skin/body blend (alpha 0.55 / 2)."""
    a = np.float32(0.275)
    blend = np.clip(photo.astype(np.float32) * (1 - a) + PALETTE[14].astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)
    h, w = labels.shape
    part = over[:h, :w]
    return int(((part == blend).all(-1) & (part != photo).any(-1) & (labels == 14)).sum())


def test_views_change_only_the_overlay(models, photos: Path, tmp_path: Path) -> None:
    one = photos / "folder" / "one.png"
    photo = np.asarray(Image.open(one).convert("RGB"))
    outs = {view: tmp_path / view for view in ("parse", "clothing", "body")}
    for view, out in outs.items():
        # --vote area: on this random model's photo it leaves body superpixels for the checks below.
        res = _run([str(one), *_args(models, out, "--view", view.upper() if view == "body" else view, "--vote", "area")])
        assert res.exit_code == 0, res.output
    labels_png = {(out / "one_labels.png").read_bytes() for out in outs.values()}
    assert len(labels_png) == 1
    assert _record(outs["parse"]) == _record(outs["clothing"]) == _record(outs["body"])
    labels = np.asarray(Image.open(outs["parse"] / "one_labels.png"))
    over = {view: _overlay(out) for view, out in outs.items()}
    h, w = labels.shape
    # Body view: the person masks of the record, and nothing else.
    rec = _record(outs["parse"])
    person = np.zeros((h, w), bool)
    for rle in rec["body"]["masks"]:
        person |= decode_rle(rle).astype(bool)
    assert person.any() and not person.all()
    body = over["body"][:h, :w]
    np.testing.assert_array_equal(body[~person], photo[~person])
    assert (body[person] != photo[person]).any(-1).mean() > 0.9
    # Clothing view: no body layer; the parse view has one.
    assert (labels == 14).any() and _painted_body(over["parse"], photo, labels) > 0
    assert _painted_body(over["clothing"], photo, labels) == 0
    assert not np.array_equal(over["clothing"], over["parse"])


def test_boxes_and_unpredicted_only(models, photos: Path, tmp_path: Path) -> None:
    from clothparse.parse.views import class_boxes

    one = photos / "folder" / "one.png"
    photo = np.asarray(Image.open(one).convert("RGB"))
    outs = {}
    for name, extra in (("plain", ()), ("refined", ("--show-boxes",)), ("detector", ("--detector-boxes",)),
                        ("unpredicted", ("--unpredicted-only",))):
        outs[name] = tmp_path / name
        # --vote area: the label map these drawing checks were sized on (captions cover few box edges).
        res = _run([str(one), *_args(models, outs[name], *extra, "--vote", "area")])
        assert res.exit_code == 0, res.output
        assert (outs[name] / "one_labels.png").read_bytes() == (outs["plain"] / "one_labels.png").read_bytes()
    labels = np.asarray(Image.open(outs["plain"] / "one_labels.png"))
    over = {name: _overlay(out) for name, out in outs.items()}
    assert len({o.tobytes() for o in over.values()}) == 4
    # --show-boxes: the class colour along the boxes of the label map's regions (bar where
    # a caption or a later box lies on them).
    boxes = class_boxes(labels)
    assert boxes
    hits = total = 0
    for (x0, y0, x1, y1), c in boxes:
        x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
        for edge in (over["refined"][y1, x0 : x1 + 1], over["refined"][y0 : y1 + 1, x1]):
            hits += int((edge == PALETTE[c]).all(-1).sum())
            total += len(edge)
    assert hits > 0.8 * total
    # --unpredicted-only: no skin/body colour (it once painted leftover body).
    assert _painted_body(over["plain"], photo, labels) > 0
    assert _painted_body(over["unpredicted"], photo, labels) == 0


def test_body_model_none(models, photos: Path, tmp_path: Path) -> None:
    one = photos / "folder" / "one.png"
    out = tmp_path / "nobody"
    args = _args(models, out, "--view", "body")
    args[args.index("--body-model") + 1] = "None"
    res = _run([str(one), *args])
    assert res.exit_code == 0, res.output
    labels = np.asarray(Image.open(out / "one_labels.png"))
    rec = _record(out)
    assert rec["body"] == {"boxes": [], "scores": [], "masks": []} and rec["items"]
    assert not (labels == 14).any() and (labels > 0).any()
    photo = np.asarray(Image.open(one).convert("RGB"))
    np.testing.assert_array_equal(_overlay(out)[: labels.shape[0], : labels.shape[1]], photo)  # nobody to colour


def test_view_option_errors(models, photos: Path, tmp_path: Path) -> None:
    one = str(photos / "folder" / "one.png")
    res = _run([one, *_args(models, tmp_path / "o", "--view", "skeleton")])
    assert res.exit_code == 1 and "error: --view: unknown view 'skeleton'" in res.output
    res = _run([one, *_args(models, tmp_path / "o", "--view", "clothing", "--unpredicted-only")])
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: --unpredicted-only"), res.output
    assert not (tmp_path / "o").exists()


def test_option_errors(models, photos: Path, tmp_path: Path) -> None:
    one = str(photos / "folder" / "one.png")
    res = _run([one, *_args(models, tmp_path / "o", "--vote", "majority")])
    assert res.exit_code == 1 and "error: --vote" in res.output
    res = _run([one, *_args(models, tmp_path / "o", "--engine", "onnx")])
    assert res.exit_code == 1 and "needs --engine torch" in res.output
    res = _run([str(tmp_path / "none*.jpg"), *_args(models, tmp_path / "o")])
    assert (
        res.exit_code == 1
        and "matches no images" in res.output
        and "no images to parse" in res.output
    )
    clothing, _ = models
    res = _run(
        [
            one,
            "--model",
            str(clothing),
            "--body-model",
            str(clothing),
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    assert res.exit_code == 1 and "no 'person' class" in res.output


def test_default_body_model_offline(
    models, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --body-model and without cached COCO weights: one clear line naming the file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    clothing, _ = models
    res = _run(
        [
            str(photos / "folder" / "one.png"),
            "--model",
            str(clothing),
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "maskrcnn_resnet50_fpn_coco" in lines[0]
    assert not (tmp_path / "o" / "one.json").exists()


def test_pipelined_and_sequential_write_the_same(models, photos: Path, tmp_path: Path) -> None:
    """--workers 0 (one photo after the other) and the pipeline (--workers 2, --batch 2) write
    the same PNGs, the same records (but for their timings) and the same COCO results."""
    seq, pipe = tmp_path / "seq", tmp_path / "pipe"
    inputs = [str(photos / "folder"), str(photos / "globbed")]
    res = _run([*inputs, *_args(models, seq, "--workers", "0", "--batch", "2")])
    assert res.exit_code == 0, res.output
    res = _run([*inputs, *_args(models, pipe, "--workers", "2", "--batch", "2")])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in seq.iterdir())
    assert names == sorted(p.name for p in pipe.iterdir()) and len(names) == 3 * 4 + 1
    for name in names:
        a, b = (seq / name).read_bytes(), (pipe / name).read_bytes()
        if name.endswith(".json") and name != "results_coco.json":
            ra, rb = json.loads(a), json.loads(b)
            assert ra.pop("timings_ms").keys() == rb.pop("timings_ms").keys()
            assert ra == rb and ra["items"], name
        else:
            assert a == b, name
    assert json.loads((pipe / "results_coco.json").read_text())


def test_corrupt_photo_in_the_middle_of_the_pipeline(models, photos: Path, tmp_path: Path) -> None:
    bad = photos / "folder" / "one_and_a_half.jpg"  # sorts between one.png and two.jpg
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    out = tmp_path / "out"
    res = _run([str(photos / "folder"), *_args(models, out, "--workers", "2")])
    assert res.exit_code == 3, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {bad}: "), res.stderr
    assert not list(out.glob("one_and_a_half*"))
    for stem in ("one", "two"):
        assert all((out / f"{stem}{s}").is_file() for s in (".json", "_labels.png", "_overlay.png"))
    assert "2 parsed, 0 skipped, 1 failed" in res.output


def test_batch_workers_png_level_options(models, photos: Path, tmp_path: Path) -> None:
    one = str(photos / "folder" / "one.png")
    for bad in (["--workers", "-1"], ["--batch", "0"], ["--png-level", "10"]):
        res = _run([one, *_args(models, tmp_path / "o", *bad)])
        assert res.exit_code == 2, (bad, res.output)
    for level in ("0", "9"):
        res = _run([one, *_args(models, tmp_path / level, "--png-level", level, "--batch", "3", "--workers", "1")])
        assert res.exit_code == 0, res.output
    stored, small = tmp_path / "0" / "one_overlay.png", tmp_path / "9" / "one_overlay.png"
    assert stored.stat().st_size > small.stat().st_size  # level 0 stores the pixels uncompressed
    np.testing.assert_array_equal(np.asarray(Image.open(stored)), np.asarray(Image.open(small)))


@pytest.fixture(scope="module")
def onnx_models(models: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from clothparse.export.exporter import ExportSpec, export_onnx_model

    from clothparse.model.checkpoint import load_checkpoint

    d = tmp_path_factory.mktemp("onnx_models")
    out = []
    for name, ckpt in zip(("clothing", "body"), models, strict=True):
        loaded = load_checkpoint(ckpt)
        spec = ExportSpec(height=192, width=192, score_thresh=0.05)
        out.append(export_onnx_model(loaded.model, loaded.class_names, d / f"{name}.onnx", spec).path)
    return out[0], out[1]


def _items(folder: Path, name: str) -> list[dict]:
    return json.loads((folder / f"{name}.json").read_text())["items"]


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 1.0


def test_parse_with_openvino_gives_the_onnx_runtime_items(onnx_models, photos: Path, tmp_path: Path) -> None:
    """`cpt parse --engine openvino --precision f32` on the .onnx exports (clothing and body)
    writes the items ONNX Runtime gives: same count, and each one matched by class, box and score."""
    folder = str(photos / "folder")
    outs = {}
    for engine in ("onnx", "openvino"):
        outs[engine] = tmp_path / engine
        extra = ["--engine", engine, "--threads", "1"] + (["--precision", "f32"] if engine == "openvino" else [])
        args = _args(onnx_models, outs[engine], *extra)
        args[args.index("--score-thresh") + 1] = args[args.index("--body-score-thresh") + 1] = "0.05"
        res = _run([folder, *args])
        assert res.exit_code == 0, res.output
    compared = 0
    for name in ("one", "two"):
        ref, got = _items(outs["onnx"], name), _items(outs["openvino"], name)
        assert len(ref) == len(got), name
        for r in ref:
            assert any(
                g["class"] == r["class"] and abs(g["score"] - r["score"]) < 1e-3 and _iou(g["box"], r["box"]) > 0.99
                for g in got
            ), (name, r)
            compared += 1
    assert compared > 0  # the check compared something
