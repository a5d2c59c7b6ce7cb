"""Hot-reload benchmark: what a plugin deployment costs while traffic flows.

Prints, for the real `freeway` binary and the test plugins `flip-router-v1/v2` (same name; v1
keeps the configured order, v2 reverses it, so which upstream answers shows which version ran):

1. write → first request served by the new version, for a plugin already in the compile cache
   (precompiled) and for one that must be compiled first, each over several swaps;
2. throughput and latency of the same closed-loop load (4 client threads) in steady state and
   while the router file is swapped every 250 ms.

A benchmark, not a test: it asserts nothing beyond "every request succeeded", which it reports.
Run: `make bench-reload` (or `.venv/bin/python tests/bench/reload_bench.py` after `make build
plugins test-plugins`).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import GatewayFactory, base_config, chat_body, keys_for, provider, replace_atomically  # noqa: E402
from harness import Mocks  # noqa: E402

TEST_PLUGINS = Path(os.environ.get("FREEWAY_TEST_PLUGINS_DIR", ROOT / "target" / "test-plugins"))
V1 = TEST_PLUGINS / "flip-router-v1.wasm"
V2 = TEST_PLUGINS / "flip-router-v2.wasm"


def served_by(client: httpx.Client) -> str:
    r = client.post("/chat/completions", json=chat_body("flip"))
    r.raise_for_status()
    return r.headers["x-freeway-provider"]


def time_to_switch(gw, source: Path, expect: str) -> float:
    """Seconds from the atomic write of `source` over the router file to the first answer
    from `expect`."""
    with httpx.Client(base_url=gw.base_url, timeout=10) as client:
        started = time.monotonic()
        replace_atomically(gw.plugin_dir / "flip-router.wasm", source)
        while served_by(client) != expect:
            if time.monotonic() - started > 30:
                raise RuntimeError("the new version never answered")
        return time.monotonic() - started


def load(gw, seconds: float, during=None) -> dict:
    """Closed-loop load from 4 threads; `during` runs alongside. Returns the figures."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        nonlocal failures
        with httpx.Client(base_url=gw.base_url, timeout=10) as client:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    ok = client.post("/chat/completions", json=chat_body("flip")).status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = time.perf_counter() - t0
                with lock:
                    latencies.append(took)
                    failures += 0 if ok else 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    if during:
        during(stop)
    for t in threads:
        t.join()
    latencies.sort()
    return {
        "req/s": len(latencies) / seconds,
        "p50 ms": latencies[len(latencies) // 2] * 1000,
        "p99 ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "failed": failures,
        "requests": len(latencies),
    }


def main() -> int:
    for f in (V1, V2):
        if not f.is_file():
            print(f"missing {f}: run `make test-plugins` first", file=sys.stderr)
            return 2
    root = Path(tempfile.mkdtemp(prefix="freeway-reload-bench-"))
    mocks = Mocks()
    gateways = GatewayFactory(root / "gw", root / "cache")
    try:
        a, b = mocks.add("mock-a"), mocks.add("mock-b")
        cfg = base_config(
            providers={"mock-a": provider(a, ["gpt-a"]), "mock-b": provider(b, ["gpt-b"])},
            models={"flip": {"router": "flip-router", "targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}},
        )
        gw = gateways.start(cfg, env={**keys_for(a, b), "FREEWAY_LOG": "warn"},
                            plugin_files={"flip-router.wasm": V1})
        print("Freeway hot-reload benchmark")
        print(f"machine: {os.cpu_count()} CPUs; upstreams: Python mocks (the same for every row)\n")

        # 1. write -> served. The first swap to v2 compiles it; later swaps hit the cache.
        compiled = time_to_switch(gw, V2, "mock-b")
        cached = []
        for _ in range(5):
            cached.append(time_to_switch(gw, V1, "mock-a"))
            cached.append(time_to_switch(gw, V2, "mock-b"))
        print("write -> first request served by the new version")
        print(f"  not yet compiled (Cranelift compile + load): {compiled * 1000:7.0f} ms")
        print(f"  precompiled (cache hit), median of {len(cached)}:  {statistics.median(cached) * 1000:7.0f} ms"
              f"  (min {min(cached) * 1000:.0f}, max {max(cached) * 1000:.0f})")
        print("  (includes the watcher's 60 ms debounce)\n")

        # 2. load in steady state, then while swapping every 250 ms.
        steady = load(gw, 5)

        def swapper(stop: float) -> None:
            version = 0
            while time.monotonic() < stop:
                replace_atomically(gw.plugin_dir / "flip-router.wasm", V2 if version % 2 else V1)
                version += 1
                time.sleep(0.25)

        reloading = load(gw, 5, during=swapper)
        print("closed-loop load, 4 client threads, 5 s each")
        print(f"  {'':12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
        for name, row in (("steady", steady), ("reloading", reloading)):
            print(f"  {name:12} {row['req/s']:8.0f} {row['p50 ms']:8.2f} {row['p99 ms']:8.2f} {row['failed']:7d}")
        ratio = reloading["req/s"] / steady["req/s"]
        print(f"  throughput while reloading every 250 ms: {ratio:.0%} of steady state")
        return 0
    finally:
        gateways.stop_all()
        mocks.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
