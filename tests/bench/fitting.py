#!/usr/bin/env python3
"""Figures for context fitting and cascades (issue 19), against local mocks. A program that
prints figures, not a test; low CPU (a few hundred requests), so it can run beside a build.

  fitting   a chat session of N turns, the whole history resent every turn (as chat clients
            do), to a target with an 8k window: the tokens sent upstream without fitting (the
            request goes to a 1M-window target whole), with middle-out, and with summarize
            (its summary calls: every turn drops a longer span, so few hit the cache), and each
            request's latency through the gateway (p50, mocks answering at once).
  judge     what a cascade's judge costs per request: latency added over the same model
            without a judge (p50/p95, judge answering at once), on a verdict-cache miss and a
            hit, and the extra upstream calls and tokens the judge calls take.

Run from the repository root, after `make build plugins`:
    .venv/bin/python tests/bench/fitting.py [--turns 60] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import mock_openai as mo  # noqa: E402
from harness import GatewayFactory, base_config, keys_for, provider  # noqa: E402

WINDOW = 8192
ANSWER_TOKENS = 512
PLUGINS = ("openai-compatible", "priority-fallback", "middle-out", "summarize", "cascade")


def estimate(messages: list[dict]) -> int:
    """The gateway's estimate of a conversation's prompt tokens (characters / 4)."""
    chars = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content.encode())
    return chars // 4


def windowed(mock: mo.MockOpenAI, model: str, window: int) -> dict:
    p = provider(mock, [])
    p["models"] = {model: {"context_window": window}}
    return p


def session(turns: int) -> list[list[dict]]:
    """The request of each turn of a chat session: the whole history so far."""
    history = [{"role": "system", "content": "You are a helpful assistant for a bee keeper."}]
    requests = []
    for i in range(turns):
        history.append({"role": "user",
                        "content": f"Question {i}: " + "Tell me more about the hive. " * 20})
        requests.append(list(history))
        history.append({"role": "assistant",
                        "content": f"Answer {i}: " + "The bees are doing well today. " * 30})
    return requests


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run_fitting(gw, mocks: dict, turns: int) -> None:
    print(f"\n== fitting: a {turns}-turn chat session resent whole every turn, "
          f"8k window, max_tokens {ANSWER_TOKENS}")
    print(f"{'model':<14}{'tokens sent':>14}{'last request':>14}{'vs whole':>10}"
          f"{'summary calls':>15}{'p50 ms':>9}")
    client = gw.client(timeout=60)
    requests = session(turns)
    baseline = None
    for model, mock in (("whole", "mock-big"), ("middle-out", "mock-small"),
                        ("summarize", "mock-small")):
        for m in mocks.values():
            m.reset()
        mocks["mock-sum"].respond_with(lambda body: mo.text(
            "The user keeps bees; the assistant reported the hive doing well. " * 4))
        took = []
        for messages in requests:
            t0 = time.perf_counter()
            client.chat.completions.create(model=model, messages=messages,
                                           max_tokens=ANSWER_TOKENS)
            took.append((time.perf_counter() - t0) * 1000)
        sent = [estimate(r.json["messages"]) for r in mocks[mock].chat_requests]
        total = sum(sent)
        baseline = baseline or total
        summaries = len(mocks["mock-sum"].chat_requests)
        print(f"{model:<14}{total:>14,}{sent[-1]:>14,}{total / baseline:>10.2f}"
              f"{summaries:>15}{statistics.median(took):>9.1f}")


def run_judge(gw, mocks: dict, n: int) -> None:
    print(f"\n== judge: {n} requests each, judge and targets answering at once")
    print(f"{'path':<26}{'p50 ms':>9}{'p95 ms':>9}{'upstream calls/req':>20}"
          f"{'judge tokens/req':>18}")
    client = gw.client(timeout=60)
    mocks["mock-judge"].respond_with(
        lambda body: mo.text("hard" if "prove" in mo.last_user_text(body) else "easy"))
    for _ in range(20):  # warm connections and plugin instances before measuring
        client.chat.completions.create(model="direct", messages=[{"role": "user", "content": "hi"}])
    rows = {}
    for label, model, unique in (("no judge", "direct", True),
                                 ("cascade, cache miss", "auto", True),
                                 ("cascade, cache hit", "auto", False)):
        for m in mocks.values():
            m.calls_before = len(m.chat_requests)
        if not unique:  # warm the verdict cache for the repeated question
            client.chat.completions.create(model=model, messages=[
                {"role": "user", "content": "please prove the hive is healthy"}])
            for m in mocks.values():
                m.calls_before = len(m.chat_requests)
        took = []
        for i in range(n):
            text = (f"please prove the hive is healthy {uuid.uuid4().hex}" if unique
                    else "please prove the hive is healthy")
            t0 = time.perf_counter()
            client.chat.completions.create(model=model,
                                           messages=[{"role": "user", "content": text}])
            took.append((time.perf_counter() - t0) * 1000)
        calls = sum(len(m.chat_requests) - m.calls_before for m in mocks.values())
        judge_calls = mocks["mock-judge"].chat_requests[mocks["mock-judge"].calls_before:]
        judge_tokens = sum(estimate(r.json["messages"]) for r in judge_calls) / n
        rows[label] = statistics.median(took)
        print(f"{label:<26}{statistics.median(took):>9.2f}{percentile(took, 0.95):>9.2f}"
              f"{calls / n:>20.2f}{judge_tokens:>18.1f}")
    print(f"judge overhead per request (p50): miss +{rows['cascade, cache miss'] - rows['no judge']:.2f} ms,"
          f" hit +{rows['cascade, cache hit'] - rows['no judge']:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    names = ("mock-big", "mock-small", "mock-sum", "mock-judge", "mock-easy", "mock-hard")
    mocks = {n: mo.MockOpenAI(n).start() for n in names}
    providers = {
        "mock-big": windowed(mocks["mock-big"], "big", 1_000_000),
        "mock-small": windowed(mocks["mock-small"], "small", WINDOW),
        "mock-sum": provider(mocks["mock-sum"], ["cheap"]),
        "mock-judge": provider(mocks["mock-judge"], ["tiny"]),
        "mock-easy": provider(mocks["mock-easy"], ["small"]),
        "mock-hard": provider(mocks["mock-hard"], ["large"]),
    }
    models = {
        "whole": {"targets": ["mock-big/big"]},
        "middle-out": {"targets": ["mock-small/small"], "context_fit": "middle-out"},
        "summarize": {"targets": ["mock-small/small"], "context_fit": "summarize",
                      "context_fit_settings": {"model": "cheap", "max_summary_tokens": 256}},
        "cheap": {"targets": ["mock-sum/cheap"]},
        "judge": {"targets": ["mock-judge/tiny"]},
        "direct": {"targets": ["mock-hard/large"]},
        "auto": {"targets": ["mock-easy/small", "mock-hard/large"], "router": "cascade",
                 "settings": {"judge": "judge", "default": "easy",
                              "tiers": {"easy": ["mock-easy"], "hard": ["mock-hard"]}}},
    }
    config = base_config(providers=providers, models=models,
                         server={"max_body_bytes": 4_000_000})
    config["plugins"]["defaults"]["instances"] = "pooled"
    with tempfile.TemporaryDirectory(prefix="freeway-fitting-") as tmp:
        factory = GatewayFactory(Path(tmp), Path(tmp) / "cache")
        try:
            gw = factory.start(config, env=keys_for(*mocks.values()), plugins=PLUGINS)
            run_fitting(gw, mocks, args.turns)
            run_judge(gw, mocks, args.requests)
        finally:
            factory.stop_all()
            for m in mocks.values():
                m.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
