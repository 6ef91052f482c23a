"""fp32 exported ONNX graph -> mixed-precision fp16 graph (for strongly typed TensorRT 11).

TensorRT 11 takes each layer's precision from the ONNX types, so the fp16 variant of an
export is a graph whose types say where fp16 is used. The rule is structural, decided on
the dataflow graph, never on node names:

* **fp16**: every *weighted layer* (Conv, ConvTranspose, Gemm, MatMul whose weight is a
  constant) and every node whose float output flows, through float edges, into one. That
  is the feature path: input normalisation (the uint8 Cast writes fp16 directly),
  backbone, FPN (adds, upsampling, max-pool), RPN head, the feature canvas, the box
  head's Flatten + Gemms and the mask head convs. RoiAlign is a barrier: it runs in fp32
  (its rois are pixel coordinates) and only its feature input counts as flowing into the
  heads, so the proposals and detections that feed its rois are not pulled into fp16.
* **fp32**: everything else, i.e. whatever a layer's output turns into after the last
  layer: RPN objectness ranking (TopK), box-delta decoding (Exp, coordinate arithmetic:
  pixel coordinates near 1024 have a 0.5-px fp16 step and areas near 1e6 overflow fp16's
  65504), clipping against ``image_sizes``, the matrix NMS (IoU matrices, MatMul over 0/1
  masks), candidate TopK and score selection, RoiAlign, the class softmax and the mask
  Gather + Sigmoid. None of it feeds a weighted layer except through RoiAlign's rois.
  The class softmax also falls on the fp32 side. Measured (fp16 rounding emulated in ORT
  on the test checkpoints): an fp16 softmax output changed no detection and moved the
  largest score difference by under 1e-4, so it could be fp16, but its share of the
  work is negligible and fp32 keeps the scores compared against the score floor exact.

fp16 range: the largest activation in the fp16 region of the trained demo checkpoint was
50 (pixels aside, 0..255), far below 65504; weights beyond it are clipped (with a note).
ONNX Runtime's CPU EP runs most fp16 ops by casting to fp32 around them, so on the CPU the
file shows the effect of fp16 weights only; it is meant for TensorRT.

Graph I/O types are unchanged. Each tensor that crosses the boundary gets exactly one
Cast, so nothing the fp32 region reads is rounded through fp16 on the way. A constant
(initializer, Constant, ConstantOfShape, Identity of a constant) is stored in fp16 only
when every consumer reads it in fp16; otherwise it stays fp32 and gets a Cast for its fp16
consumers. Inputs that the ONNX schema fixes to float32 (e.g. Resize's ``scales``) stay
float32. The pass uses only ``onnx``. onnxconverter-common's ``convert_float_to_float16``
with this rule as a node block list produced an invalid graph for our exports, leaving
~970 fp16 round-trip Casts inside the fp32 region.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from clothparse.errors import DependencyError, ModelError
from clothparse.io.atomic import write_bytes

#: Layers with learned weights: the fp16 region is these and everything feeding them.
WEIGHTED_OPS: frozenset[str] = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
#: Ops kept in fp32 whose backward walk continues only into their first input (the features).
BARRIER_OPS: frozenset[str] = frozenset({"RoiAlign"})
_CONST_OPS = frozenset({"Constant", "ConstantOfShape"})
#: Ops that read only a tensor's shape: they read it in whichever precision it is produced.
_SHAPE_OPS = frozenset({"Shape", "Size"})
FP16_MAX = 65504.0


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise DependencyError("fp16 conversion needs onnx (pip install onnx)") from None
    return onnx


class _Graph:
    """Index of one ONNX graph: float tensors, producers, consumers, constants, schemas."""

    def __init__(self, model: Any) -> None:
        onnx = _onnx()
        self.onnx, self.tp = onnx, onnx.TensorProto
        g = model.graph
        self.nodes = list(g.node)
        self.opset = {o.domain or "": o.version for o in model.opset_import}
        self.elem: dict[str, int] = {}
        self.shape: dict[str, list[int]] = {}
        for vi in [*g.value_info, *g.input, *g.output]:
            self.elem[vi.name] = vi.type.tensor_type.elem_type
            self.shape[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        self.inits = {t.name: t for t in g.initializer}
        for name, t in self.inits.items():
            self.elem[name] = t.data_type
            self.shape[name] = list(t.dims)
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[tuple[int, int]]] = {}
        self.const = set(self.inits)
        for i, n in enumerate(self.nodes):
            if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in n.attribute):
                raise ModelError(f"fp16 conversion does not handle subgraphs ({n.op_type} {n.name})")
            for j, x in enumerate(n.input):
                if x:
                    self.consumers.setdefault(x, []).append((i, j))
            for x in n.output:
                self.producer[x] = i
            if all(x in self.const for x in n.input if x):  # Constant, Identity(initializer), ...
                self.const.update(n.output)
        self.outputs = {o.name for o in g.output}

    def is_float(self, name: str) -> bool:
        return bool(name) and self.elem.get(name) == self.tp.FLOAT

    def fp16_ok(self, i: int, slot: int, output: bool) -> bool:
        """May slot ``slot`` of node ``i`` hold fp16 (a type parameter allowing float16)?"""
        n = self.nodes[i]
        domain = n.domain or ""
        schema = self.onnx.defs.get_schema(n.op_type, self.opset.get(domain, 1), domain)
        params = schema.outputs if output else schema.inputs
        p = params[min(slot, len(params) - 1)]
        allowed = {c.type_param_str: c.allowed_type_strs for c in schema.type_constraints}
        return "tensor(float16)" in allowed.get(p.type_str, [p.type_str])

    def float_inputs(self, i: int) -> Iterable[tuple[int, str]]:
        return ((j, x) for j, x in enumerate(self.nodes[i].input) if self.is_float(x))

    def macs(self, i: int) -> int:
        """Multiply-accumulates of a Conv/ConvTranspose/Gemm/MatMul node (0 for other ops)."""
        n = self.nodes[i]
        if n.op_type not in WEIGHTED_OPS:
            return 0
        x, w, y = (self.shape.get(v, []) for v in (n.input[0], n.input[1], n.output[0]))
        if not (x and w and y) or 0 in x + w + y:
            return 0  # unknown shape
        if n.op_type == "ConvTranspose":  # each input element scatters into Cout/group * kernel outputs
            return math.prod(x) * math.prod(w[1:])
        trans_a = any(a.name == "transA" and a.i for a in n.attribute)
        k = math.prod(w[1:]) if n.op_type == "Conv" else x[-2] if n.op_type == "Gemm" and trans_a else x[-1]
        return math.prod(y) * k


def fp16_nodes(model: Any) -> set[int]:
    """Indices (in ``model.graph.node``) of the nodes that the rule puts in fp16.

    ``model`` must carry inferred types (exports store them; see the module docstring).
    """
    gr = _Graph(model)
    seeds = [
        i for i, n in enumerate(gr.nodes)
        if n.op_type in WEIGHTED_OPS and len(n.input) > 1 and n.input[1] in gr.const
        and any(gr.is_float(x) for x in n.output)
    ]
    fp16: set[int] = set()
    barriers: set[int] = set()
    stack = list(seeds)
    while stack:
        i = stack.pop()
        if i in fp16 or i in barriers:
            continue
        n = gr.nodes[i]
        if n.op_type in BARRIER_OPS:
            barriers.add(i)
            inputs = list(gr.float_inputs(i))[:1]
        else:
            fp16.add(i)
            inputs = list(gr.float_inputs(i))
        # Constants are not walked into: whether they become fp16 depends on all their consumers.
        stack += [gr.producer[x] for _, x in inputs if x in gr.producer and x not in gr.const]
    fp16 |= {i for i, n in enumerate(gr.nodes) if n.op_type in _SHAPE_OPS and gr.producer.get(n.input[0]) in fp16}
    return fp16


def _slot16(gr: _Graph, fp16: set[int], i: int, j: int) -> bool:
    return i in fp16 and gr.fp16_ok(i, j, output=False)


def _add_constants(gr: _Graph, fp16: set[int]) -> None:
    """Constant-producing nodes join fp16 when every consumer of their float outputs reads fp16."""
    for i in reversed(range(len(gr.nodes))):  # consumers before producers
        n = gr.nodes[i]
        outs = [(k, x) for k, x in enumerate(n.output) if gr.is_float(x)]
        if i in fp16 or not outs or not all(x in gr.const and x not in gr.outputs for _, x in outs):
            continue
        if n.op_type not in _CONST_OPS and not any(gr.is_float(x) for x in n.input):
            continue
        if all(gr.fp16_ok(i, k, output=True) for k, _ in outs) and all(
            _slot16(gr, fp16, c, j) for _, x in outs for c, j in gr.consumers.get(x, [])
        ):
            fp16.add(i)


def _to_fp16_tensor(gr: _Graph, t: Any, name: str, clipped: list[str]) -> Any:
    import numpy as np

    arr = gr.onnx.numpy_helper.to_array(t)
    if np.abs(arr[np.isfinite(arr)]).max(initial=0.0) > FP16_MAX:
        clipped.append(t.name or name)
    arr = np.where(np.isfinite(arr), np.clip(arr, -FP16_MAX, FP16_MAX), arr)
    return gr.onnx.numpy_helper.from_array(arr.astype(np.float16), name)


def apply_fp16(model: Any, fp16: set[int]) -> tuple[Any, dict[str, Any]]:
    """A copy of ``model`` with nodes ``fp16`` in fp16 (plus constants only they read) and one
    Cast per tensor crossing the boundary; returns (model, stats)."""
    onnx = _onnx()
    gr = _Graph(model)
    fp16 = set(fp16)
    _add_constants(gr, fp16)
    tp = gr.tp
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    nodes = list(g.node)
    clipped: list[str] = []
    produced16: set[str] = set()
    for i in fp16:
        n = nodes[i]
        for k, x in enumerate(n.output):
            if gr.is_float(x) and gr.fp16_ok(i, k, output=True):
                produced16.add(x)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == tp.FLOAT:
                a.t.CopyFrom(_to_fp16_tensor(gr, a.t, a.t.name, clipped))
        if n.op_type == "Cast" and n.output[0] in produced16:
            for a in n.attribute:
                if a.name == "to":
                    a.i = tp.FLOAT16
    inits16 = {
        x for x in gr.inits
        if gr.is_float(x) and gr.consumers.get(x) and x not in gr.outputs
        and all(_slot16(gr, fp16, c, j) for c, j in gr.consumers[x])
    }
    for t in g.initializer:
        if t.name in inits16:
            t.CopyFrom(_to_fp16_tensor(gr, t, t.name + "::fp16", clipped))
    # Rewire: consumers read x (fp32) or x::fp16; a Cast makes whichever side is missing.
    before: list[Any] = []
    after: dict[int, list[Any]] = {}
    casts = 0
    for x in sorted(gr.consumers.keys() | gr.outputs):
        if not gr.is_float(x):
            continue
        uses = gr.consumers.get(x, [])
        reads16 = [(c, j) for c, j in uses if _slot16(gr, fp16, c, j)]
        reads32 = len(uses) > len(reads16) or x in gr.outputs
        x16 = x + "::fp16"
        for c, j in reads16:
            nodes[c].input[j] = x16
        if x in produced16:
            p = nodes[gr.producer[x]]
            p.output[list(p.output).index(x)] = x16
            cast = onnx.helper.make_node("Cast", [x16], [x], name=x + "::to_fp32", to=tp.FLOAT) if reads32 else None
        elif x in inits16 or not reads16:
            cast = None
        else:
            cast = onnx.helper.make_node("Cast", [x], [x16], name=x + "::to_fp16", to=tp.FLOAT16)
        if cast is not None:
            casts += 1
            src = gr.producer.get(x, gr.producer.get(x16))
            (before if src is None else after.setdefault(src, [])).append(cast)
    ordered = before + [m for i, n in enumerate(nodes) for m in [n, *after.get(i, [])]]
    del g.node[:]
    g.node.extend(ordered)
    del g.value_info[:]  # stale types; re-inferred below
    out = onnx.shape_inference.infer_shapes(out, check_type=True, strict_mode=True, data_prop=True)
    compute = [i for i, n in enumerate(gr.nodes) if n.op_type not in _CONST_OPS and any(
        gr.is_float(x) for x in [*n.input, *n.output])]
    macs = [gr.macs(i) for i in range(len(gr.nodes))]
    stats = {
        "fp16": sum(1 for i in compute if i in fp16), "compute": len(compute), "casts": casts,
        "mac_share": sum(macs[i] for i in fp16) / max(1, sum(macs)),
        "weighted": sum(1 for i in fp16 if gr.nodes[i].op_type in WEIGHTED_OPS), "clipped": clipped,
    }
    return out, stats


def convert_fp16(src: str | Path, dst: str | Path) -> list[str]:
    """Write the mixed-precision fp16 variant of the fp32 export ``src`` to ``dst`` (atomically).

    Returns one-line notes. Raises ModelError when the graph has no weighted layer or the
    result fails ``onnx.checker`` (full check, strict type inference); ``dst`` is then untouched.
    """
    onnx = _onnx()
    src, dst = Path(src), Path(dst)
    try:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(src)), check_type=True, strict_mode=True)
        conv, stats = apply_fp16(model, fp16_nodes(model))
        if stats["weighted"]:
            onnx.checker.check_model(conv, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ModelError(f"fp16 graph failed the ONNX check: {' '.join(str(exc).split())[:300]}", src) from None
    if not stats["weighted"]:
        raise ModelError("fp16 conversion found no weighted layer (Conv/Gemm) to convert", src)
    write_bytes(dst, conv.SerializeToString())
    notes = [
        f"fp16: {stats['fp16']} of {stats['compute']} float nodes in fp16 ({stats['weighted']} weighted layers "
        f"and the feature path into them, {stats['mac_share']:.1%} of multiply-accumulates), {stats['casts']} "
        "casts at the boundary; fp32 kept for box decoding, clipping, NMS, top-k, RoiAlign, softmax, mask sigmoid"
    ]
    if stats["clipped"]:
        notes.append(f"fp16: constants beyond +-65504 were clipped: {', '.join(stats['clipped'][:5])}")
    return notes
