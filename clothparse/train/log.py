"""Run logs: ``RUN/log.jsonl`` (one JSON object per epoch) and ``RUN/log.csv``.

Both files are rewritten atomically after every epoch (they are small), so a killed
run never leaves a half-written line; ``--resume`` reads the JSONL back and appends.
Only rank 0 writes (``enabled=False`` elsewhere).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from clothparse.io.atomic import write_text


class RunLog:
    """Accumulates epoch records and mirrors them to JSONL and CSV in ``run_dir``."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.records: list[dict[str, Any]] = []
        jsonl = self.run_dir / "log.jsonl"
        if resume and jsonl.is_file():
            for line in jsonl.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self.records.append(json.loads(line))

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.enabled:
            self.flush()

    def flush(self) -> None:
        lines = "".join(json.dumps(r) + "\n" for r in self.records)
        write_text(self.run_dir / "log.jsonl", lines)
        columns: list[str] = []
        for r in self.records:
            columns += [k for k in r if k not in columns and not isinstance(r[k], (dict, list))]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in self.records:
            writer.writerow({k: _fmt(r.get(k)) for k in columns})
        write_text(self.run_dir / "log.csv", buf.getvalue())


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v
