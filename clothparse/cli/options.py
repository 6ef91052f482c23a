"""Shared CLI options, documented once as ``Annotated`` aliases.

Commands import these aliases rather than redeclaring help texts, so an option means
the same thing, with the same help, in every command that takes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder (created if missing).")]
DataDir = Annotated[
    Path,
    typer.Option(
        "--data",
        help="Dataset folder: train.json/val.json/test.json (COCO) and images/, as written by `cpt data synth` or `cpt data split`.",
    ),
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed (results are deterministic for a seed).")]
Device = Annotated[
    str, typer.Option("--device", help="Torch device: auto, cpu, cuda or cuda:N (auto = cuda if available).")
]
ModelPath = Annotated[
    Path,
    typer.Option("--model", "-m", help="Clothing model: a checkpoint folder/.safetensors, or an exported .onnx/.engine."),
]
BodyModelPath = Annotated[
    Path | None,
    typer.Option(
        "--body-model",
        help="Body (person) model: a checkpoint or exported file; default: torchvision's COCO Mask R-CNN from the local cache.",
    ),
]
BodyModelOrNone = Annotated[
    Path | None,
    typer.Option(
        "--body-model",
        help="Body (person) model: a checkpoint or exported file, or 'none' for no body model (nothing becomes "
        "skin/body, no growth; a file named none: give its full path); default: torchvision's COCO Mask R-CNN "
        "from the local cache.",
    ),
]
ScoreThresh = Annotated[
    float | None,
    typer.Option("--score-thresh", min=0.0, max=1.0, help="Keep detections with score >= this (default: the model's own)."),
]
Split = Annotated[str, typer.Option("--split", help="Which annotation file of --data to use: train, val or test.")]
Workers = Annotated[int, typer.Option("--workers", min=0, help="Data-loading worker processes.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; errors and the summary only.")]
Ratios = Annotated[
    str, typer.Option("--ratios", help="Fractions of images for train,val,test; must sum to 1.")
]
EngineName = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="torch, onnx, openvino or trt (default: from the --model file type; openvino reads .onnx exports).",
    ),
]
EnginePrecision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="openvino engine: auto (bf16 where the CPU has it, int8 for an int8 export, else f32), f32, bf16 or int8.",
    ),
]
EngineThreads = Annotated[
    int,
    typer.Option(
        "--threads", min=0,
        help="CPU threads of the model engine (0: the runtime's default, every core); onnx, openvino and torch.",
    ),
]
BodyScore = Annotated[
    float, typer.Option("--body-score-thresh", min=0.0, max=1.0, help="Keep person detections with score >= this.")
]
SpBackend = Annotated[str, typer.Option("--superpixels", help="SLIC backend: auto, skimage or native.")]
