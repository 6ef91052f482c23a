"""The benchmark grid behind ``cpt bench``: engines x precision x size x batch x superpixels.

Each cell builds a ``clothparse.parse.Parser`` and times, per iteration (after
``warmup`` discarded iterations): decode (JPEG -> RGB), preprocess (the engine's own
input preparation, timed alone: the model stage includes it too), clothing model, body
model, superpixels, fusion (from ``ParseResult.timings``), encoding outputs
(``clothparse.parse.outputs.encode_result``: RLE, polygons, PNG label map and overlay),
and end to end (decode + parse + encode of the whole batch, one clock). Per-image stage
times are in ms; ``end_to_end`` is per batch. The body model always runs in PyTorch.

Every cell of the grid is a row. A cell that does not apply here (int8 on the torch engine,
fp16 autocast without CUDA, an export size that is not a multiple of 32, --model of another
kind) or whose optional dependency is missing (TensorRT, the native SLIC) is kept with
``status: "skipped"`` and a reason that says what to install. Any other exception is a
crash: the row has ``status: "failed"``, the one-line ``error`` and the ``traceback``, the
grid goes on, and ``cpt bench`` exits non-zero after writing the report.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clothparse.bench import timing
from clothparse.bench.inputs import BenchImage, load_images
from clothparse.bench.models import (
    TorchModel,
    body_model,
    export_model,
    load_torch_model,
    random_model,
    trt_available,
)
from clothparse.bench.report import STAGES

from clothparse.errors import ConfigError

ENGINES = ("torch", "onnx", "openvino", "trt")
#: bf16 is the openvino engine's CPU precision (from the fp32 export); the others name the export.
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
SUPERPIXELS = ("auto", "skimage", "native")
REPORT_FORMAT = "clothparse-bench/1"


@dataclass
class SuiteConfig:
    """Settings of one suite run (see ``cpt bench --help``); sizes are (height, width)."""

    engines: list[str] = field(default_factory=lambda: ["torch", "onnx"])
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    sizes: list[tuple[int, int]] = field(default_factory=lambda: [(800, 1024)])
    batches: list[int] = field(default_factory=lambda: [1])
    superpixels: list[str] = field(default_factory=lambda: ["auto"])
    model: Path | None = None
    body_model: str | None = None
    backbone: str = "resnet101"
    images: Path | None = None
    warmup: int = 2
    repeat: int = 10
    baselines: bool = True
    seed_repeat: int = 3
    out: Path = Path("bench_out")
    device: str = "auto"

    def validate(self) -> SuiteConfig:
        def check(name: str, values: list[str], allowed: tuple[str, ...]) -> None:
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise ConfigError(f"--{name}: expected a comma-separated subset of {','.join(allowed)}, got {','.join(values) or 'nothing'}")

        check("engines", self.engines, ENGINES)
        check("precision", self.precisions, PRECISIONS)
        check("superpixels", self.superpixels, SUPERPIXELS)
        if not self.sizes or any(min(s) < 32 for s in self.sizes):
            raise ConfigError(f"--sizes: need HxW sizes of at least 32 px, got {self.sizes}")
        if not self.batches or min(self.batches) < 1:
            raise ConfigError(f"--batch: batch sizes must be >= 1, got {self.batches}")
        if self.warmup < 0 or self.repeat < 1:
            raise ConfigError(f"--warmup must be >= 0 and --repeat >= 1, got {self.warmup}, {self.repeat}")
        return self


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"800x1024,600x400"`` -> [(800, 1024), (600, 400)] (height x width); ConfigError otherwise."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            h, w = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--sizes: expected HxW like 800x1024, got {part!r}") from None
        out.append((h, w))
    if not out:
        raise ConfigError("--sizes: no size given")
    return out


def parse_list(text: str) -> list[str]:
    return [p.strip().lower() for p in text.split(",") if p.strip()]


@dataclass
class _Cell:
    engine: str
    precision: str
    height: int
    width: int
    batch: int
    superpixels: str

    @property
    def name(self) -> str:
        return f"{self.engine} {self.precision} {self.height}x{self.width} b{self.batch} sp={self.superpixels}"

    def row(self, **extra: Any) -> dict[str, Any]:
        return {"name": self.name, **asdict(self), **extra}


class _Skip(Exception):
    """A cell that cannot run on this machine; the message is the reason."""


#: What to install for an optional module a cell imports (the top-level module name).
INSTALL_HINTS = {
    "tensorrt": "pip install 'clothparse[trt]' (needs an NVIDIA GPU)",
    "fast_slic": "pip install cython wheel setuptools && pip install --no-build-isolation fast-slic",
}


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300] if not isinstance(exc, _Skip) else str(exc)


def missing_dependency(exc: BaseException) -> str | None:
    """The skip reason when ``exc`` is a missing optional dependency (saying what to install),
    else None: every other exception is a failure of the cell."""
    from clothparse.errors import DependencyError

    if isinstance(exc, DependencyError):
        return " ".join(str(exc).split())
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        if top != "clothparse":  # a missing clothparse module is a broken install, not an option
            return f"{exc.name} is not installed ({INSTALL_HINTS.get(top, f'pip install {top}')})"
    return None


def failed_row(row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """``row`` marked failed, with the one-line error and the traceback of ``exc``."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {**row, "status": "failed", "error": _one_line(exc), "traceback": tb}


def failures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows and baselines of ``report`` whose status is ``failed``."""
    return [r for r in (*report["rows"], *report["baselines"]) if r.get("status") == "failed"]


class Suite:
    """Runs the grid of ``cfg`` and returns the report dict (``run``)."""

    def __init__(self, cfg: SuiteConfig, log: Callable[[str], None] = print) -> None:
        from clothparse.device import resolve_device

        self.cfg = cfg.validate()
        self.log = log
        self.device = resolve_device(cfg.device)
        self.notes: list[str] = []
        self.export_path: Path | None = None
        self.tm: TorchModel | None = None
        if cfg.model is not None:
            from clothparse.engines.loader import engine_kind

            if engine_kind(cfg.model) == "torch":
                self.tm = load_torch_model(cfg.model)
            else:
                self.export_path = cfg.model
        else:
            self.tm = random_model(cfg.backbone)
            self.notes.append(f"clothing model: random-init {cfg.backbone} (score threshold 0: every detection kept)")
        body_backbone = "small" if cfg.backbone == "small" else "resnet50"
        self.body, note = body_model(cfg.body_model, body_backbone)
        self.notes.append(note + "; the body model runs in PyTorch in every row")
        self.notes.append("every row runs on an H x W canvas with the model's resize rule (clothparse.contract.canvas)")
        self.notes.append("preprocess is measured alone; clothing_model includes it")

    # -- engines -------------------------------------------------------------------
    def _torch_engine(self, tm: TorchModel, h: int, w: int, batch: int) -> Any:
        from clothparse.engines.torch_engine import TorchEngine, model_canvas

        # The same H x W canvas as the exported rows (clothparse.contract.canvas).
        return TorchEngine(tm.model, tm.class_names, self.device, batch_size=batch, canvas=model_canvas(tm.model, h, w))

    def clothing_engine(self, cell: _Cell, calib: list[Any]) -> Any:
        """The clothing engine of ``cell``; raises ``_Skip`` with the reason when it cannot run."""
        e, p = cell.engine, cell.precision
        if p == "bf16" and e != "openvino":
            raise _Skip("bf16 is the openvino engine's CPU precision")
        if e == "openvino" and p == "fp16":
            raise _Skip("the openvino CPU engine runs fp16 graphs in fp32 or bf16: use --precision fp32,bf16")
        if e == "openvino" and p == "bf16":
            from clothparse.engines.openvino_engine import cpu_has_bf16

            if not cpu_has_bf16():
                raise _Skip("this CPU has no bfloat16 support (OpenVINO's OPTIMIZATION_CAPABILITIES lacks BF16)")
        if e == "torch":
            if self.tm is None:
                raise _Skip("--model is an exported file; the torch engine needs a checkpoint")
            if p == "int8":
                raise _Skip("int8 is for exported models (onnx QDQ, trt), not torch")
            if p == "fp16" and self.device.type != "cuda":
                raise _Skip("torch fp16 (autocast) needs a CUDA device")
            return self._torch_engine(self.tm, cell.height, cell.width, cell.batch)
        if e == "trt":
            reason = trt_available()
            if reason:
                raise _Skip(reason)
        path = self.export_path
        # openvino reads the ONNX export: bf16 from the fp32 file, int8 from the Q/DQ one.
        runtime, export_precision = ("onnx", "fp32" if p == "bf16" else p) if e == "openvino" else (e, p)
        if path is not None:
            from clothparse.engines.loader import can_open, engine_kind

            if not can_open(e, path):
                raise _Skip(f"--model {path.name} is a {engine_kind(path)} file, not {e}")
        else:
            assert self.tm is not None
            if cell.height % 32 or cell.width % 32:
                raise _Skip(f"exports need H and W that are multiples of 32 (got {cell.height}x{cell.width})")
            self.log(f"exporting {runtime} {export_precision} {cell.height}x{cell.width} batch {cell.batch} ...")
            path = export_model(self.tm, self.cfg.out / "exports", cell.height, cell.width, cell.batch, runtime,
                                export_precision, calib)
        from clothparse.engines.loader import open_engine

        device = "cpu" if self.device.type == "cpu" or e == "openvino" else "auto"
        if e != "openvino":
            return open_engine(path, kind=e, device=device)
        return open_engine(path, kind=e, device=device, precision={"fp32": "f32", "bf16": "bf16", "int8": "int8"}[p])

    def _preprocess(self, engine: Any) -> Callable[[list[Any]], Any]:
        """The engine's preprocessing alone: the one canvas contract for every engine."""
        from clothparse.contract.canvas import prepare_batch

        sc = getattr(engine, "sidecar", None)
        canvas, batch = (sc.canvas, sc.batch) if sc is not None else (engine.canvas, None)
        return lambda imgs: prepare_batch(imgs, canvas, batch)

    def _autocast(self, cell: _Cell) -> contextlib.AbstractContextManager[Any]:
        if cell.engine == "torch" and cell.precision == "fp16":
            import torch

            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    # -- one cell --------------------------------------------------------------------
    def run_cell(self, cell: _Cell, images: list[BenchImage], parser: Any) -> tuple[dict[str, Any], Any]:
        """Time ``cell``; returns (row, the last batch's first ParseResult)."""
        from clothparse.io.images import decode_rgb
        from clothparse.parse.outputs import encode_result

        pre = self._preprocess(parser.clothing)
        samples: dict[str, list[float]] = {s: [] for s in STAGES}
        e2e: list[float] = []
        n_det: list[int] = []
        last: Any = None
        timing.reset_peak_gpu()
        for it in range(self.cfg.warmup + self.cfg.repeat):
            rgbs = [b.rgb for b in images]
            with timing.Clock() as c_pre:
                pre(rgbs)
            with timing.Clock() as c_all, self._autocast(cell):
                decode_s = []
                decoded = []
                for b in images:
                    t0 = time.perf_counter()
                    decoded.append(decode_rgb(b.jpeg, b.name))
                    decode_s.append(time.perf_counter() - t0)
                results = parser.parse_batch(decoded, decode_s)
                encode_s = []
                for r, im, b in zip(results, decoded, images, strict=True):
                    t0 = time.perf_counter()
                    encode_result(r, im, b.name)
                    encode_s.append(time.perf_counter() - t0)
            if it < self.cfg.warmup:
                continue
            for r, enc in zip(results, encode_s, strict=True):
                for s in ("decode", "clothing_model", "body_model", "superpixels", "fusion"):
                    samples[s].append(float(r.timings.get(s, 0.0)))
                samples["encode"].append(enc)
                n_det.append(len(r.clothing))
            samples["preprocess"].append(c_pre.seconds / len(images))
            e2e.append(c_all.seconds)
            last = results[0]
        stages = {s: timing.summarize(v).to_dict() for s, v in samples.items()}
        e2e_stats = timing.summarize(e2e)
        med = {s: float(stages[s]["median_ms"]) for s in STAGES}
        post = med["superpixels"] + med["fusion"] + med["encode"]
        row = cell.row(
            status="ok",
            superpixel_backend=parser.superpixels.name if parser.superpixels is not None else None,
            stages=stages,
            end_to_end=e2e_stats.to_dict(),
            end_to_end_per_image_ms=round(e2e_stats.median_ms / len(images), 4),
            throughput_ips=round(timing.throughput(len(images), e2e_stats.median_ms / 1000.0), 4),
            post_model_share=round(post / med["clothing_model"], 4) if med["clothing_model"] > 0 else None,
            detections_mean=round(sum(n_det) / len(n_det), 2),
            peak_rss_mb=round(timing.peak_rss_mb(), 1),
            peak_gpu_mb=None if (g := timing.peak_gpu_mb()) is None else round(g, 1),
        )
        return row, last

    # -- the grid --------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from clothparse.bench.report import machine_info, versions

        cfg = self.cfg
        rows: list[dict[str, Any]] = []
        baselines: list[dict[str, Any]] = []
        sources: set[str] = set()
        body_engines: dict[tuple[int, int, int], Any] = {}
        for h, w in cfg.sizes:
            first_ok: tuple[Any, Any] | None = None
            for batch in cfg.batches:
                images, source = load_images(cfg.images, h, w, max(batch, 1))
                sources.add(source)
                if self.body is not None and (h, w, batch) not in body_engines:
                    body_engines[(h, w, batch)] = self._torch_engine(self.body, h, w, batch)
                for engine in cfg.engines:
                    for prec in cfg.precisions:
                        for sp in cfg.superpixels:
                            cell = _Cell(engine, prec, h, w, batch, sp)
                            row, result, parser = self._try_cell(cell, images, body_engines.get((h, w, batch)))
                            rows.append(row)
                            if result is not None and first_ok is None:
                                first_ok = (result, parser)
            if cfg.baselines:
                baselines += self._baselines(h, w, first_ok)
        return {
            "format": REPORT_FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine_info(),
            "versions": versions(),
            "settings": self._settings(sorted(sources)),
            "notes": self.notes,
            "rows": rows,
            "baselines": baselines,
        }

    def _try_cell(self, cell: _Cell, images: list[BenchImage], body: Any) -> tuple[dict[str, Any], Any, Any]:
        from clothparse.parse.pipeline import Parser
        from clothparse.parse.superpixels import get_backend

        self.log(f"{cell.name} ...")
        try:
            backend = get_backend(cell.superpixels)
            if cell.superpixels == "native" and backend.name != "native":
                raise _Skip("the native SLIC is not built")
            clothing = self.clothing_engine(cell, [b.rgb for b in images])
            parser = Parser(clothing, body, backend)
            row, result = self.run_cell(cell, images, parser)
            return row, result, parser
        except _Skip as exc:
            reason = str(exc)
        except Exception as exc:
            missing = missing_dependency(exc)
            if missing is None:
                self.log(f"  FAILED: {_one_line(exc)}")
                return failed_row(cell.row(), exc), None, None
            reason = missing
        self.log(f"  skipped: {reason}")
        return cell.row(status="skipped", reason=reason), None, None

    def _baselines(self, h: int, w: int, first_ok: tuple[Any, Any] | None) -> list[dict[str, Any]]:
        from clothparse.bench.baselines import run_baselines, skipped

        if first_ok is None:
            return [skipped("baselines", f"{h}x{w}", "no grid cell at this size ran")]
        result, parser = first_ok
        images, _ = load_images(self.cfg.images, h, w, 1)
        self.log(f"baselines {h}x{w} ...")
        try:
            return run_baselines(
                images[0].rgb, result.clothing, result.body, parser.superpixels, parser.slic, parser.params,
                self.cfg.warmup, self.cfg.repeat, max(1, min(self.cfg.repeat, self.cfg.seed_repeat)),
            )
        except Exception as exc:  # a crashed baseline must not lose the grid, but it is a failure
            self.log(f"  baselines FAILED: {_one_line(exc)}")
            return [failed_row({"name": "baselines", "size": f"{h}x{w}"}, exc)]

    def _settings(self, sources: list[str]) -> dict[str, Any]:
        c = self.cfg
        return {
            "engines": c.engines, "precisions": c.precisions, "sizes": [f"{h}x{w}" for h, w in c.sizes],
            "batches": c.batches, "superpixels": c.superpixels, "model": str(c.model) if c.model else None,
            "clothing_model": self.tm.source if self.tm is not None else str(self.export_path),
            "body_model": self.body.source if self.body is not None else None, "backbone": c.backbone,
            "images": sources, "warmup": c.warmup, "repeat": c.repeat, "seed_repeat": c.seed_repeat,
            "device": str(self.device), "baselines": c.baselines,
        }


def run_suite(cfg: SuiteConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole grid of ``cfg``; returns the report dict (see ``clothparse.bench.report``)."""
    return Suite(cfg, log).run()
