"""Offline checks that an exported ONNX graph is TensorRT-ready by construction.

TensorRT cannot run in our build and test environments, so these checks stand in for
it: no data-dependent control flow or output sizes (Loop, If, Scan, NonZero, ...),
every tensor shape static after ONNX shape inference, and every op type listed in
``trt_supported_ops.txt`` (the TensorRT ONNX parser's support matrix; see its header).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import onnx

#: Ops whose control flow or output size depends on the data; the wrapper must avoid them.
FORBIDDEN_OPS: frozenset[str] = frozenset(
    {"Loop", "If", "Scan", "NonZero", "NonMaxSuppression", "Compress", "Unique", "SequenceConstruct"}
)


@lru_cache(maxsize=1)
def trt_supported_ops() -> frozenset[str]:
    """Op types from ``trt_supported_ops.txt`` (one per line, ``#`` comments)."""
    text = resources.files("clothparse.export").joinpath("trt_supported_ops.txt").read_text("utf-8")
    ops = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(op for op in ops if op)


@dataclass
class GraphReport:
    """Result of ``check_graph``: empty lists mean the check passed."""

    op_counts: dict[str, int]
    forbidden: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    dynamic: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.forbidden or self.unsupported or self.dynamic)

    def summary(self) -> str:
        """One line: pass/fail and what failed."""
        if self.ok:
            n = sum(self.op_counts.values())
            return f"graph checks passed: {n} nodes, {len(self.op_counts)} op types, all static, all in the TensorRT list"
        parts = []
        if self.forbidden:
            parts.append(f"data-dependent ops {sorted(set(self.forbidden))}")
        if self.unsupported:
            parts.append(f"ops not in the TensorRT list {sorted(set(self.unsupported))}")
        if self.dynamic:
            parts.append(f"{len(self.dynamic)} tensors with non-static shapes (e.g. {self.dynamic[0]})")
        return "graph checks failed: " + "; ".join(parts)


def _is_static(vi: onnx.ValueInfoProto) -> bool:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return False
    return all(d.HasField("dim_value") and d.dim_value >= 0 for d in t.shape.dim)


def check_graph(model: onnx.ModelProto, infer: bool = True) -> GraphReport:
    """Check op types and static shapes of ``model`` (shape inference runs first unless told not to)."""
    if infer:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    graph = model.graph
    counts = Counter(n.op_type for n in graph.node if n.domain in ("", "ai.onnx"))
    custom = [f"{n.domain}::{n.op_type}" for n in graph.node if n.domain not in ("", "ai.onnx")]
    supported = trt_supported_ops()
    report = GraphReport(dict(counts))
    report.forbidden = [op for op in counts if op in FORBIDDEN_OPS]
    report.unsupported = [op for op in counts if op not in supported] + custom
    # Subgraph attributes would hide nodes from the checks above.
    for node in graph.node:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            report.forbidden.append(node.op_type)
    produced = {o for n in graph.node for o in n.output}
    infos = {vi.name: vi for vi in list(graph.value_info) + list(graph.input) + list(graph.output)}
    initializers = {i.name for i in graph.initializer}
    for name in sorted(produced | {i.name for i in graph.input}):
        if not name or name in initializers:
            continue
        vi = infos.get(name)
        if vi is None or not _is_static(vi):
            report.dynamic.append(name)
    return report
