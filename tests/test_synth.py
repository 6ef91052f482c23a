"""The synthetic paper-doll generator: rasteriser, ground-truth consistency, files, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

from clothparse import taxonomy
from clothparse.cli.app import app
from clothparse.data.synth import raster
from clothparse.data.synth.coco import mask_annotation, region_annotations
from clothparse.data.synth.scene import (
    MIN_INSTANCE_AREA,
    MIN_PERSON_AREA,
    Layer,
    instance_map,
    render_scene,
    resolve_visibility,
)
from clothparse.data.synth.textures import solid
from clothparse.data.synth.writer import write_dataset
from clothparse.errors import ConfigError

GREY = solid(np.array([128.0, 128.0, 128.0], dtype=np.float32))


def reference_fill(poly: np.ndarray, size: int) -> np.ndarray:
    """Plain crossing-number test at every pixel centre (x=c, y=r): bool [size, size]."""
    out = np.zeros((size, size), dtype=bool)
    n = len(poly)
    for r in range(size):
        for c in range(size):
            inside = False
            for i in range(n):
                (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % n]
                if (y0 <= r) != (y1 <= r):
                    x = x0 + (r - y0) * (x1 - x0) / (y1 - y0)
                    if x > c:
                        inside = not inside
            out[r, c] = inside
    return out


coord = st.floats(-6.0, 30.0, allow_nan=False).map(lambda v: round(v * 2) / 2)  # exact ties too
polygon = st.lists(st.tuples(coord, coord), min_size=3, max_size=9).map(
    lambda p: np.array(p, dtype=np.float64)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(polygon, min_size=1, max_size=4))
def test_fill_polygons_matches_crossing_number_reference(polys: list[np.ndarray]) -> None:
    size = 24
    for poly, idx in zip(polys, raster.fill_polygons(polys, size), strict=True):
        assert len(np.unique(idx)) == len(idx)
        np.testing.assert_array_equal(raster.indices_to_mask(idx, size), reference_fill(poly, size))


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.15, 0.85))
def test_polygons_rasterise_back_exactly(seed: int, density: float) -> None:
    """Polygons (holes and diagonal touches included) decode with pycocotools to the mask itself."""
    rng = np.random.default_rng(seed)
    regions = rng.integers(-1, 3, size=(14, 11))
    regions[rng.random(regions.shape) > density] = -1
    present = [k for k in range(3) if (regions == k).any()]
    remap = np.full(4, -1)
    remap[np.array(present, dtype=int) + 1] = np.arange(len(present))
    regions = remap[regions + 1]
    anns = region_annotations(regions, [7] * len(present), image_id=3, first_id=10)
    for k, ann in enumerate(anns):
        mask = regions == k
        rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], *mask.shape))
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), mask)
        rows, cols = np.nonzero(mask)
        assert ann["bbox"] == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]
        assert ann["area"] == mask.sum() and ann["id"] == 10 + k and ann["iscrowd"] == 0


SCENES = [render_scene(np.random.default_rng([11, i]), 256 if i % 3 else 128) for i in range(24)]


@pytest.mark.parametrize("scene", SCENES, ids=lambda s: f"s{id(s) % 1000}")
def test_scene_ground_truth_is_consistent(scene) -> None:
    size = scene.image.shape[0]
    assert scene.image.shape == (size, size, 3) and scene.image.dtype == np.uint8
    lm = scene.label_map
    assert lm.dtype == np.uint8 and lm.max() <= taxonomy.BODY_LABEL
    inst = np.zeros(lm.shape, dtype=np.int64)
    for i, x in enumerate(scene.instances):
        assert 1 <= x.class_id <= 13 and x.mask.shape == lm.shape and x.mask.dtype == bool
        assert x.mask.sum() >= MIN_INSTANCE_AREA  # the tiny-instance rule
        assert not (inst[x.mask] > 0).any(), "instance masks overlap"
        inst[x.mask] = i + 1
        assert not (x.mask & ~scene.persons[x.person]).any(), (
            "garment outside its wearer's body mask"
        )
    for c in range(1, 14):  # label c pixels == union of visible class-c instances, both ways
        union = np.zeros(lm.shape, dtype=bool)
        for x in scene.instances:
            if x.class_id == c:
                union |= x.mask
        np.testing.assert_array_equal(lm == c, union)
    people = np.zeros(lm.shape, dtype=np.int64)
    for p, m in enumerate(scene.persons):
        assert m.sum() >= MIN_PERSON_AREA and not (people[m] > 0).any()
        people[m] = p + 1
    assert not ((lm == taxonomy.BODY_LABEL) & (people == 0)).any(), "skin/body outside every person"
    np.testing.assert_array_equal(lm > 0, people > 0)  # nothing but people is labelled


@pytest.mark.parametrize("scene", SCENES[:12], ids=lambda s: f"s{id(s) % 1000}")
def test_occlusion_order_is_respected(scene) -> None:
    """Recompute visibility with a painter over the amodal shapes: later layers hide earlier ones."""
    size = scene.image.shape[0]
    amodal = [layer.amodal(size) for layer in scene.layers]
    above = np.zeros((size, size), dtype=bool)
    for k in range(len(amodal) - 1, -1, -1):
        visible = amodal[k] & ~above
        np.testing.assert_array_equal(scene.owner == k, visible)
        above |= amodal[k]
    for x, k in zip(scene.instances, scene.instance_layers, strict=True):
        assert scene.layers[k].label == x.class_id
        later = np.zeros((size, size), dtype=bool)
        for j in range(k + 1, len(amodal)):
            later |= amodal[j]
        assert not (x.mask & later).any(), "an earlier garment shows through a later one"
        np.testing.assert_array_equal(x.mask, amodal[k] & ~later)
    persons = [layer.person for layer in scene.layers]
    assert persons == sorted(persons), "people must be painted one after another"


def test_scenes_exercise_occlusion_and_all_classes() -> None:
    """Guard against vacuous consistency tests: real overlaps happen and every class shows up."""
    hidden = 0
    classes: set[int] = set()
    for scene in SCENES:
        size = scene.image.shape[0]
        for x, k in zip(scene.instances, scene.instance_layers, strict=True):
            hidden += int((scene.layers[k].amodal(size) & ~x.mask).sum())
            classes.add(x.class_id)
    assert hidden > 1000
    assert sum(len(s.persons) >= 2 for s in SCENES) >= 3
    assert len(classes) >= 12


def test_tiny_garments_are_dropped_and_show_the_layer_beneath() -> None:
    size = 32
    sq = raster.fill_polygon(raster.rect(2, 2, 20, 20), size)
    top = raster.fill_polygon(raster.rect(4, 4, 16, 16), size)
    speck = raster.fill_polygon(raster.rect(9, 9, 12, 12), size)  # 9 px < MIN_INSTANCE_AREA
    layers = [Layer(14, 0, [(sq, GREY)]), Layer(9, 0, [(top, GREY)]), Layer(7, 0, [(speck, GREY)])]
    kept, owner = resolve_visibility(layers, size)
    assert [layer.label for layer in kept] == [14, 9]
    assert (owner[speck] == 1).all()  # the top, not background or the dropped glasses
    # A person whose whole visible area is too small goes entirely (body and garments).
    small = raster.fill_polygon(raster.rect(24, 24, 30, 30), size)
    kept, owner = resolve_visibility([*layers, Layer(14, 1, [(small, GREY)])], size)
    assert {layer.person for layer in kept} == {0} and (owner[small] == -1).all()


@pytest.mark.parametrize("size", [64, 96, 128])
def test_small_sizes_render(size: int) -> None:
    for i in range(3):
        scene = render_scene(np.random.default_rng([3, i]), size)
        assert scene.image.shape == (size, size, 3)


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth") / "ds"
    calls: list[tuple[int, int]] = []
    summary = write_dataset(out, 12, 128, seed=5, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i + 1, 12) for i in range(12)]
    return out, summary


def test_dataset_layout_and_formats(dataset: tuple[Path, dict]) -> None:
    out, summary = dataset
    clothing = json.loads((out / "clothing.json").read_text())
    body = json.loads((out / "body.json").read_text())
    assert clothing["categories"] == taxonomy.coco_categories()
    assert body["categories"] == taxonomy.person_categories()
    assert [im["file_name"] for im in clothing["images"]] == [f"{i:06d}.jpg" for i in range(1, 13)]
    body_ids = {a["id"]: a for a in body["annotations"]}
    for ann in clothing["annotations"]:
        assert 1 <= ann["category_id"] <= 13 and ann["iscrowd"] == 0
        assert body_ids[ann["person_id"]]["image_id"] == ann["image_id"]
    for im in clothing["images"]:
        photo = Image.open(out / "images" / im["file_name"])
        assert photo.format == "JPEG" and photo.mode == "RGB" and photo.size == (128, 128)
        label = Image.open(out / "labels" / im["file_name"].replace(".jpg", ".png"))
        assert label.mode == "P" and label.getpalette()[:45] == taxonomy.palette_flat()[:45]
        assert np.asarray(label).max() <= 14
    meta = json.loads((out / "synth.json").read_text())
    assert meta == summary and meta["instances"] == len(clothing["annotations"])
    assert sum(c["instances"] for c in meta["classes"].values()) == meta["instances"]


def test_json_polygons_match_scene_masks(dataset: tuple[Path, dict]) -> None:
    """Rasterised JSON polygons equal the rendered instance / person masks (IoU > 0.9, in fact 1)."""
    out, _ = dataset
    clothing = json.loads((out / "clothing.json").read_text())
    body = json.loads((out / "body.json").read_text())
    for im in clothing["images"]:
        scene = render_scene(np.random.default_rng([5, im["id"] - 1]), 128)
        label = np.asarray(Image.open(out / "labels" / f"{im['id']:06d}.png"))
        np.testing.assert_array_equal(label, scene.label_map)
        for group, masks in (
            ("annotations", [x.mask for x in scene.instances]),
            ("persons", scene.persons),
        ):
            src = clothing if group == "annotations" else body
            anns = [a for a in src["annotations"] if a["image_id"] == im["id"]]
            assert len(anns) == len(masks)
            for ann, mask in zip(anns, masks, strict=True):
                rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], 128, 128))
                decoded = mask_utils.decode(rle).astype(bool)
                iou = (decoded & mask).sum() / (decoded | mask).sum()
                assert iou > 0.9
                assert ann["area"] == int(mask.sum())


def test_splits_are_disjoint_cover_and_agree(dataset: tuple[Path, dict]) -> None:
    out, summary = dataset
    all_ids = {im["id"] for im in json.loads((out / "clothing.json").read_text())["images"]}
    seen: set[int] = set()
    for name in ("train", "val", "test"):
        cl = json.loads((out / f"{name}.json").read_text())
        bd = json.loads((out / f"body_{name}.json").read_text())
        ids = {im["id"] for im in cl["images"]}
        assert ids == {im["id"] for im in bd["images"]}
        assert {a["image_id"] for a in cl["annotations"] + bd["annotations"]} <= ids
        assert not ids & seen
        seen |= ids
        assert summary["splits"][name] == len(ids)
    assert seen == all_ids


def test_same_seed_same_bytes_other_seed_differs(
    tmp_path: Path, dataset: tuple[Path, dict]
) -> None:
    out, _ = dataset
    write_dataset(tmp_path / "again", 12, 128, seed=5)
    assert read_tree(tmp_path / "again") == read_tree(out)
    write_dataset(tmp_path / "other", 12, 128, seed=6)
    other = read_tree(tmp_path / "other")
    assert other["clothing.json"] != read_tree(out)["clothing.json"]
    assert other["images/000001.jpg"] != read_tree(out)["images/000001.jpg"]


@pytest.mark.parametrize(
    ("n", "size", "seed"), [(-1, 128, 0), (2, 32, 0), (2, 8192, 0), (2, 128, -3)]
)
def test_write_dataset_rejects_bad_settings(tmp_path: Path, n: int, size: int, seed: int) -> None:
    with pytest.raises(ConfigError):
        write_dataset(tmp_path / "x", n, size, seed)


def test_cli_writes_dataset(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = [
        "data",
        "synth",
        "--out",
        str(out),
        "--n",
        "5",
        "--size",
        "96",
        "--seed",
        "1",
        "--ratios",
        "0.6,0.2,0.2",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "top" in res.output and "person" in res.output
    assert len(list((out / "images").glob("*.jpg"))) == 5
    assert len(json.loads((out / "train.json").read_text())["images"]) == 3
    # Re-running into its own dataset folder is fine; a foreign non-empty folder is not.
    assert CliRunner().invoke(app, [*args, "-q"]).exit_code == 0
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    res = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path / "foreign"), "--n", "1"])
    assert res.exit_code != 0 and "--overwrite" in res.output


@pytest.mark.parametrize(
    "extra",
    [["--n", "-1"], ["--size", "32"], ["--ratios", "0.5,0.1"], ["--seed", "-1"]],
)
def test_cli_bad_arguments_fail_with_one_line(tmp_path: Path, extra: list[str]) -> None:
    res = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path / "bad"), *extra])
    assert res.exit_code != 0
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert not (tmp_path / "bad" / "clothing.json").exists()


def test_mask_annotation_of_a_single_mask() -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[1:4, 2:6] = True
    mask[2, 3] = False  # a hole
    ann = mask_annotation(mask, ann_id=4, image_id=2, category_id=9)
    assert ann["bbox"] == [2, 1, 4, 3] and ann["area"] == 11
    rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], 8, 8))
    np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), mask)


def test_instance_map_matches_instances() -> None:
    scene = SCENES[1]
    imap = instance_map(scene)
    for i, x in enumerate(scene.instances):
        np.testing.assert_array_equal(imap == i, x.mask)


# ---------------------------------------------------------------- non-square images (WxH)


def test_fill_polygons_non_square_matches_square_reference() -> None:
    """A pixel is inside a polygon whatever the image size: an (H, W) fill is the top-left
    H x W corner of the square fill of side max(H, W)."""
    rng = np.random.default_rng(4)
    polys = [rng.uniform(-6.0, 30.0, (int(rng.integers(3, 9)), 2)).round() for _ in range(12)]
    for h, w in ((24, 16), (16, 24), (7, 30)):
        ref = [reference_fill(p, 30)[:h, :w] for p in polys]
        got = raster.fill_polygons(polys, (h, w))
        for idx, want in zip(got, ref, strict=True):
            np.testing.assert_array_equal(raster.indices_to_mask(idx, (h, w)), want)


@pytest.mark.parametrize("shape", [(96, 64), (64, 96)])
def test_non_square_scenes_are_consistent(shape: tuple[int, int]) -> None:
    h, w = shape
    for i in range(4):
        scene = render_scene(np.random.default_rng([17, i]), shape)
        assert scene.image.shape == (h, w, 3) and scene.label_map.shape == (h, w)
        lm = scene.label_map
        union = np.zeros((h, w), dtype=bool)
        for x in scene.instances:
            assert x.mask.shape == (h, w) and x.mask.sum() >= MIN_INSTANCE_AREA
            np.testing.assert_array_equal(lm[x.mask], x.class_id)
            union |= x.mask
        np.testing.assert_array_equal((lm > 0) & (lm < taxonomy.BODY_LABEL), union)
        people = np.zeros((h, w), dtype=bool)
        for m in scene.persons:
            people |= m
        np.testing.assert_array_equal(lm > 0, people)
        above = np.zeros((h, w), dtype=bool)
        for k in range(len(scene.layers) - 1, -1, -1):
            amodal = scene.layers[k].amodal(shape)
            np.testing.assert_array_equal(scene.owner == k, amodal & ~above)
            above |= amodal


def test_write_dataset_portrait(tmp_path: Path) -> None:
    summary = write_dataset(tmp_path / "ds", 3, (96, 64), seed=2)
    assert summary["size"] == "96x64"
    clothing = json.loads((tmp_path / "ds" / "clothing.json").read_text())
    for im in clothing["images"]:
        assert (im["width"], im["height"]) == (64, 96)
        assert Image.open(tmp_path / "ds" / "images" / im["file_name"]).size == (64, 96)
        scene = render_scene(np.random.default_rng([2, im["id"] - 1]), (96, 64))
        anns = [a for a in clothing["annotations"] if a["image_id"] == im["id"]]
        for ann, x in zip(anns, scene.instances, strict=True):
            decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], 96, 64)))
            assert ((decoded > 0) & x.mask).sum() / ((decoded > 0) | x.mask).sum() > 0.9
    with pytest.raises(ConfigError, match="32x64"):
        write_dataset(tmp_path / "bad", 1, (32, 64))
