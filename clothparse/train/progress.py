"""Rich progress bar for training: step count, epoch, lr and the running loss components."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: Short names of torchvision's Mask R-CNN loss components, for a one-line display.
_SHORT = {
    "loss": "loss", "loss_classifier": "cls", "loss_box_reg": "box", "loss_mask": "mask",
    "loss_objectness": "obj", "loss_rpn_box_reg": "rpn",
}


def _fmt_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{_SHORT.get(k, k)}={v:.3f}" for k, v in losses.items() if k in _SHORT)


class ProgressBar:
    """A rich progress bar on stderr, or nothing when ``enabled`` is false (other ranks, --quiet)."""

    def __init__(self, total: int, enabled: bool = True, completed: int = 0) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self._progress: Progress | None = None
        self._task: Any = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.description}"), console=self.console, transient=False,
            )
            self._task = self._progress.add_task("", total=total, completed=completed)

    def __enter__(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, step: int, epoch: int, losses: dict[str, float], lr: float) -> None:
        if self._progress is not None:
            desc = f"ep {epoch} lr {lr:.2g} {_fmt_losses(losses)}"
            self._progress.update(self._task, completed=step, description=desc)

    def epoch_done(self, metrics: dict[str, Any], improved: bool) -> None:
        if self._progress is not None:
            val = {k[4:]: v for k, v in metrics.items() if k.startswith("val_") and k != "val_s"}
            mark = " (best)" if improved else ""
            self._progress.console.print(
                f"epoch {metrics['epoch']} step {metrics['step']}: val {_fmt_losses(val)}{mark}"
            )
