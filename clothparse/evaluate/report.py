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
    """Per-class IoU with one column per prediction folder, then mIoU, pixel accuracy, missing."""
    table = Table(title="parsing IoU per class")
    table.add_column("label", justify="right")
    table.add_column("class")
    for name, _ in columns:
        table.add_column(name, justify="right")
    ious = [m.per_class_iou for _, m in columns]
    for k, label in enumerate(names):
        vals = [None if v[k] != v[k] else float(v[k]) for v in ious]  # NaN != NaN
        table.add_row(str(k), label, *(fmt(v) for v in vals))
    table.add_section()
    table.add_row("", "mIoU", *(fmt(_finite(m.miou)) for _, m in columns))
    table.add_row("", "pixel acc", *(fmt(_finite(m.pixel_acc)) for _, m in columns))
    table.add_row("", "images", *(str(m.n_images) for _, m in columns))
    table.add_row("", "missing", *(str(len(m.missing)) for _, m in columns))
    return table


def _finite(x: float) -> float | None:
    return None if x != x else x
