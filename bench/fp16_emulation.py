"""How far fp16 moves the answers, measured without a GPU.

ONNX Runtime's CPU provider runs the layers of ``model.fp16.onnx`` in fp32 with fp16
weights, so it shows the rounding of the weights only. TensorRT also keeps the
activations of those layers in fp16. This script emulates that in an fp32 graph: the
weights read by the fp16 region (``clothparse.export.fp16.fp16_nodes``, the same rule as
the converter) are rounded to fp16, and every float output of a node in that region is
rounded through fp16 (Cast to float16 and back). It then prints the parity of the
emulated graph against the torch engine at the score floor.

    python -m clothparse.bench.fp16_emulation tests/assets/reference-small --out /tmp/fp16emu
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np


def emulate(fp32_path: Path, out_path: Path) -> Path:
    """Write the emulating fp32 graph of ``fp32_path`` (an exported ``model.onnx``) + sidecar."""
    import onnx
    from clothparse.export.fp16 import fp16_nodes
    from onnx import TensorProto, helper, numpy_helper

    from clothparse.contract import sidecar as sc_mod

    model = onnx.load(str(fp32_path))
    region = fp16_nodes(model)
    graph = model.graph
    nodes = list(graph.node)
    read_by_region = {x for i in region for x in nodes[i].input}
    for t in graph.initializer:
        if t.data_type == TensorProto.FLOAT and t.name in read_by_region:
            rounded = numpy_helper.to_array(t).astype(np.float16).astype(np.float32)
            t.CopyFrom(numpy_helper.from_array(rounded, t.name))
    floats = {vi.name for vi in [*graph.value_info, *graph.output] if vi.type.tensor_type.elem_type == TensorProto.FLOAT}
    new = []
    for i, n in enumerate(nodes):
        new.append(n)
        if i not in region or n.op_type in ("Shape", "Size"):
            continue
        for k, x in enumerate(n.output):
            if x in floats:
                n.output[k] = f"{x}::fp32"
                new.append(helper.make_node("Cast", [f"{x}::fp32"], [f"{x}::fp16"], to=TensorProto.FLOAT16))
                new.append(helper.make_node("Cast", [f"{x}::fp16"], [x], to=TensorProto.FLOAT))
    del graph.node[:]
    graph.node.extend(new)
    onnx.save(model, str(out_path))
    base = sc_mod.load_sidecar(fp32_path)
    sc_mod.write_sidecar(out_path, replace(base, precision="fp16", model_sha256=sc_mod.sha256_file(out_path)))
    return out_path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--out", type=Path, default=Path("fp16_emulation"))
    args = ap.parse_args(argv)
    from clothparse.export import parity
    from clothparse.export.exporter import ExportSpec, export_onnx_model

    from clothparse.engines.onnx_engine import OnnxEngine
    from clothparse.engines.torch_engine import TorchEngine
    from clothparse.model.checkpoint import load_checkpoint

    args.out.mkdir(parents=True, exist_ok=True)
    loaded = load_checkpoint(args.checkpoint)
    fp32 = export_onnx_model(loaded.model, loaded.class_names, args.out / "model.onnx", ExportSpec())
    emulated = emulate(fp32.path, args.out / "model.fp16-emulated.onnx")
    sc = fp32.sidecar
    photos = parity.parity_photos(sc.min_size)
    ref = TorchEngine(loaded.model, loaded.class_names, "cpu", score_thresh=sc.score_floor, canvas=sc.canvas)
    test = OnnxEngine(emulated, device="cpu", score_thresh=sc.score_floor)
    row = parity.engine_parity("fp16-emulated vs torch", ref, test, photos, sc.score_floor, parity.REDUCED["fp16"])
    print(parity.format_table([row]))


if __name__ == "__main__":
    main()
