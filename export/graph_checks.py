"""Offline checks that an exported ONNX graph is TensorRT-ready by construction.

TensorRT cannot run in our build and test environments, so these checks stand in for
it: no data-dependent control flow or output sizes (Loop, If, Scan, NonZero, ...),
every tensor shape static after ONNX shape inference, every op type listed in
``trt_supported_ops.txt`` (the TensorRT 11 ONNX parser's support matrix; see its header for
sources), and the parser's restrictions that an export of ours could run into: the opset
range, TopK's K limit and ``sorted``, symmetric int8 Q/DQ only, UINT8 only at the network's
inputs and outputs, and RoiAlign's ``sampling_ratio`` set explicitly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

#: Ops whose control flow or output size depends on the data; the wrapper must avoid them.
FORBIDDEN_OPS: frozenset[str] = frozenset(
    {"Loop", "If", "Scan", "NonZero", "NonMaxSuppression", "Compress", "Unique", "SequenceConstruct"}
)

#: Default-domain opsets the TensorRT 11.1-11.4 ONNX parser supports (inclusive; 11.5 adds 25).
TRT_OPSETS: tuple[int, int] = (9, 24)

#: Largest TopK K TensorRT 11 supports (ITopKLayer: "only values up to 3840"; larger K fails at run time).
TRT_TOPK_MAX_K = 3840

#: Element types TensorRT's Q/DQ accepts on the quantized side (no UINT8: symmetric int8 only).
TRT_QUANTIZED_TYPES: frozenset[int] = frozenset(
    getattr(TensorProto, name)
    for name in ("INT8", "INT4", "FLOAT8E4M3FN", "FLOAT4E2M1")
    if hasattr(TensorProto, name)
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
    #: Supported ops used in a way the TensorRT 11 parser rejects (one message each).
    restricted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.forbidden or self.unsupported or self.dynamic or self.restricted)

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
        if self.restricted:
            more = f" (+{len(self.restricted) - 3} more)" if len(self.restricted) > 3 else ""
            parts.append("TensorRT 11 restrictions: " + "; ".join(self.restricted[:3]) + more)
        return "graph checks failed: " + "; ".join(parts)


def _is_static(vi: onnx.ValueInfoProto) -> bool:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return False
    return all(d.HasField("dim_value") and d.dim_value >= 0 for d in t.shape.dim)


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Values of the initializers and of the outputs of ``Constant`` nodes."""
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for a in node.attribute:
                if a.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(a.t)
                elif a.name in ("value_int", "value_ints", "value_float", "value_floats"):
                    values[node.output[0]] = np.array(onnx.helper.get_attribute_value(a))
    return values


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """Value of attribute ``name`` of ``node``, or ``default`` when it is absent."""
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _elem_types(graph: onnx.GraphProto) -> dict[str, int]:
    """Element type of every tensor whose type is known (after shape inference)."""
    types = {i.name: i.data_type for i in graph.initializer}
    for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    return types


def _type_name(elem_type: int) -> str:
    return str(TensorProto.DataType.Name(elem_type))


def trt_restrictions(model: onnx.ModelProto) -> list[str]:
    """Uses of supported ops that the TensorRT 11 ONNX parser rejects, one message each.

    Run it on a shape-inferred model (``check_graph`` does) so that tensor types are known.
    """
    graph = model.graph
    problems: list[str] = []
    lo, hi = TRT_OPSETS
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not lo <= imp.version <= hi:
            problems.append(f"opset {imp.version} is outside TensorRT 11's supported opsets {lo}-{hi}")
    consts = _constants(graph)
    types = _elem_types(graph)
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        where = f"{node.op_type} {(node.name or node.output[0])!r}"
        if node.op_type == "TopK":
            if _attr(node, "sorted", 1) != 1:
                problems.append(f"{where}: TensorRT needs sorted=1")
            k = consts.get(node.input[1]) if len(node.input) > 1 else None
            if k is None or k.size != 1:
                problems.append(f"{where}: K is not a constant, so TensorRT's K <= {TRT_TOPK_MAX_K} cannot be checked")
            elif int(k.reshape(-1)[0]) > TRT_TOPK_MAX_K:
                problems.append(
                    f"{where}: K={int(k.reshape(-1)[0])} is above TensorRT 11's TopK limit of {TRT_TOPK_MAX_K}"
                )
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zp_name = node.input[2] if len(node.input) > 2 else ""
            if zp_name:
                zp = consts.get(zp_name)
                if zp is None:
                    problems.append(f"{where}: zero point is not a constant (TensorRT needs it 0)")
                elif np.any(zp != 0):
                    problems.append(f"{where}: zero point is not 0 (TensorRT takes symmetric Q/DQ only)")
            q_type: int | None
            if node.op_type == "DequantizeLinear":
                q_type = types.get(node.input[0])
            elif zp_name:
                q_type = types.get(zp_name)
            else:  # no zero point: output_dtype (opset 21+), else ONNX's default UINT8
                q_type = int(_attr(node, "output_dtype", 0)) or TensorProto.UINT8
            if q_type is not None and q_type not in TRT_QUANTIZED_TYPES:
                hint = " (an INT32 bias: quantize with QuantizeBias=False)" if q_type == TensorProto.INT32 else ""
                problems.append(
                    f"{where}: quantized type {_type_name(q_type)}; TensorRT's Q/DQ takes INT8, INT4, FP8 or FP4{hint}"
                )
        elif node.op_type == "RoiAlign":
            if _attr(node, "sampling_ratio") is None:
                problems.append(
                    f"{where}: set sampling_ratio explicitly (TensorRT's importer defaults it to 1, ONNX to 0)"
                )
            x_type = types.get(node.input[0])
            if x_type is not None and x_type not in (TensorProto.FLOAT, TensorProto.FLOAT16):
                problems.append(f"{where}: ROIAlign_TRT takes FP32/FP16 features, got {_type_name(x_type)}")
    io = {i.name for i in graph.input} | {o.name for o in graph.output}
    for name, t in sorted(types.items()):
        if t == TensorProto.UINT8 and name not in io:
            problems.append(f"tensor {name!r} is UINT8, which TensorRT allows only as a network input or output")
    return problems


def check_graph(model: onnx.ModelProto, infer: bool = True) -> GraphReport:
    """Check op types, static shapes and the parser's restrictions (``trt_restrictions``) of ``model``.

    Shape inference runs first unless told not to.
    """
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
    report.restricted = trt_restrictions(model)
    return report
