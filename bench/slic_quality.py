"""Superpixel quality: native SLIC vs scikit-image's on ground-truth region maps.

Metrics (superpixel labels ``sp`` and ground-truth regions ``gt``, both int [H, W]):

* boundary recall: share of ground-truth boundary pixels with a superpixel boundary pixel
  within ``tolerance`` pixels (Chebyshev distance); higher is better.
* undersegmentation error (Neubert & Protzel 2012): ``sum_g sum_s min(|s & g|, |s - g|) / N``
  over superpixels ``s`` overlapping region ``g``; lower is better.
* achievable segmentation accuracy: ``sum_s max_g |s & g| / N``; higher is better.

Data: synthetic scenes from ``clothparse.data.synth`` (ground truth: the visible layer of each
pixel) and real photos (matplotlib's grace_hopper, scikit-image's astronaut, chelsea, coffee),
whose "ground truth" is a proxy: scikit-image's Felzenszwalb segmentation (scale 300), which
follows strong colour edges and is produced independently of either SLIC.

Run: ``python -m clothparse.bench.slic_quality [--json OUT.json]`` (prints a Markdown table).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from clothparse.parse.superpixels import SlicParams

Segmenter = Callable[[np.ndarray], np.ndarray]

#: The seed's SLIC settings (``SlicParams``' defaults), used by ``backends()``.
SEED = SlicParams()


def boundaries(labels: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels whose right or lower 4-neighbour has another label."""
    lab = np.asarray(labels)
    edge = np.zeros(lab.shape, dtype=bool)
    edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    edge[:-1, :] |= lab[:-1, :] != lab[1:, :]
    return edge


def boundary_recall(sp: np.ndarray, gt: np.ndarray, tolerance: int = 2) -> float:
    """Share (0..1) of ground-truth boundary pixels within ``tolerance`` px of a superpixel boundary."""
    gt_edge = boundaries(gt)
    n = int(gt_edge.sum())
    if n == 0:
        return 1.0
    near = (
        ndimage.binary_dilation(
            boundaries(sp), structure=np.ones((3, 3), bool), iterations=tolerance
        )
        if tolerance > 0
        else boundaries(sp)
    )
    return float((near & gt_edge).sum() / n)


def _overlaps(sp: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """int64 [S, G] contingency table: pixels in superpixel s and region g."""
    _, s = np.unique(np.asarray(sp).ravel(), return_inverse=True)
    _, g = np.unique(np.asarray(gt).ravel(), return_inverse=True)
    n_g = int(g.max()) + 1
    counts = np.bincount(s.astype(np.int64) * n_g + g, minlength=(int(s.max()) + 1) * n_g)
    return counts.reshape(-1, n_g)


def undersegmentation_error(sp: np.ndarray, gt: np.ndarray) -> float:
    """Neubert–Protzel undersegmentation error (0..1, lower is better)."""
    table = _overlaps(sp, gt)
    sizes = table.sum(axis=1, keepdims=True)
    leak = np.minimum(table, sizes - table)
    return float(leak[table > 0].sum() / table.sum())


def achievable_segmentation_accuracy(sp: np.ndarray, gt: np.ndarray) -> float:
    """Share (0..1) of pixels labelled right when each superpixel takes its best region."""
    table = _overlaps(sp, gt)
    return float(table.max(axis=1).sum() / table.sum())


@dataclass
class Scores:
    """Quality of one segmentation against one ground truth."""

    boundary_recall: float
    undersegmentation_error: float
    asa: float
    n_superpixels: int


def score(sp: np.ndarray, gt: np.ndarray, tolerance: int = 2) -> Scores:
    """All three metrics of superpixels ``sp`` against regions ``gt`` (int [H, W] each)."""
    return Scores(
        boundary_recall(sp, gt, tolerance),
        undersegmentation_error(sp, gt),
        achievable_segmentation_accuracy(sp, gt),
        len(np.unique(sp)),
    )


def synthetic_images(
    count: int = 6, size: int = 384, seed: int = 0
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, RGB uint8 [S, S, 3], regions int32 [S, S]) from ``clothparse.data.synth``."""
    from clothparse.data.synth.scene import render_scene

    rng = np.random.default_rng(seed)
    for i in range(count):
        scene = render_scene(rng, size)
        yield f"synth{i}", scene.image, (scene.owner + 1).astype(np.int32)


def photo_images() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, RGB uint8 [H, W, 3], proxy regions int [H, W]) for the bundled sample photos."""
    import matplotlib.cbook as cbook
    from skimage import data
    from skimage.segmentation import felzenszwalb

    from clothparse.io.images import read_rgb

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    hopper = read_rgb(path)
    photos = {
        "grace_hopper": hopper,
        "astronaut": data.astronaut(),
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
    }
    for name, img in photos.items():
        img = np.ascontiguousarray(img[..., :3], dtype=np.uint8)
        yield name, img, felzenszwalb(img, scale=300, sigma=0.8, min_size=200)


def backends() -> dict[str, Segmenter]:
    """The segmenters compared, with the seed's settings."""
    from skimage.segmentation import slic as sk_slic

    from clothparse.parse import slic_native

    out: dict[str, Segmenter] = {
        "skimage": lambda im: sk_slic(
            im, n_segments=SEED.n_segments, compactness=SEED.compactness, sigma=SEED.sigma,
            start_label=0, channel_axis=-1,
        ),
    }
    if slic_native.available():
        out["native"] = lambda im: slic_native.slic(im)
    return out


def evaluate(
    images: Iterator[tuple[str, np.ndarray, np.ndarray]], segmenters: dict[str, Segmenter]
) -> list[dict[str, Any]]:
    """One row per (image, backend) with the three metrics."""
    rows: list[dict[str, Any]] = []
    for name, img, gt in images:
        for backend, seg in segmenters.items():
            rows.append({"image": name, "backend": backend, **asdict(score(seg(img), gt))})
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean metrics per backend."""
    out: dict[str, dict[str, float]] = {}
    for backend in sorted({str(r["backend"]) for r in rows}):
        sel = [r for r in rows if r["backend"] == backend]
        keys = ("boundary_recall", "undersegmentation_error", "asa", "n_superpixels")
        out[backend] = {k: float(np.mean([float(r[k]) for r in sel])) for k in keys}
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the rows plus per-backend means."""
    lines = [
        "| image | backend | boundary recall | undersegmentation error | ASA | superpixels |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['image']} | {r['backend']} | {r['boundary_recall']:.4f} | {r['undersegmentation_error']:.4f} | {r['asa']:.4f} | {r['n_superpixels']} |"
        )
    for backend, m in summary(rows).items():
        lines.append(
            f"| **mean** | {backend} | {m['boundary_recall']:.4f} | {m['undersegmentation_error']:.4f} | {m['asa']:.4f} | {m['n_superpixels']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the quality tables (synthetic, photos); optionally write all rows as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write rows and means to this JSON file")
    parser.add_argument("--synthetic", type=int, default=6, help="number of synthetic scenes")
    args = parser.parse_args(argv)
    segmenters = backends()
    synth = evaluate(synthetic_images(args.synthetic), segmenters)
    photos = evaluate(photo_images(), segmenters)
    print("## Synthetic scenes (ground truth: visible layers)\n")
    print(markdown(synth))
    print("\n## Photos (proxy ground truth: Felzenszwalb, scale 300)\n")
    print(markdown(photos))
    if args.json:
        from clothparse.io.atomic import atomic_open

        with atomic_open(args.json, "w") as fh:
            json.dump(
                {
                    "settings": asdict(SEED),
                    "synthetic": synth,
                    "photos": photos,
                    "mean_synthetic": summary(synth),
                    "mean_photos": summary(photos),
                },
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
