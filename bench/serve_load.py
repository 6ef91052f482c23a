"""A bounded load test of `cpt serve` on 127.0.0.1: correctness under concurrency, throughput,
latency and memory, with dynamic batching on and off.

  python -m clothparse.bench.serve_load --model M [--body-model B|none] --n 300 --clients 8

For each mode (batching on: ``--max-batch``/``--max-wait-ms``; off: 1 photo per call, no wait)
it starts a fresh ``cpt serve`` subprocess on a free port of 127.0.0.1, waits for ``/readyz``,
sends each distinct photo once alone (the reference answers), then runs ``--n`` requests from
``--clients`` threads (stdlib ``http.client``). Every ``--bad-every``-th request is a bad file
(it must get 400 ``error: NAME: ...``), every ``--disconnect-every``-th is a client that sends
half an upload and hangs up; every ``--overlay-every``-th good answer also fetches an overlay
view. A 503 is retried after its Retry-After (at most 5 times).

Reported per mode: ok / wrong (a record that is not the one of its photo: other file name, or
items that differ from the reference beyond float noise) / lost (no answer, a 5xx, or a bad file
not answered 400) / rejected (503 after retries); requests/s; p50/p99 latency of good parses;
the server's RSS (VmRSS of its process) when ready and after the load; its batch-size mean from
``/metrics``; and whether it still answers ``/healthz``. Exit 1 when any answer was wrong or lost.

Options:
  --model PATH, --body-model PATH|none, --engine KIND, --device DEV, --score-thresh T: as `cpt serve`
  --n N                 requests per mode (default 300)
  --clients C           concurrent clients (default 8)
  --size HxW            photo size (default 480x320); --distinct K photos (default 8)
  --max-batch B, --max-wait-ms T   batching-on settings (default 8, 20)
  --modes LIST          on,off (default both)
  --bad-every K, --disconnect-every K, --overlay-every K   (defaults 10, 25, 5; 0: never)
  --json PATH           also write the results as JSON
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HOST = "127.0.0.1"


@dataclass
class ModeResult:
    mode: str
    n: int = 0
    ok: int = 0
    wrong: int = 0
    lost: int = 0
    rejected: int = 0
    bad_ok: int = 0
    disconnects: int = 0
    overlays: int = 0
    seconds: float = 0.0
    req_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    mean_batch: float = 0.0
    rss_ready_mb: float = 0.0
    rss_after_mb: float = 0.0
    healthy_after: bool = False
    problems: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """VmRSS of process ``pid`` in MiB (0 where /proc is not there)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 120.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "cptload" + os.urandom(8).hex()
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def disconnect_mid_upload(port: int, data: bytes) -> None:
    """Send the headers and half the body of an upload, then close the socket."""
    body, ctype = multipart("gone.jpg", data)
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(f"POST /v1/parse HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {ctype}\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 2])


def same_items(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    """The same detections up to float noise (a photo alone vs in a batch)."""
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        if g["class_id"] != w["class_id"] or abs(g["score"] - w["score"]) > 1e-3:
            return False
        if max(abs(a - b) for a, b in zip(g["box"], w["box"], strict=True)) > 0.5:
            return False
    return True


BAD_FILES = [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, b"GIF89a" + os.urandom(100)]


class Load:
    """One mode's requests, shared by the client threads."""

    def __init__(self, port: int, photos: list[bytes], refs: list[list[dict[str, Any]]], args: argparse.Namespace,
                 res: ModeResult) -> None:
        self.port, self.photos, self.refs, self.args, self.res = port, photos, refs, args, res
        self.next = 0
        self.lock = threading.Lock()
        self.latencies: list[float] = []

    def take(self) -> int | None:
        with self.lock:
            if self.next >= self.args.n:
                return None
            self.next += 1
            return self.next - 1

    def count(self, what: str, problem: str | None = None) -> None:
        with self.lock:
            setattr(self.res, what, getattr(self.res, what) + 1)
            if problem and len(self.res.problems) < 20:
                self.res.problems.append(problem)

    def client(self) -> None:
        while (i := self.take()) is not None:
            try:
                self.one(i)
            except Exception as exc:
                self.count("lost", f"request {i}: {type(exc).__name__}: {exc}")

    def one(self, i: int) -> None:
        a = self.args
        if a.disconnect_every and i % a.disconnect_every == a.disconnect_every - 1:
            disconnect_mid_upload(self.port, self.photos[i % len(self.photos)])
            self.count("disconnects")
            return
        bad = bool(a.bad_every) and i % a.bad_every == a.bad_every - 1
        k = i % (len(BAD_FILES) if bad else len(self.photos))
        name = f"req{i}_{'bad' if bad else 'p'}{k}.jpg"
        body, ctype = multipart(name, BAD_FILES[k] if bad else self.photos[k])
        for _ in range(6):
            t0 = time.perf_counter()
            status, headers, data = request(self.port, "POST", "/v1/parse", body, {"Content-Type": ctype})
            if status != 503:
                break
            time.sleep(float(headers.get("retry-after", "1")))
        else:
            self.count("rejected")
            return
        if bad:
            detail = json.loads(data).get("detail", "") if status == 400 else ""
            ok = status == 400 and detail.startswith(f"error: {name}: ")
            self.count("bad_ok" if ok else "lost", None if ok else f"bad file {name}: {status} {data[:120]!r}")
            return
        if status != 200:
            self.count("lost", f"{name}: {status} {data[:200]!r}")
            return
        rec = json.loads(data)
        if rec["image"]["file"] != name or not same_items(rec["items"], self.refs[k]):
            self.count("wrong", f"{name}: answer of another photo or different items")
            return
        with self.lock:
            self.latencies.append(time.perf_counter() - t0)
        self.count("ok")
        if a.overlay_every and i % a.overlay_every == 0:
            st, _, png = request(self.port, "GET", f"/v1/results/{rec['id']}/overlay.png?view=clothing&boxes=1")
            good = (st == 200 and png[:4] == b"\x89PNG") or st == 404  # 404: evicted meanwhile
            self.count("overlays" if good else "lost", None if good else f"overlay of {name}: {st}")


def start_server(args: argparse.Namespace, port: int, on: bool) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from clothparse.cli.app import main; main()", "serve", "--model", str(args.model), "--port", str(port),
           "--host", HOST, "--device", args.device, "--quiet", "--max-queue", str(max(64, 4 * args.clients)),
           "--max-batch", str(args.max_batch if on else 1), "--max-wait-ms", str(args.max_wait_ms if on else 0)]
    for flag, value in (("--body-model", args.body_model), ("--engine", args.engine), ("--score-thresh", args.score_thresh)):
        if value is not None:
            cmd += [flag, str(value)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=sys.stderr)


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: cpt serve exited with code {proc.returncode} before it was ready")
        try:
            if request(port, "GET", "/readyz", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"error: cpt serve not ready after {timeout:.0f} s")


def run_mode(args: argparse.Namespace, photos: list[bytes], mode: str) -> ModeResult:
    port = free_port()
    proc = start_server(args, port, mode == "on")
    res = ModeResult(mode, n=args.n)
    try:
        wait_ready(proc, port)
        refs = []
        for k, data in enumerate(photos):  # the reference answers, one photo at a time
            body, ctype = multipart(f"ref{k}.jpg", data)
            status, _, out = request(port, "POST", "/v1/parse", body, {"Content-Type": ctype})
            if status != 200:
                raise SystemExit(f"error: reference photo {k}: {status} {out[:200]!r}")
            refs.append(json.loads(out)["items"])
        res.rss_ready_mb = rss_mb(proc.pid)
        before = _metrics(port)
        load = Load(port, photos, refs, args, res)
        threads = [threading.Thread(target=load.client) for _ in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        res.seconds = time.perf_counter() - t0
        after = _metrics(port)
        calls = after.get("cpt_batch_size_count", 0) - before.get("cpt_batch_size_count", 0)
        res.mean_batch = (after.get("cpt_batch_size_sum", 0) - before.get("cpt_batch_size_sum", 0)) / max(calls, 1)
        res.req_per_s = (res.ok + res.bad_ok) / res.seconds if res.seconds else 0.0
        if load.latencies:
            res.p50_ms = float(np.percentile(load.latencies, 50) * 1000)
            res.p99_ms = float(np.percentile(load.latencies, 99) * 1000)
        time.sleep(0.5)
        res.rss_after_mb = rss_mb(proc.pid)
        res.healthy_after = request(port, "GET", "/healthz", timeout=5)[0] == 200
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return res


def _metrics(port: int) -> dict[str, float]:
    from clothparse.serve.metrics import parse_samples

    return parse_samples(request(port, "GET", "/metrics")[2].decode())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clothparse.bench.serve_load", description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--body-model", default=None)
    ap.add_argument("--engine", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--score-thresh", type=float, default=None)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--size", default="480x320")
    ap.add_argument("--distinct", type=int, default=8)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-wait-ms", type=float, default=20.0)
    ap.add_argument("--modes", default="on,off")
    ap.add_argument("--bad-every", type=int, default=10)
    ap.add_argument("--disconnect-every", type=int, default=25)
    ap.add_argument("--overlay-every", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.n < 1 or args.clients < 1:
        ap.error("--n and --clients must be >= 1")
    h, w = (int(v) for v in args.size.lower().split("x"))
    from clothparse.bench.inputs import load_images

    images, source = load_images(None, h, w, args.distinct)
    photos = [im.jpeg for im in images]
    print(f"serve_load: {args.n} requests x {args.clients} clients, {len(photos)} photos {h}x{w} ({source})",
          file=sys.stderr)
    results = [run_mode(args, photos, m.strip()) for m in args.modes.split(",") if m.strip()]
    cols = ("mode", "ok", "wrong", "lost", "rejected", "bad_ok", "disconnects", "overlays", "req_per_s", "p50_ms",
            "p99_ms", "mean_batch", "rss_ready_mb", "rss_after_mb", "healthy_after")
    print(" | ".join(cols))
    for r in results:
        d = asdict(r)
        print(" | ".join(f"{d[c]:.1f}" if isinstance(d[c], float) else str(d[c]) for c in cols))
        for p in r.problems:
            print(f"  {r.mode}: {p}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 1 if any(r.wrong or r.lost or not r.healthy_after for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
