#!/usr/bin/env python3
"""Freeway soak run: a program that prints figures, not a test.

It starts the real gateway (target/release/freeway) in front of three scriptable mock upstreams
(tests/e2e/mock_openai.py) and drives it at a fixed request rate (open loop: a slow answer does
not slow the sender) for a configurable duration, while a fault thread keeps scripting the
upstreams — 429s with Retry-After, 500s, connections dropped before an answer, streams cut
midway, slow answers — and a reload thread reloads the config through the admin API.

Every `--every` seconds it prints the gateway's RSS and open file descriptors, latency
percentiles of the interval, and every non-2xx by cause (status and error code); at the end the
same for the whole run, the RSS and descriptor drift from the first interval to the last, and
how many failures no scripted fault explains (an upstream-class failure is explained when its
route header shows no target answering: each failed, cooled or was skipped by its breaker).

    .venv/bin/python tests/bench/soak.py                      # 30 minutes at 20 req/s
    .venv/bin/python tests/bench/soak.py --minutes 2 --rate 5  # a quick check that it works

Needs `make build plugins venv` first.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import mock_openai as mo  # noqa: E402
from harness import GatewayFactory, Mocks, base_config, chat_body, keys_for, provider  # noqa: E402

FAULTS = ("429", "500", "drop", "stream-cut", "slow")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Tally:
    """Latencies and outcomes of one interval (and of the whole run)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.ok = 0
        self.failures: Counter[str] = Counter()
        self.unexplained: list[str] = []

    def add(self, latency: float, cause: str | None, route: str, explained: bool) -> None:
        with self.lock:
            self.latencies.append(latency)
            if cause is None:
                self.ok += 1
                return
            self.failures[cause] += 1
            if not explained:
                self.unexplained.append(f"{cause}: {route}")

    def take(self) -> "Tally":
        with self.lock:
            out = Tally()
            out.latencies, out.ok = self.latencies, self.ok
            out.failures, out.unexplained = self.failures, self.unexplained
            self.latencies, self.ok, self.failures, self.unexplained = [], 0, Counter(), []
            return out


def report(label: str, t: Tally, pid: int) -> tuple[float, int]:
    rss, n_fds = rss_mib(pid), fds(pid)
    lat = [x * 1000 for x in t.latencies]
    print(f"{label:>8}  req {len(lat):6d}  ok {t.ok:6d}  RSS {rss:6.1f} MiB  fds {n_fds:4d}  "
          f"p50 {percentile(lat, 50):7.1f} ms  p90 {percentile(lat, 90):7.1f}  "
          f"p99 {percentile(lat, 99):7.1f}  max {max(lat, default=0):7.1f}", flush=True)
    for cause, n in t.failures.most_common():
        print(f"{'':>10}non-2xx {n:5d}  {cause}", flush=True)
    for line in t.unexplained[:5]:
        print(f"{'':>10}UNEXPLAINED {line[:200]}", flush=True)
    return rss, n_fds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second (open loop)")
    ap.add_argument("--fault-rate", type=float, default=2.0, help="scripted faults per second")
    ap.add_argument("--reload-every", type=float, default=60.0, help="seconds between reloads")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between reports")
    ap.add_argument("--stream-share", type=float, default=0.3)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="freeway-soak-"))
    mocks = Mocks()
    names = ["up-a", "up-b", "up-c"]
    ups = [mocks.add(n) for n in names]
    cfg = base_config(
        admin={"listen": "127.0.0.1:0"},
        server={"request_timeout_ms": 10_000},
        providers={m.name: provider(m, ["m"], timeout_ms=1500, stream_idle_timeout_ms=1500)
                   for m in ups},
        models={"soak": {"targets": [f"{n}/m" for n in names]}})
    cfg["plugins"]["defaults"]["instances"] = "pooled"
    factory = GatewayFactory(root, root / "cache")
    gw = factory.start(cfg, env=keys_for(*ups))
    pid = gw.proc.pid
    stop = threading.Event()
    scripted: Counter[str] = Counter()

    def fault_loop() -> None:
        rng = random.Random(1)
        while not stop.wait(1.0 / args.fault_rate):
            m = rng.choice(ups)
            kind = rng.choice(FAULTS)
            scripted[kind] += 1
            behaviour = {
                "429": mo.rate_limited(1),
                "500": mo.server_error(500),
                "drop": mo.close(),
                "stream-cut": mo.stream_then_drop("one two three four", 2),
                "slow": mo.text("late", delay=2.0),
            }[kind]
            m.script(behaviour)

    def reload_loop() -> None:
        while not stop.wait(args.reload_every):
            with gw.admin() as c:
                r = c.post("/admin/reload")
            print(f"{'':>10}reload: {r.status_code} {r.json().get('status', r.text[:80])}",
                  flush=True)

    interval, total = Tally(), Tally()
    local = threading.local()

    def one(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=gw.base_url, timeout=30)
        stream = random.random() < args.stream_share
        t0 = time.monotonic()
        cause, route = None, ""
        try:
            r = client.post("/chat/completions", json=chat_body("soak", stream=stream))
            route = r.headers.get("x-freeway-route", "")
            if r.status_code >= 300:
                code = r.json().get("error", {}).get("code") if r.headers.get(
                    "content-type", "").startswith("application/json") else None
                cause = f"{r.status_code} {code}"
            elif stream and '"error"' in r.text[-400:]:
                cause = "200 stream_interrupted"
        except httpx.HTTPError as e:
            cause = f"client error {type(e).__name__}"
        latency = time.monotonic() - t0
        # Explained: a cut stream, or an upstream-class failure (429/502/503/504) whose route
        # shows no target answering — each entry failed, cooled, or was skipped by its breaker.
        explained = cause is None or cause.endswith("stream_interrupted") or (
            cause.split()[0] in ("429", "502", "503", "504")
            and not any(": ok " in f"{e} " for e in route.split("; ")))
        interval.add(latency, cause, route, explained)
        total.add(latency, cause, route, explained)

    threads = [threading.Thread(target=fault_loop, daemon=True),
               threading.Thread(target=reload_loop, daemon=True)]
    for t in threads:
        t.start()
    print(f"soak: {args.minutes} min at {args.rate} req/s, {args.fault_rate} faults/s, reload "
          f"every {args.reload_every:.0f} s; gateway pid {pid}", flush=True)
    first: tuple[float, int] | None = None
    last: tuple[float, int] = (0.0, 0)
    started = time.monotonic()
    end = started + args.minutes * 60
    next_report = started + args.every
    with ThreadPoolExecutor(max_workers=128) as pool:
        i = 0
        while time.monotonic() < end:
            target = started + i / args.rate
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
            i += 1
            if time.monotonic() >= next_report:
                next_report += args.every
                last = report(f"{time.monotonic() - started:6.0f}s", interval.take(), pid)
                first = first or last
    stop.set()
    print("\nwhole run:", flush=True)
    final = report("total", total, pid)
    if first:
        print(f"drift from the first interval: RSS {final[0] - first[0]:+.1f} MiB, "
              f"fds {final[1] - first[1]:+d}")
    print(f"scripted faults: {dict(scripted)}")
    print(f"unexplained non-2xx: {len(total.unexplained)}")
    factory.stop_all()
    mocks.stop()
    return 1 if total.unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
