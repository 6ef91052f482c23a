"""COCO/ModaNet loader: every data quirk is counted, nothing crashes, masks are right."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils

from clothparse.data.coco import annotation_mask, load_coco, polygon_area
from clothparse.data.coco_json import read_coco_json
from clothparse.errors import DataError

H, W = 30, 40
CATS = [{"id": 1, "name": "bag"}, {"id": 2, "name": "belt"}, {"id": 3, "name": "boots"}]


def _png(path: Path, w: int = W, h: int = H) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _ann(i: int, image_id: int, seg: Any, cat: int = 1, **kw: Any) -> dict[str, Any]:
    return {
        "id": i,
        "image_id": image_id,
        "category_id": cat,
        "segmentation": seg,
        "iscrowd": 0,
        **kw,
    }


def _random_mask(rng: np.random.Generator) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[5:20, 8:30] = rng.random((15, 22)) > 0.4
    return m


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    p = tmp_path / "ann.json"
    p.write_text(json.dumps(data))
    return p


@pytest.fixture
def quirky(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """A file with one of each ModaNet quirk, and the masks its RLEs encode."""
    root = tmp_path / "images"
    for name in ("a.png", "c.png", "d.png"):
        _png(root / name)
    rng = np.random.default_rng(0)
    m_comp, m_unc, m_crowd = _random_mask(rng), _random_mask(rng), _random_mask(rng)
    comp = mask_utils.encode(np.asfortranarray(m_comp))
    comp["counts"] = comp["counts"].decode("ascii")  # as JSON stores it
    flat = m_unc.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]  # uncompressed RLE starts with a background run
    crowd = mask_utils.encode(np.asfortranarray(m_crowd))
    crowd["counts"] = crowd["counts"].decode("ascii")
    images = [
        {"id": 1, "file_name": "a.png", "width": W, "height": H},
        {"id": 2, "file_name": "b_missing.png", "width": W, "height": H},
        {"id": 3, "file_name": "c.png", "width": W, "height": H},  # no annotations
        {"id": 4, "file_name": "d.png", "width": W, "height": H},
        {"id": 4, "file_name": "dup.png", "width": W, "height": H},  # duplicate id
        {"id": 5, "file_name": "e.png"},  # no size
    ]
    anns = [
        _ann(1, 1, [_rect(10, 5, 30, 20)], bbox=[10, 5, 20, 15]),
        _ann(2, 99, [_rect(0, 0, 5, 5)]),  # unknown image
        _ann(3, 1, [[1, 1, 5, 5]]),  # 2 points: degenerate annotation
        _ann(4, 1, [_rect(0, 0, 4, 4), [0, 0, 5, 5, 10, 10]], cat=2),  # 1 good + 1 collinear
        _ann(5, 4, comp, cat=3),
        _ann(6, 4, {"size": [H, W], "counts": runs}, cat=2),
        _ann(7, 4, crowd, iscrowd=1),
        _ann(8, 1, [_rect(1, 1, 9, 9)], cat=9),  # unknown category
        _ann(9, 2, [_rect(1, 1, 9, 9)]),  # image missing on disk: not "unknown image"
        _ann(10, 1, [_rect(30, 20, 45, 35)], bbox=[30, 20, 15, 15]),  # box leaves the image
        _ann(5, 1, [_rect(1, 1, 9, 9)]),  # duplicate annotation id
        _ann(11, 4, {"size": [H + 1, W], "counts": comp["counts"]}),  # RLE of another size
        _ann(12, 1, []),  # no segmentation at all
    ]
    path = _write(tmp_path, {"images": images, "annotations": anns, "categories": CATS})
    return path, root, {"comp": m_comp, "unc": m_unc, "crowd": m_crowd}


def test_quirks_are_counted_not_fatal(quirky: tuple[Path, Path, dict[str, np.ndarray]]) -> None:
    path, root, _ = quirky
    idx = load_coco(path, root)
    r = idx.report
    assert [im.id for im in idx.images] == [1, 3, 4]
    assert r.missing_files == 1 and r.examples["missing_files"] == ["b_missing.png"]
    assert r.duplicate_image_ids == 1
    assert r.bad_image_records == 1
    assert r.unknown_image == 1
    assert r.unknown_category == 1
    assert r.degenerate_polygons == 2  # the 2-point one and the collinear one
    assert r.degenerate_annotations == 2  # ann 3 (only a bad polygon) and ann 12 (none)
    assert r.duplicate_annotation_ids == 1
    assert r.size_mismatch == 1
    assert r.bbox_outside == 1
    assert r.empty_images == 1 and r.examples["empty_images"] == ["c.png"]
    assert r.crowd == 1
    assert sorted(a.id for a in idx.annotations_for(1)) == [1, 4, 10]
    assert sorted(a.id for a in idx.annotations_for(4)) == [5, 6]
    assert sorted(a.id for a in idx.annotations_for(4, include_crowd=True)) == [5, 6, 7]
    assert r.annotations == 6
    ann10 = next(a for a in idx.annotations_for(1) if a.id == 10)
    assert ann10.bbox == (30.0, 20.0, 10.0, 10.0)  # clipped to the image
    assert idx.class_names == ("bag", "belt", "boots")
    text = "\n".join(r.lines())
    assert "1 images missing on disk" in text and "b_missing.png" in text
    assert "annotations whose image_id is not a listed image" in text
    assert r.problems > 0


def test_masks_polygon_and_rle(quirky: tuple[Path, Path, dict[str, np.ndarray]]) -> None:
    path, root, masks = quirky
    idx = load_coco(path, root)
    by_id = {a.id: a for im in idx.images for a in idx.annotations_for(im.id, include_crowd=True)}
    rect = np.zeros((H, W), bool)
    rect[5:20, 10:30] = True  # pycocotools fills pixels whose centre is inside
    np.testing.assert_array_equal(annotation_mask(by_id[1], H, W), rect)
    np.testing.assert_array_equal(annotation_mask(by_id[5], H, W), masks["comp"].astype(bool))
    np.testing.assert_array_equal(annotation_mask(by_id[6], H, W), masks["unc"].astype(bool))
    np.testing.assert_array_equal(annotation_mask(by_id[7], H, W), masks["crowd"].astype(bool))
    assert by_id[7].iscrowd and not by_id[5].iscrowd
    # the degenerate polygon of ann 4 was removed, the good one kept
    assert len(by_id[4].segmentation) == 1
    with pytest.raises(DataError, match="does not match"):
        annotation_mask(by_id[5], H + 2, W)


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    seed=st.integers(0, 2**31),
    compressed=st.booleans(),
)
def test_rle_roundtrip_random(h: int, w: int, seed: int, compressed: bool) -> None:
    m = np.random.default_rng(seed).random((h, w)) > 0.5
    if compressed:
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
    else:  # reference uncompressed RLE: column-major run lengths starting with zeros
        flat = m.flatten(order="F").astype(int).tolist()
        runs, cur, n = [], 0, 0
        for v in flat:
            if v != cur:
                runs.append(n)
                cur, n = v, 0
            n += 1
        runs.append(n)
        rle = {"size": [h, w], "counts": runs}
    np.testing.assert_array_equal(annotation_mask({"segmentation": rle}, h, w), m)


def test_polygon_area_matches_rectangle() -> None:
    assert polygon_area(_rect(1, 2, 11, 7)) == pytest.approx(50.0)
    assert polygon_area([0, 0, 5, 5, 10, 10]) == 0.0


def test_no_image_root_keeps_all_images(tmp_path: Path) -> None:
    images = [{"id": i, "file_name": f"{i}.png", "width": W, "height": H} for i in (1, 2)]
    path = _write(tmp_path, {"images": images, "annotations": [], "categories": CATS})
    idx = load_coco(path)
    assert [im.id for im in idx.images] == [1, 2]
    assert idx.images[0].path is None
    assert idx.report.empty_images == 2 and idx.report.missing_files == 0


def test_categories_argument_overrides(tmp_path: Path) -> None:
    images = [{"id": 1, "file_name": "a.png", "width": W, "height": H}]
    anns = [_ann(1, 1, [_rect(0, 0, 5, 5)], cat=2)]
    path = _write(tmp_path, {"images": images, "annotations": anns})  # no categories
    with pytest.raises(DataError, match="no categories"):
        load_coco(path)
    idx = load_coco(path, categories=["x", "y"])
    assert idx.class_names == ("x", "y")
    assert [a.category_id for a in idx.annotations_for(1)] == [2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON, so not a COCO annotation file"),
        ('{"annotations": []}', "no 'images' list"),
        ("[1, 2]", "not a JSON object"),
        ('{"images": [], "annotations": {}}', "'annotations' is not a list"),
        ('{"images": [1]}', "non-objects"),
    ],
)
def test_malformed_json_raises_data_error_naming_file(
    tmp_path: Path, content: str, message: str
) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(DataError, match=message) as exc:
        load_coco(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_missing_file_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such annotation file"):
        read_coco_json(tmp_path / "nope.json")


def test_garbage_values_do_not_crash(tmp_path: Path) -> None:
    images = [{"id": 1, "file_name": "a.png", "width": W, "height": H}]
    anns = [
        _ann(1, 1, [["a", "b", "c", "d", "e", "f"]]),
        _ann(2, 1, {"size": "x", "counts": "?"}),
        _ann(3, 1, [_rect(0, 0, 5, 5)], bbox=["x", 0, 1, 1]),
        {"id": 4},
        "not an object",
        _ann(5, 1, [_rect(0, 0, 5, 5)]),  # no bbox: taken from the polygon
    ]
    idx = load_coco(_write(tmp_path, {"images": images, "annotations": anns, "categories": CATS}))
    assert [a.id for a in idx.annotations_for(1)] == [5]
    assert idx.annotations_for(1)[0].bbox == (0.0, 0.0, 5.0, 5.0)
    assert idx.report.degenerate_annotations == 5


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("image_id_field", "image #0 has no 'id'"),
        ("image_height", "image #0 has no 'height'"),
        ("annotation_id", "annotation #1 has no 'id'"),
        ("rle_size", "annotation 2: RLE size 4x3 does not match the image size 40x30"),
    ],
)
def test_evaluation_ground_truth_problems_are_one_line_data_errors(
    tmp_path: Path, drop: str, message: str
) -> None:
    from clothparse.evaluate.coco_eval import load_gt

    images = [{"id": 1, "file_name": "a.png", "width": W, "height": H}]
    anns = [_ann(1, 1, [_rect(0, 0, 5, 5)]), _ann(2, 1, [_rect(5, 5, 9, 9)])]
    if drop == "image_id_field":
        del images[0]["id"]
    elif drop == "image_height":
        del images[0]["height"]
    elif drop == "annotation_id":
        del anns[1]["id"]
    else:
        anns[1]["segmentation"] = mask_utils.encode(np.zeros((3, 4), np.uint8, order="F"))
        anns[1]["segmentation"]["counts"] = anns[1]["segmentation"]["counts"].decode()
    p = _write(tmp_path, {"images": images, "annotations": anns, "categories": CATS})
    with pytest.raises(DataError) as exc:
        load_gt(p)
    assert str(exc.value) == f"{p}: {message}"


def test_evaluation_ground_truth_loads_when_well_formed(tmp_path: Path) -> None:
    from clothparse.evaluate.coco_eval import gt_mask, load_gt

    images = [{"id": 1, "file_name": "a.png", "width": W, "height": H}]
    rle = mask_utils.encode(np.asfortranarray(np.pad(np.ones((2, 3), np.uint8), ((0, H - 2), (0, W - 3)))))
    rle["counts"] = rle["counts"].decode()
    anns = [_ann(1, 1, [_rect(0, 0, 5, 5)]), _ann(2, 1, rle)]
    gt = load_gt(_write(tmp_path, {"images": images, "annotations": anns, "categories": CATS}))
    areas = sorted(a["area"] for a in gt.coco.dataset["annotations"])
    assert areas == [6.0, 25.0] and gt_mask(gt, 1).sum() == 25 + 6 - 6
