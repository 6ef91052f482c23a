"""Binary masks to COCO annotation fields (polygons, bbox, area).

COCO coordinates put pixel (r, c) in the square [c, c+1) x [r, r+1). Polygons
follow the mask's pixel edges exactly (integer corners), holes included, so they
rasterise back to exactly the mask and the JSON is byte-stable across runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Directions of boundary edges on the pixel-corner lattice: right, down, left, up.
_STEP_X = np.array([1, 0, -1, 0])
_STEP_Y = np.array([0, 1, 0, -1])


def _jump_steps(n: int) -> int:
    return max(1, int(np.ceil(np.log2(max(n, 2))))) + 1


def region_loops(regions: np.ndarray, n_regions: int) -> list[list[np.ndarray]]:
    """Boundary loops of every region of an int [H, W] region map, along pixel edges.

    ``regions`` holds a region index 0..n_regions-1 (< 32767) per pixel, or -1 for none.
    Returns, per region, a list of int64 [K, 2] (x, y) corner loops; corner (x, y)
    is the top-left corner of pixel (row y, column x). Edges are directed with their
    region on the right, so outer loops have positive area in x-right/y-down
    coordinates and hole loops negative area; where two pixels of a region touch
    only diagonally the trace turns right, so they get separate loops. Every corner
    is a change of direction. The region is exactly the even-odd interior of its loops.

    All regions of an image are traced in one vectorised pass (pointer jumping on
    the successor of each straight run of pixel sides): skimage's contour assembly
    is a per-segment Python loop costing about a millisecond per mask.
    """
    result: list[list[np.ndarray]] = [[] for _ in range(n_regions)]
    valid = regions >= 0
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    if rows.size == 0:
        return result
    # Work on the bounding box of all regions, in int16, padded by one empty pixel.
    oy0, ox0 = int(rows[0]), int(cols[0])
    crop = regions[oy0 : rows[-1] + 1, ox0 : cols[-1] + 1]
    h, w = crop.shape
    pad = np.full((h + 2, w + 2), -1, dtype=np.int16)
    pad[1:-1, 1:-1] = crop
    stride = w + 3  # corners of the padded grid: (h + 3) x (w + 3)
    lab, start, end, d = _boundary_runs(pad, stride)
    nxt = _successors(lab, start, end, d, (h + 3) * stride)
    order, cyc = _loop_order(nxt)
    n = start.size
    start, cyc, lab = start[order], cyc[order], lab[order]
    x, y = start % stride - 1 + ox0, start // stride - 1 + oy0
    first = np.flatnonzero(np.r_[True, cyc[1:] != cyc[:-1]])
    stop = np.r_[first[1:], n]
    for a, b in zip(first.tolist(), stop.tolist(), strict=True):
        result[int(lab[a])].append(np.stack([x[a:b], y[a:b]], axis=1))
    return result


def _boundary_runs(pad: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The directed boundary edges of every region in ``pad`` (int16 [H + 2, W + 2] region
    map with a border of -1), merged into maximal straight runs (one per polygon side).

    Returns (region, start corner, end corner, direction 0-3) per run; corner (row i, col j)
    of the padded grid is ``i * stride + j``.
    """
    inner = pad[1:-1, 1:-1]
    inside = inner >= 0
    labs, starts, ends, dirs = [], [], [], []
    # (neighbour, direction, horizontal?) for each side of a pixel.
    for nb, side_dir, horizontal in (
        (pad[:-2, 1:-1], 0, True),  # top side, left to right
        (pad[1:-1, 2:], 1, False),  # right side, downwards
        (pad[2:, 1:-1], 2, True),  # bottom side, right to left
        (pad[1:-1, :-2], 3, False),  # left side, upwards
    ):
        side = inside & (inner != nb)
        if horizontal:
            r, c = np.nonzero(side)  # row-major: runs are consecutive columns
            along, across = c, r
        else:
            c, r = np.nonzero(side.T)  # column-major: runs are consecutive rows
            along, across = r, c
        lab = inner[r, c].astype(np.int64)
        new_run = np.r_[
            True,
            (across[1:] != across[:-1]) | (along[1:] != along[:-1] + 1) | (lab[1:] != lab[:-1]),
        ]
        head = np.flatnonzero(new_run)
        tail = np.r_[head[1:], along.size] - 1
        lo, hi, at = along[head], along[tail] + 1, across[head]
        # Pixel (r, c) of ``inner`` has its top-left corner at (r + 1, c + 1).
        if side_dir == 0:
            a, b = (at + 1) * stride + lo + 1, (at + 1) * stride + hi + 1
        elif side_dir == 2:
            a, b = (at + 2) * stride + hi + 1, (at + 2) * stride + lo + 1
        elif side_dir == 1:
            a, b = (lo + 1) * stride + at + 2, (hi + 1) * stride + at + 2
        else:
            a, b = (hi + 1) * stride + at + 1, (lo + 1) * stride + at + 1
        labs.append(lab[head])
        starts.append(a)
        ends.append(b)
        dirs.append(np.full(head.size, side_dir))
    lab, start, end, d = (np.concatenate(v) for v in (labs, starts, ends, dirs))
    return lab, start, end, d


def _successors(lab: np.ndarray, start: np.ndarray, end: np.ndarray, d: np.ndarray, n_corners: int) -> np.ndarray:
    """Index of the run that follows each run on its region's boundary: the run of the same
    region starting at its end corner, preferring a right turn, else a left turn (runs are
    maximal, so never straight on); -1 where none does."""
    n = start.size
    # Run lookup by (region, start corner, direction) through one sorted key array.
    key = (lab * n_corners + start) * 4 + d
    by_key = np.argsort(key)
    sorted_key = key[by_key]

    def find(turn: np.ndarray) -> np.ndarray:
        want = (lab * n_corners + end) * 4 + turn
        pos = np.minimum(np.searchsorted(sorted_key, want), n - 1)
        return np.where(sorted_key[pos] == want, by_key[pos], -1)

    nxt = find((d + 1) % 4)
    return np.where(nxt < 0, find((d + 3) % 4), nxt)


def _loop_order(nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, cycle id) of the runs given each one's successor ``nxt``, by pointer jumping:
    the cycle id is the smallest run index on the cycle, and ``order`` lists every cycle's
    runs together, its root first, then along the cycle."""
    n = nxt.size
    ids = np.arange(n)
    cyc, hop = ids.copy(), nxt.copy()
    for _ in range(_jump_steps(n)):  # cycle id = smallest edge id on the cycle
        cyc = np.minimum(cyc, cyc[hop])
        hop = hop[hop]
    is_root = cyc == ids
    dist, hop = np.where(is_root, 0, 1), np.where(is_root, ids, nxt)
    for _ in range(_jump_steps(n)):  # distance from each edge forward to its cycle's root
        dist = dist + dist[hop]
        hop = hop[hop]
    # Loop order: root first, then its successors (decreasing distance to the root).
    order = np.argsort(cyc * (n + 1) + np.where(is_root, 0, n + 1 - dist), kind="stable")
    return order, cyc


def loop_area(loop: np.ndarray) -> int:
    """Signed area of a corner loop int [K, 2]: > 0 outer boundary, < 0 hole."""
    x, y = loop[:, 0], loop[:, 1]
    twice = x[:-1] @ y[1:] - x[1:] @ y[:-1] + x[-1] * y[0] - x[0] * y[-1]
    return int(twice) // 2


def loops_to_coco(loops: list[np.ndarray]) -> list[list[int]]:
    """COCO ``segmentation`` polygons (integer coordinates, like ModaNet's) from corner loops.

    Without holes: one polygon per outer loop. With holes (e.g. a tie lying on a
    top), all loops are chained into one polygon, returning to the start after each
    loop: the connecting segments are traversed once each way and cancel under the
    even-odd rule that pycocotools rasterises with, so the polygon rasterises back to
    exactly the mask, hole included (separate polygons would be merged by union and
    fill the hole).
    """
    if all(loop_area(loop) > 0 for loop in loops):
        return [loop.ravel().tolist() for loop in loops]
    anchor = loops[0][:1]
    chain = [np.concatenate([loops[0], anchor])]
    for loop in loops[1:]:
        chain.append(np.concatenate([loop, loop[:1], anchor]))
    return [np.concatenate(chain).ravel().tolist()]


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (x, y, w, h) in pixels of a non-empty bool [H, W] mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def region_annotations(
    regions: np.ndarray, category_ids: list[int], image_id: int, first_id: int
) -> list[dict[str, Any]]:
    """COCO instance annotations (polygons, bbox, area, iscrowd 0) of every region of a region map.

    ``regions``: int [H, W], region index 0..K-1 per pixel or -1; ``category_ids[k]``
    is region k's category. Annotation ids run from ``first_id``. Every region must
    be non-empty.
    """
    k = len(category_ids)
    loops = region_loops(regions, k)
    areas = np.bincount(regions.ravel() + 1, minlength=k + 1)[1:]
    anns = []
    for i in range(k):
        if not loops[i]:
            raise ValueError(f"region {i} is empty")
        pts = np.concatenate(loops[i])  # hole corners lie inside the outer loops: same box
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        anns.append(
            {
                "id": first_id + i,
                "image_id": image_id,
                "category_id": int(category_ids[i]),
                "segmentation": loops_to_coco(loops[i]),
                "area": int(areas[i]),
                "bbox": [int(x0), int(y0), int(x1 - x0), int(y1 - y0)],
                "iscrowd": 0,
            }
        )
    return anns


def mask_annotation(
    mask: np.ndarray, ann_id: int, image_id: int, category_id: int
) -> dict[str, Any]:
    """A COCO instance annotation for a non-empty bool [H, W] mask (polygons, bbox, area, iscrowd 0)."""
    return region_annotations(np.where(mask, 0, -1), [category_id], image_id, ann_id)[0]
