"""Rich tables for evaluation results (COCO AP, per-class AP, seed metrics, parsing ablation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from clothparse.evaluate.coco_eval import CocoMetrics
from clothparse.evaluate.parsing_metrics import ParsingMetrics
from clothparse.taxonomy import PARSING_LABELS


def fmt(x: float | None, digits: int = 3) -> str:
    """A metric for display; '-' where undefined."""
    return "-" if x is None else f"{x:.{digits}f}"


def summary_table(metrics: CocoMetrics, title: str) -> Table:
    """bbox and segm AP / AP50 / AP75 / APs / APm / APl / AR100."""
    table = Table(title=title)
    table.add_column("type")
    cols = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")
    for c in cols:
        table.add_column(c, justify="right")
    for iou_type, stats in metrics.summary.items():
        table.add_row(iou_type, *(fmt(stats.get(c)) for c in cols))
    return table


def per_class_table(metrics: CocoMetrics) -> Table:
    """One row per category: ground-truth count, segm AP and AP50, bbox AP and AP50."""
    table = Table(title="per-class AP")
    for c, just in (("id", "right"), ("class", "left"), ("n_gt", "right"), ("segm AP", "right"),
                    ("segm AP50", "right"), ("bbox AP", "right"), ("bbox AP50", "right")):
        table.add_column(c, justify=just)  # type: ignore[arg-type]
    for row in metrics.per_class:
        table.add_row(
            str(row["id"]), str(row["name"]), str(row["n_gt"]),
            fmt(row.get("segm_AP")), fmt(row.get("segm_AP50")),
            fmt(row.get("bbox_AP")), fmt(row.get("bbox_AP50")),
        )
    return table


def seed_table(seed: Mapping[float, Mapping[str, Any]]) -> Table:
    """The seed's merged-mask metrics, one row per score threshold."""
    table = Table(title="seed metrics (merged masks)")
    for c in ("score >=", "images", "pixel acc", "IoU (mean)", "IoU (pooled)", "IoU undefined"):
        table.add_column(c, justify="right")
    for t, s in seed.items():
        table.add_row(
            f"{t:g}", str(s["n_images"]), fmt(s["pixel_acc"]), fmt(s["iou"]),
            fmt(s["pooled_iou"]), str(s["n_iou_undefined"]),
        )
    return table


def parsing_table(columns: Sequence[tuple[str, ParsingMetrics]], names: Sequence[str] = PARSING_LABELS) -> Table:
    """Per class, two columns per prediction folder: IoU and boundary F (at each column's
    tolerance); then mIoU beside the mean boundary F, pixel accuracy, images, missing."""
    tols = sorted({m.boundary_tol for _, m in columns})
    tol_txt = "/".join(f"{t:g}" for t in tols) or f"{ParsingMetrics().boundary_tol:g}"
    table = Table(title=f"parsing IoU and boundary F (bF, tolerance {tol_txt} px) per class")
    table.add_column("label", justify="right")
    table.add_column("class")
    for name, _ in columns:
        table.add_column(f"{name} IoU", justify="right")
        table.add_column(f"{name} bF", justify="right")
    ious = [m.per_class_iou for _, m in columns]
    bfs = [m.per_class_boundary[2] for _, m in columns]
    for k, label in enumerate(names):
        cells = [fmt(_finite(float(v[k]))) for pair in zip(ious, bfs, strict=True) for v in pair]
        table.add_row(str(k), label, *cells)
    table.add_section()
    table.add_row("", "mIoU, mean bF", *(c for _, m in columns for c in (fmt(_finite(m.miou)), fmt(_finite(m.boundary_f)))))
    table.add_row("", "pixel acc", *(c for _, m in columns for c in (fmt(_finite(m.pixel_acc)), "")))
    table.add_row("", "images", *(c for _, m in columns for c in (str(m.n_images), "")))
    table.add_row("", "missing", *(c for _, m in columns for c in (str(len(m.missing)), "")))
    return table


def _finite(x: float) -> float | None:
    return None if x != x else x
