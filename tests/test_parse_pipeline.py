"""Parser end to end on synthetic photos, the per-image outputs, and the batch helpers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from helpers_parse import save_tiny, synthetic_photo
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils

from clothparse.engines.base import Detections
from clothparse.engines.torch_engine import TorchEngine
from clothparse.errors import ConfigError
from clothparse.parse.batch import (
    coco_records,
    drop_own_outputs,
    expand_inputs,
    image_id_for,
    load_image_ids,
    output_names,
    run_batch,
)
from clothparse.parse.mask_codec import decode_rle, encode_rle, mask_bbox, mask_polygons
from clothparse.parse.outputs import OverlayOptions, encode_result, label_png, render_overlay
from clothparse.parse.pipeline import STAGES, Parser, SlicParams
from clothparse.taxonomy import MODANET_CLASSES, PALETTE, palette_flat

SLIC = SlicParams(n_segments=80)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> tuple[TorchEngine, TorchEngine]:
    d = tmp_path_factory.mktemp("models")
    clothing = TorchEngine.from_checkpoint(save_tiny(d / "clothing"), device="cpu")
    body = TorchEngine.from_checkpoint(save_tiny(d / "body", ["person"], seed=1), device="cpu")
    return clothing, body


def _parser(engines, superpixels: bool = True, **kw) -> Parser:
    from clothparse.parse.fusion import FusionParams
    from clothparse.parse.superpixels import get_backend

    clothing, body = engines
    backend = get_backend("skimage") if superpixels else None
    return Parser(clothing, body, backend, FusionParams(**kw), SLIC, body_score_thresh=0.0)


@pytest.mark.parametrize("superpixels", [True, False])
def test_parse_end_to_end(engines, superpixels: bool) -> None:
    image = synthetic_photo(160, 120, seed=3)
    res = _parser(engines, superpixels).parse(image, decode_s=0.001)
    assert (res.height, res.width) == (160, 120)
    assert res.label_map.shape == (160, 120) and res.label_map.dtype == np.uint8
    assert res.label_map.max() <= 14
    assert set(res.timings) == set(STAGES) - {"encode"} and res.timings["decode"] == 0.001
    assert all(v >= 0 for v in res.timings.values())
    assert len(res.clothing) > 0 and len(res.body) > 0
    assert res.clothing.class_names == MODANET_CLASSES
    assert res.body.class_names == ("person",)
    items = res.items
    assert len(items) == len(res.clothing)
    union = {c: np.zeros((160, 120), bool) for c in range(1, 14)}
    for it in items:
        m = res.item_mask(it.index)
        assert m.shape == (160, 120) and m.dtype == bool
        assert it.name == MODANET_CLASSES[it.label - 1]
        union[it.label] |= m
        if not superpixels:
            assert not it.changed
    for c in range(1, 14):
        on = res.label_map == c
        if superpixels:
            # refined instances are unions of superpixels: the label map is exactly their union
            np.testing.assert_array_equal(on, union[c])
        else:
            assert not (on & ~union[c]).any(), "a pixel labelled c must lie in a mask of class c"
    if superpixels:
        assert res.sp_labels is not None and res.sp_labels.shape == (160, 120)
    else:
        assert res.fusion is None and res.sp_labels is None


def test_parse_batch_equals_single(engines) -> None:
    parser = _parser(engines)
    images = [synthetic_photo(128, 96, seed=s) for s in (1, 2)]
    batch = parser.parse_batch(images)
    for im, r in zip(images, batch, strict=True):
        single = parser.parse(im)
        np.testing.assert_array_equal(r.label_map, single.label_map)
        np.testing.assert_array_equal(r.clothing.boxes, single.clothing.boxes)


def test_body_threshold_and_class(engines) -> None:
    from clothparse.parse.fusion import FusionParams

    clothing, body = engines
    image = synthetic_photo(128, 128, seed=4)
    raw = body.infer([image])[0]
    thresh = float(np.median(raw.scores))
    res = Parser(clothing, body, None, FusionParams(), SLIC, body_score_thresh=thresh).parse(image)
    assert len(res.body) == int((raw.scores >= thresh).sum()) > 0
    assert np.all(res.body.scores >= thresh)
    no_body = Parser(clothing, None, None, FusionParams(), SLIC).parse(image)
    assert len(no_body.body) == 0 and not (no_body.label_map == 14).any()


def test_class_names_mapped_by_name(tmp_path: Path, engines) -> None:
    """A model whose classes come in another order still labels pixels with ModaNet ids."""
    from clothparse.parse.fusion import FusionParams

    names = list(reversed(MODANET_CLASSES))
    eng = TorchEngine.from_checkpoint(save_tiny(tmp_path / "rev", names), device="cpu")
    image = synthetic_photo(128, 96, seed=5)
    raw = eng.infer([image])[0]
    res = Parser(eng, None, None, FusionParams(), SLIC).parse(image)
    assert [it.name for it in res.items] == [names[c - 1] for c in raw.classes]
    assert [it.label for it in res.items] == [
        MODANET_CLASSES.index(names[c - 1]) + 1 for c in raw.classes
    ]


def test_parser_rejects_wrong_models(tmp_path: Path, engines) -> None:
    odd = TorchEngine.from_checkpoint(save_tiny(tmp_path / "odd", ["hat", "bag"]), device="cpu")
    clothing, _ = engines
    with pytest.raises(ConfigError, match="'hat' is not a ModaNet class"):
        Parser(odd)
    with pytest.raises(ConfigError, match="no 'person' class"):
        Parser(clothing, clothing)
    with pytest.raises(ValueError, match="RGB uint8"):
        Parser(clothing).parse(np.zeros((32, 32), np.uint8))


def test_encode_result_record(engines) -> None:
    image = synthetic_photo(150, 110, seed=6)
    res = _parser(engines).parse(image)
    enc = encode_result(res, image, "photo.jpg", OverlayOptions(show_boxes=True))
    rec = json.loads(json.dumps(enc.record))  # JSON-serialisable
    assert rec["image"] == {"file": "photo.jpg", "width": 110, "height": 150}
    assert rec["superpixels"] is True
    assert set(rec["timings_ms"]) == set(STAGES) and rec["timings_ms"]["encode"] > 0
    assert len(rec["items"]) == len(res.clothing)
    for it in rec["items"]:
        assert set(it) >= {
            "class",
            "class_id",
            "score",
            "box",
            "mask",
            "polygons",
            "area",
            "changed_by_superpixels",
        }
        m = decode_rle(it["mask"])
        np.testing.assert_array_equal(m, res.item_mask(it["id"]))
        assert it["area"] == int(m.sum())
        assert it["class"] == MODANET_CLASSES[it["class_id"] - 1]
    assert (
        len(rec["body"]["boxes"])
        == len(rec["body"]["scores"])
        == len(rec["body"]["masks"])
        == len(res.body)
    )
    labels = Image.open(io.BytesIO(enc.labels_png))
    assert labels.mode == "P" and labels.getpalette()[: 15 * 3] == palette_flat()[: 15 * 3]
    np.testing.assert_array_equal(np.asarray(labels), res.label_map)
    overlay = np.asarray(Image.open(io.BytesIO(enc.overlay_png)))
    assert overlay.shape[0] >= 150 and overlay.shape[1] > 110 and overlay.shape[2] == 3
    coco = coco_records(rec, 7)
    assert all(r["image_id"] == 7 and r["segmentation"]["size"] == [150, 110] for r in coco)
    assert len(coco) == sum(it["area"] > 0 for it in rec["items"])


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_rle_roundtrip(h: int, w: int, seed: int) -> None:
    mask = np.random.default_rng(seed).random((h, w)) < 0.4
    rle = encode_rle(mask)
    assert rle["size"] == [h, w] and isinstance(rle["counts"], str)
    np.testing.assert_array_equal(decode_rle(rle), mask)
    assert int(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode()})) == int(
        mask.sum()
    )


def test_polygons_cover_the_mask() -> None:
    mask = np.zeros((60, 80), bool)
    mask[10:40, 20:70] = True
    mask[20:30, 30:40] = False  # a hole: contours come out as outer + inner
    mask[50:60, 0:8] = True  # touches the border
    polys = mask_polygons(mask)
    assert len(polys) == 3 and all(len(p) >= 6 and len(p) % 2 == 0 for p in polys)
    xs = np.concatenate([p[0::2] for p in polys])
    ys = np.concatenate([p[1::2] for p in polys])
    assert xs.min() >= -0.5 and ys.min() >= -0.5 and xs.max() <= 79.5 and ys.max() <= 59.5
    outer = next(p for p in polys if max(p[0::2]) > 60)
    raster = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([outer], 60, 80))).astype(
        bool
    )
    rect = np.zeros_like(mask)
    rect[10:40, 20:70] = True
    iou = (raster & rect).sum() / (raster | rect).sum()
    assert iou > 0.9
    assert mask_polygons(np.zeros((5, 5), bool)) == []
    assert mask_bbox(mask) == [0.0, 10.0, 70.0, 50.0]


def test_label_png_and_overlay() -> None:
    lab = np.zeros((40, 50), np.uint8)
    lab[5:20, 5:25] = 9
    lab[25:35, 30:45] = 14
    img = Image.open(io.BytesIO(label_png(lab)))
    np.testing.assert_array_equal(np.asarray(img), lab)
    with pytest.raises(ValueError):
        label_png(lab.astype(np.int32))
    photo = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    over = render_overlay(photo, lab)
    assert over.shape[1] > 50 and over.shape[0] >= 40
    np.testing.assert_array_equal(over[:4, :50], photo[:4])  # background rows untouched
    inside = over[10, 10].astype(int)
    blended = (photo[10, 10] * 0.45 + PALETTE[9] * 0.55 + 0.5).astype(int)
    assert np.abs(inside - blended).max() <= 1
    only = np.zeros((40, 50), bool)
    over_only = render_overlay(photo, lab, only=only)
    np.testing.assert_array_equal(over_only[:40, :50], photo)


def test_expand_inputs(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    for n in ("x.jpg", "y.PNG", "notes.txt"):
        (a / n).write_bytes(b"1")
    b = tmp_path / "b"
    b.mkdir()
    (b / "x.jpg").write_bytes(b"1")
    (b / "z.png").write_bytes(b"1")
    paths, errors = expand_inputs(
        [
            a,
            str(b / "*.jpg"),
            b / "z.png",
            a / "notes.txt",
            a / "x.jpg",
            tmp_path / "nope.jpg",
            str(tmp_path / "*.gif"),
            tmp_path / "b" / "z.png",
        ]
    )
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "a/x.jpg",
        "a/y.PNG",
        "b/x.jpg",
        "b/z.png",
        "a/notes.txt",
    ]
    assert (
        len(errors) == 2 and "nope.jpg" in str(errors[0]) and "matches no images" in str(errors[1])
    )
    assert output_names(paths) == ["x", "y", "x-2", "z", "notes"]
    assert output_names([Path("results_coco.png")]) == ["results_coco-2"]
    (a / "x_labels.png").write_bytes(b"1")
    (a / "x_overlay.png").write_bytes(b"1")
    found, _ = expand_inputs([a])
    assert [p.name for p in drop_own_outputs(found, a)] == ["x.jpg", "y.PNG"]
    assert len(drop_own_outputs(found, b)) == 4


def test_image_ids(tmp_path: Path) -> None:
    ann = tmp_path / "ann.json"
    ann.write_text(
        json.dumps(
            {"images": [{"id": 5, "file_name": "sub/a.jpg"}, {"id": 9, "file_name": "b.jpg"}]}
        )
    )
    ids = load_image_ids(ann)
    assert image_id_for(Path("/data/images/sub/a.jpg"), ids) == 5
    assert image_id_for(Path("/elsewhere/a.jpg"), ids) == 5  # unique base name
    assert image_id_for(Path("b.jpg"), ids) == 9
    assert image_id_for(Path("c.jpg"), ids) is None
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(Exception, match="not a COCO annotation file"):
        load_image_ids(bad)


def test_run_batch_writes_all_or_nothing(engines, tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(synthetic_photo(128, 96, seed=8)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    errors: list[Exception] = []
    summary = run_batch(_parser(engines), [bad, good], out, on_error=errors.append)
    assert summary.count("ok") == 1 and summary.failed == 1 and len(errors) == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "good.json",
        "good_labels.png",
        "good_overlay.png",
        "results_coco.json",
    ]
    results = json.loads((out / "results_coco.json").read_text())
    assert {r["image_id"] for r in results} <= {2}


class _WholePhotoEngine:
    """A stand-in detector: one detection whose box and mask cover the whole photo (or none)."""

    def __init__(self, class_names: tuple[str, ...], label: int, empty: bool = False) -> None:
        self.class_names = class_names
        self.label = label
        self.empty = empty

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for im in images:
            h, w = im.shape[:2]
            if self.empty:
                out.append(Detections.empty(self.class_names))
            else:
                box = np.array([[0.0, 0.0, w, h]], np.float32)
                out.append(Detections(box, [0.9], [self.label], np.ones((1, 28, 28), np.float32), self.class_names))
        return out


def _tiny_backends() -> list[str | None]:
    from clothparse.parse import slic_native

    return [None, "skimage", *(["native"] if slic_native.available() else [])]


@pytest.mark.parametrize("backend", _tiny_backends())
@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 7), (7, 5), (1, 9)])
def test_tiny_photos_parse_end_to_end(backend: str | None, h: int, w: int) -> None:
    """Photos under 8 px a side go through SLIC (default settings: more segments than pixels),
    fusion and encoding; with no detections, the empty result is a result."""
    from clothparse.parse.fusion import FusionParams
    from clothparse.parse.superpixels import get_backend

    image = np.zeros((h, w, 3), np.uint8)
    image[...] = (40, 60, 210)  # blue: not skin, so nothing vetoes the clothing
    sp = None if backend is None else get_backend(backend)
    pants = MODANET_CLASSES.index("pants") + 1
    parser = Parser(_WholePhotoEngine(MODANET_CLASSES, pants), None, sp, FusionParams(), SlicParams())
    res = parser.parse(image)
    assert res.label_map.shape == (h, w) and (res.label_map == pants).all()
    enc = encode_result(res, image, "tiny.png", OverlayOptions(show_boxes=True, show_superpixels=sp is not None))
    rec = json.loads(json.dumps(enc.record))
    assert rec["image"] == {"file": "tiny.png", "width": w, "height": h}
    assert [it["class"] for it in rec["items"]] == ["pants"] and rec["items"][0]["area"] == h * w
    assert decode_rle(rec["items"][0]["mask"]).all()
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(enc.labels_png))), res.label_map)
    assert np.asarray(Image.open(io.BytesIO(enc.overlay_png))).shape[:2] >= (h, w)
    if sp is not None:
        assert res.sp_labels is not None and res.sp_labels.shape == (h, w)

    empty = Parser(_WholePhotoEngine(MODANET_CLASSES, pants, empty=True), None, sp, FusionParams(), SlicParams())
    res = empty.parse(image)
    assert not res.label_map.any()
    rec = json.loads(json.dumps(encode_result(res, image, "tiny.png").record))
    assert rec["items"] == [] and rec["image"]["height"] == h
