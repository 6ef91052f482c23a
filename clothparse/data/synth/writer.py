"""Write a synthetic dataset folder (the layout of ARCHITECTURE.md).

::

    DIR/images/000001.jpg ...        RGB JPEG (quality 95)
    DIR/labels/000001.png ...        palette PNG, values 0-14 (taxonomy.PALETTE)
    DIR/clothing.json                COCO instances, ModaNet categories 1-13
    DIR/body.json                    COCO instances, category 1 "person"
    DIR/{train,val,test}.json        clothing splits
    DIR/body_{train,val,test}.json   body splits (same image assignment)
    DIR/synth.json                   generator settings and per-class counts

Image ``i`` (0-based) has id ``i + 1`` and is rendered from the random stream
``default_rng([seed, i])``, so it does not depend on ``n`` or on other images, and a
seed always gives byte-identical files. Clothing annotations carry ``person_id``,
the id of the wearer's annotation in ``body.json``.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clothparse import taxonomy
from clothparse.data.split import DEFAULT_NAMES, check_ratios, split_annotations
from clothparse.data.synth.coco import region_annotations
from clothparse.data.synth.raster import Size, hw
from clothparse.data.synth.scene import (
    MIN_INSTANCE_AREA,
    MIN_PERSON_AREA,
    Scene,
    instance_map,
    person_map,
    render_scene,
)
from clothparse.errors import ConfigError
from clothparse.io.atomic import write_bytes, write_json

FORMAT = "clothparse-synth/1"
MIN_SIZE, MAX_SIZE = 64, 4096
JPEG_QUALITY = 95

Progress = Callable[[int, int], None]


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes of a uint8 [H, W, 3] RGB image (quality 95, no chroma subsampling)."""
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue()


def encode_label_png(label_map: np.ndarray) -> bytes:
    """Palette-PNG bytes of a uint8 [H, W] label map (values 0-14, taxonomy palette)."""
    h, w = label_map.shape
    im = Image.frombytes("P", (w, h), np.ascontiguousarray(label_map, dtype=np.uint8).tobytes())
    im.putpalette(taxonomy.palette_flat())
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def parse_size(text: str) -> Size:
    """``--size``: ``"S"`` (a square side) -> S, ``"HxW"`` (height x width, as every ``--size``
    of cpt; e.g. ``"600x400"`` for ModaNet's 400-wide portrait photos) -> (H, W); ``"SxS"`` -> S.
    ConfigError otherwise."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        if len(parts) == 1:
            return int(parts[0])
        if len(parts) == 2:
            height, width = int(parts[0]), int(parts[1])
            return width if width == height else (height, width)
    except ValueError:
        pass
    raise ConfigError(f"--size: expected a side like 256 or HEIGHTxWIDTH like 600x400, got {text!r}")


def size_text(size: Size) -> int | str:
    """How ``size`` is recorded in synth.json: the side of a square, else ``"HxW"``."""
    height, width = hw(size)
    return height if height == width else f"{height}x{width}"


def check_settings(n: int, size: Size, seed: int) -> None:
    """Raise ConfigError for settings the generator cannot honour (``size``: side, or (H, W))."""
    if n < 0:
        raise ConfigError(f"--n (number of images) must be >= 0, got {n}")
    if not all(MIN_SIZE <= side <= MAX_SIZE for side in hw(size)):
        raise ConfigError(
            f"--size (image height and width) must be between {MIN_SIZE} and {MAX_SIZE} px, got {size_text(size)}"
        )
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")


def _coco(
    info: dict[str, Any],
    images: list[dict[str, Any]],
    anns: list[dict[str, Any]],
    cats: list[dict[str, object]],
) -> dict[str, Any]:
    return {"info": info, "licenses": [], "images": images, "annotations": anns, "categories": cats}


class _Annotations:
    """COCO records and class counts collected image by image."""

    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []
        self.clothing: list[dict[str, Any]] = []
        self.bodies: list[dict[str, Any]] = []
        self.inst_count = np.zeros(taxonomy.NUM_CLOTHING_CLASSES + 1, dtype=np.int64)
        self.image_count = np.zeros(taxonomy.NUM_CLOTHING_CLASSES + 1, dtype=np.int64)
        self.images_with_people = 0

    def add(self, scene: Scene, image_id: int, file_name: str) -> None:
        height, width = scene.image.shape[:2]
        self.images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        first_body = len(self.bodies) + 1
        person_cats = [taxonomy.COCO_PERSON_ID] * len(scene.persons)
        self.bodies += region_annotations(person_map(scene), person_cats, image_id, first_body)
        classes = [inst.class_id for inst in scene.instances]
        anns = region_annotations(instance_map(scene), classes, image_id, len(self.clothing) + 1)
        for ann, inst in zip(anns, scene.instances, strict=True):
            ann["person_id"] = first_body + inst.person
        self.clothing += anns
        np.add.at(self.inst_count, classes, 1)
        self.image_count[sorted(set(classes))] += 1
        self.images_with_people += bool(scene.persons)


def _render_images(out: Path, n: int, size: Size, seed: int, progress: Progress | None) -> _Annotations:
    """Render scene ``i`` from ``default_rng([seed, i])``, write its JPEG and label PNG under
    ``out/images`` and ``out/labels`` (``i + 1`` as a six-digit stem), and collect its records."""
    acc = _Annotations()
    # Atomic writes fsync every file; a few writer threads overlap that disk wait
    # with rendering (which holds the GIL only between numpy calls).
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending: deque[Future[None]] = deque()
        for i in range(n):
            scene = render_scene(np.random.default_rng([seed, i]), size)
            stem = f"{i + 1:06d}"
            pending.append(
                pool.submit(write_bytes, out / "images" / f"{stem}.jpg", encode_jpeg(scene.image))
            )
            pending.append(
                pool.submit(
                    write_bytes, out / "labels" / f"{stem}.png", encode_label_png(scene.label_map)
                )
            )
            while len(pending) > 64:
                pending.popleft().result()  # bounded backlog; re-raises a failed write
            acc.add(scene, i + 1, f"{stem}.jpg")
            if progress is not None:
                progress(i + 1, n)
        for job in pending:
            job.result()
    return acc


def _write_annotations(
    out: Path, acc: _Annotations, settings: dict[str, Any], ratios: Sequence[float], seed: int
) -> dict[str, int]:
    """Write ``clothing.json`` and ``body.json`` and their splits (``train.json``,
    ``body_train.json``, ...); return the number of images per split."""
    info = {"description": "clothparse synthetic paper-doll dataset", "format": FORMAT, **settings}
    datasets = (
        ("clothing.json", "", _coco(info, acc.images, acc.clothing, taxonomy.coco_categories())),
        ("body.json", "body_", _coco(info, acc.images, acc.bodies, taxonomy.person_categories())),
    )
    splits: dict[str, int] = {}
    for file_name, split_prefix, coco in datasets:
        write_json(out / file_name, coco, indent=None)
        for name, sub in split_annotations(coco, ratios, seed, DEFAULT_NAMES).items():
            write_json(out / f"{split_prefix}{name}.json", sub, indent=None)
            splits[name] = len(sub["images"])
    return splits


def _summary(acc: _Annotations, settings: dict[str, Any], n: int, splits: dict[str, int]) -> dict[str, Any]:
    """The dataset summary written to ``synth.json``: settings, counts, splits, per-class counts."""
    return {
        "format": FORMAT,
        **settings,
        "images": n,
        "images_with_people": acc.images_with_people,
        "persons": len(acc.bodies),
        "instances": len(acc.clothing),
        "splits": splits,
        "classes": {
            taxonomy.class_name(c): {
                "instances": int(acc.inst_count[c]),
                "images": int(acc.image_count[c]),
            }
            for c in range(1, taxonomy.NUM_CLOTHING_CLASSES + 1)
        },
    }


def write_dataset(
    out_dir: str | Path,
    n: int,
    size: Size = 256,
    seed: int = 0,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Render ``n`` scenes into ``out_dir``; return the summary (as in synth.json).

    ``size``: the side of square images, or (height, width). Every file is written
    atomically. ``progress(done, n)`` is called after each image. Raises ConfigError for
    n < 0, a side outside 64-4096, a negative seed or bad ratios.
    """
    check_settings(n, size, seed)
    ratios = check_ratios(ratios)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    acc = _render_images(out, n, size, seed, progress)
    settings = {
        "n": n,
        "size": size_text(size),
        "seed": seed,
        "ratios": list(ratios),
        "min_instance_area": MIN_INSTANCE_AREA,
        "min_person_area": MIN_PERSON_AREA,
    }
    splits = _write_annotations(out, acc, settings, ratios, seed)
    summary = _summary(acc, settings, n, splits)
    write_json(out / "synth.json", summary)
    return summary
