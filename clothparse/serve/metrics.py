"""Server metrics in the Prometheus text exposition format (version 0.0.4), without a client library.

Counters of requests by route, method and status; histograms of request latency per route,
of seconds per pipeline stage (``queue_wait``, ``decode``, the model and post-model stages
of ``clothparse.parse.pipeline.STAGES``, ``total``) and of engine batch sizes; gauges read at
scrape time (queue depth, requests in progress, result-cache bytes and entries). Every
method is thread-safe: the model thread, the post-model threads and the event loop all record.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable, Sequence

#: Latency buckets (seconds) of every timing histogram.
LATENCY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Buckets of the engine batch-size histogram (photos per model call).
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64)

PREFIX = "cpt"


class Histogram:
    """A cumulative histogram: ``counts[i]`` observations <= ``buckets[i]`` (non-cumulative while
    stored; cumulated when rendered), their sum and count."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(float(b) for b in buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last: above every bucket (+Inf only)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out, total = [], 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            total += n
            le = "+Inf" if bound == float("inf") else _num(bound)
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {total}')
        brace = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{brace} {_num(self.sum)}")
        out.append(f"{name}_count{brace} {self.count}")
        return out


class Metrics:
    """Everything ``GET /metrics`` reports. ``gauges`` maps a metric name (without the prefix)
    to (help text, a function returning its current value), read at each scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.request_seconds: dict[str, Histogram] = {}
        self.stage_seconds: dict[str, Histogram] = {}
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.rejected: Counter[str] = Counter()
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, status)] += 1
            self.request_seconds.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_stages(self, timings: dict[str, float]) -> None:
        """Seconds per stage of one photo (keys: stage names)."""
        with self._lock:
            for stage, s in timings.items():
                self.stage_seconds.setdefault(stage, Histogram(LATENCY_BUCKETS)).observe(s)

    def observe_batch(self, size: int) -> None:
        with self._lock:
            self.batch_size.observe(size)

    def reject(self, reason: str) -> None:
        """Count a request turned away before the model (``queue_full``, ``too_large``, ``bad_image``...)."""
        with self._lock:
            self.rejected[reason] += 1

    def render(self) -> str:
        """The text exposition format: HELP/TYPE lines, then samples; ends with a newline."""
        p = PREFIX
        with self._lock:
            lines = [f"# HELP {p}_requests_total HTTP requests by route, method and status.",
                     f"# TYPE {p}_requests_total counter"]
            for (route, method, status), n in sorted(self.requests.items()):
                lines.append(f'{p}_requests_total{{route="{_esc(route)}",method="{method}",status="{status}"}} {n}')
            lines += [f"# HELP {p}_request_duration_seconds Request latency by route.",
                      f"# TYPE {p}_request_duration_seconds histogram"]
            for route, h in sorted(self.request_seconds.items()):
                lines += h.lines(f"{p}_request_duration_seconds", f'route="{_esc(route)}"')
            lines += [f"# HELP {p}_stage_duration_seconds Seconds per photo in each pipeline stage.",
                      f"# TYPE {p}_stage_duration_seconds histogram"]
            for stage, h in sorted(self.stage_seconds.items()):
                lines += h.lines(f"{p}_stage_duration_seconds", f'stage="{_esc(stage)}"')
            lines += [f"# HELP {p}_batch_size Photos per engine call.", f"# TYPE {p}_batch_size histogram"]
            lines += self.batch_size.lines(f"{p}_batch_size", "")
            lines += [f"# HELP {p}_rejected_total Requests turned away before the model, by reason.",
                      f"# TYPE {p}_rejected_total counter"]
            for reason, n in sorted(self.rejected.items()):
                lines.append(f'{p}_rejected_total{{reason="{_esc(reason)}"}} {n}')
            gauges = dict(self.gauges)
        for name, (help_text, read) in sorted(gauges.items()):
            lines += [f"# HELP {p}_{name} {help_text}", f"# TYPE {p}_{name} gauge", f"{p}_{name} {_num(float(read()))}"]
        return "\n".join(lines) + "\n"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_samples(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` of a text exposition (comments skipped): for tests and the bench."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out
