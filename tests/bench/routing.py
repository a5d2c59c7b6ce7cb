"""Routing figures: what hedging buys and costs, and how soon a waiting request goes out.

Prints, for the real `freeway` binary against sleeping local mocks (millisecond-scale figures,
not throughput; a few seconds of low-concurrency traffic):

1. p50 / p99 latency and the upstream requests per client request, hedging off and on:
   (a) one slow target in three (the `weighted` router spreads requests evenly, so a third
   start on the slow one) with `hedge_after_ms = 200` and `"auto"`; (b) three targets with a
   tail (slow on 2% of answers), where `"auto"` (each target's own p95) is what fits;
2. how late a waiting request (`queue_wait_ms`) reaches the upstream after the capacity it
   waited for came back: the end of a `Retry-After` cooldown, and a token bucket's refill
   (catalog `rpm = 60`: 60 requests drain it, the 61st waits for the refill one second after
   the first).

A benchmark, not a test: it asserts only that every request succeeded.
Run: `.venv/bin/python tests/bench/routing.py [--requests 90] [--slow-ms 1000]` after
`make build plugins`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import mock_openai as mo  # noqa: E402
from harness import PLUGINS_DIR, GatewayFactory, Mocks, base_config, keys_for, provider  # noqa: E402


class PacedMock(mo.MockOpenAI):
    """A mock whose unscripted answers wait `pace` seconds before their first byte, or, on a
    `tail` share of them (at random), `slow` seconds."""

    def __init__(self, name: str, pace: float, tail: float = 0.0, slow: float = 0.0) -> None:
        super().__init__(name)
        self.pace, self.tail, self.slow = pace, tail, slow
        self.random = random.Random(name)

    def _next_behaviour(self) -> mo.Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            delay = self.slow if self.random.random() < self.tail else self.pace
        return mo.text(f"hello from {self.name}", delay=delay)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_rows(http: httpx.Client, ms: list[mo.MockOpenAI], rows: list[tuple[str, str]],
             requests: int) -> None:
    print(f"   {'hedging':<22} {'p50 ms':>8} {'p99 ms':>8} {'upstream req/request':>22}")
    for model, label in rows:
        if "auto" in model:  # let it learn every target's p95 first
            for _ in range(60):
                http.post("/v1/chat/completions", json={
                    "model": model, "messages": [{"role": "user", "content": "warm"}]})
        for m in ms:
            m.reset()

        def one(_: int) -> float:
            t0 = time.perf_counter()
            r = http.post("/v1/chat/completions", json={
                "model": model, "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
            return (time.perf_counter() - t0) * 1000

        with ThreadPoolExecutor(3) as pool:
            took = list(pool.map(one, range(requests)))
        upstream = sum(len(m.chat_requests) for m in ms)
        print(f"   {label:<22} {statistics.median(took):8.0f} {percentile(took, 0.99):8.0f}"
              f" {upstream / requests:22.2f}")
    print()


def hedging(factory: GatewayFactory, mocks: Mocks, requests: int, slow_ms: int) -> None:
    slow_s = slow_ms / 1000
    slow = mocks.adopt(PacedMock("slow", slow_s).start())
    fast = [mocks.adopt(PacedMock(f"fast{i}", 0.03).start()) for i in (1, 2)]
    tails = [mocks.adopt(PacedMock(f"tail{i}", 0.03, tail=0.02, slow=slow_s).start())
             for i in (1, 2, 3)]
    spread = {"targets": ["slow/m", "fast1/m", "fast2/m"], "router": "weighted"}
    tailed = {"targets": ["tail1/m", "tail2/m", "tail3/m"], "router": "weighted"}
    cfg = base_config(
        providers={m.name: provider(m, ["m"]) for m in (slow, *fast, *tails)},
        models={
            "off": spread,
            "fixed": {**spread, "hedge_after_ms": 200, "hedge_budget": 0.5},
            "auto": {**spread, "hedge_after_ms": "auto", "hedge_budget": 0.5},
            "tail-off": tailed,
            "tail-auto": {**tailed, "hedge_after_ms": "auto"},
        },
    )
    gw = factory.start(cfg, env=keys_for(slow, *fast, *tails),
                       plugin_files={"weighted.wasm": PLUGINS_DIR / "weighted.wasm"})
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        print(f"1a. one slow target in three (slow: {slow_ms} ms to first byte, others 30 ms); "
              f"{requests} requests per row, 3 at a time, weighted router\n")
        run_rows(http, [slow, *fast], [("off", "off"), ("fixed", "after 200 ms"),
                                       ("auto", "auto (target's p95)")], requests)
        print(f"1b. three targets answering in 30 ms, each {slow_ms} ms on 2% of answers "
              f"(default hedge_budget 0.1)\n")
        run_rows(http, tails, [("tail-off", "off"), ("tail-auto", "auto (target's p95)")],
                 requests)
    gw.stop()


def waiting(factory: GatewayFactory, mocks: Mocks, rounds: int) -> None:
    q = mocks.add("q")
    models = {"gpt-q": {}}
    models.update({f"rpm-{i}": {"rpm": 60} for i in range(rounds)})
    cfg = base_config(
        providers={"q": provider(q, models)},
        models={"waits": {"targets": ["q/gpt-q"], "queue_wait_ms": 5000},
                **{f"metered-{i}": {"targets": [f"q/rpm-{i}"], "queue_wait_ms": 5000}
                   for i in range(rounds)}},
    )
    gw = factory.start(cfg, env=keys_for(q))
    cooldown, refill = [], []
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        for _ in range(rounds):
            q.reset()
            q.script(mo.rate_limited(1, model="gpt-q"))
            r = http.post("/v1/chat/completions", json={
                "model": "waits", "messages": [{"role": "user", "content": "x"}]})
            assert r.status_code == 200, r.text
            first, second = q.chat_requests
            cooldown.append((second.at - first.at - 1.0) * 1000)
        for i in range(rounds):
            q.reset()
            for _ in range(61):
                r = http.post("/v1/chat/completions", json={
                    "model": f"metered-{i}", "messages": [{"role": "user", "content": "x"}]})
                assert r.status_code == 200, r.text
            calls = q.chat_requests
            refill.append((calls[60].at - calls[0].at - 1.0) * 1000)
    gw.stop()
    print(f"2. capacity back -> the waiting request's upstream call ({rounds} rounds each)\n")
    print(f"   {'what came back':<36} {'median ms':>10} {'max ms':>8}")
    for label, values in (("a Retry-After: 1 cooldown's end", cooldown),
                          ("an rpm = 60 bucket's refill", refill)):
        print(f"   {label:<36} {statistics.median(values):10.1f} {max(values):8.1f}")
    print("\n   (measured at the mock: its arrival times minus the known wait; the bucket row")
    print("   includes the ~ms between the first request's admission and its arrival)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=90)
    parser.add_argument("--slow-ms", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="freeway-routing-") as tmp:
        factory = GatewayFactory(Path(tmp), Path(tmp) / "cache")
        mocks = Mocks()
        try:
            hedging(factory, mocks, args.requests, args.slow_ms)
            waiting(factory, mocks, args.rounds)
        finally:
            factory.stop_all()
            mocks.stop()


if __name__ == "__main__":
    main()
