"""The usage and cost ledger: one row per finished request in the store's `ledger` table,
written off the request path, flushed on SIGTERM, kept across restarts, priced from the
catalog, queryable with `freeway usage` and `GET /admin/usage`, and never a reason for a client
request to fail (a read-only or locked store only costs rows, which are counted and logged).

Rows are read with Python's own sqlite3, as an operator's script would.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
import pytest

import mock_openai as mo
from harness import (Ops, base_config, chat_body, cost, db_tables, error_body, keys_for, poll,
                     priced, sample_sum)

IN_PRICE = 3.0  # USD per million prompt tokens
OUT_PRICE = 15.0  # USD per million completion tokens
# The mock's default usage (an unscripted answer): 11 prompt and 7 completion tokens.
DEFAULT_COST = cost(11, 7, IN_PRICE, OUT_PRICE)

# 1,000 requests: about 2 s for the gateway on 2 cores (8 client threads), far below a minute.
N_LOAD = 1000


def config(a: mo.MockOpenAI, b: mo.MockOpenAI, **sections) -> dict:
    return base_config(
        admin={"listen": "127.0.0.1:0"},
        store={"path": "freeway.db"},
        providers={a.name: priced(a, "gpt-a", input_price=IN_PRICE, output_price=OUT_PRICE),
                   b.name: priced(b, "gpt-b", input_price=1.0, output_price=2.0)},
        models={"m": {"targets": [f"{a.name}/gpt-a"]},
                "chain": {"targets": [f"{a.name}/gpt-a", f"{b.name}/gpt-b"]}},
        **sections)


@pytest.fixture
def ops(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    return Ops(gateways, config(a, b), keys_for(a, b)), a, b


def rows_by_id(o: Ops, ids: list[str], timeout: float = 10.0) -> dict[str, dict]:
    """Wait until the ledger has a row for each request id; return them by id."""
    marks = ",".join("?" * len(ids))

    def have():
        rows = o.ledger(f"WHERE request_id IN ({marks})", tuple(ids))
        return rows if len(rows) == len(ids) else None

    rows = poll(have, timeout=timeout, interval=0.1, what=f"ledger rows for {ids}")
    return {r["request_id"]: r for r in rows}


# =============================================================================================
# One row per request, durable
# =============================================================================================


def test_every_request_is_a_row_after_sigterm_and_a_restart_keeps_them(ops):
    o, a, _ = ops
    gw = o.launch()
    local = threading.local()
    ids = [f"load-{i:04d}" for i in range(N_LOAD)]

    def one(rid: str) -> int:
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = httpx.Client(base_url=gw.url, timeout=30)
        r = c.post("/v1/chat/completions", json=chat_body("m", rid),
                   headers={"x-request-id": rid})
        return r.status_code

    t = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, ids))
    took = time.monotonic() - t
    assert codes == [200] * N_LOAD, {c: codes.count(c) for c in set(codes)}
    assert len(a.chat_requests) == N_LOAD

    # SIGTERM at once: whatever is still queued must be written before the process exits.
    assert gw.stop() == 0, gw.stderr[-2000:]
    n = o.ledger_count()
    assert n == N_LOAD, f"{n} ledger rows for {N_LOAD} requests (sent in {took:.1f}s)"
    rows = o.ledger()
    assert sorted(r["request_id"] for r in rows) == ids
    for r in rows:
        assert (r["model"], r["provider"], r["upstream_model"]) == ("m", "mock-a", "gpt-a"), r
        assert (r["status"], r["outcome"], bool(r["stream"])) == (200, "ok", False), r
        assert (r["prompt_tokens"], r["completion_tokens"], r["attempts"]) == (11, 7, 1), r
        assert r["cost_usd"] == pytest.approx(DEFAULT_COST, rel=1e-9), r
        assert r["key"] is None and r["latency_ms"] >= 0, r

    # Started again on the same store: the rows are still there, and new ones add to them.
    gw = o.launch()
    assert o.ledger_count() == N_LOAD
    assert o.post(None, chat_body("m"), {"x-request-id": "after-restart"}).status_code == 200
    rows_by_id(o, ["after-restart"])
    assert o.ledger_count() == N_LOAD + 1
    with o.admin() as adm:
        usage = adm.get("/admin/usage", params={"by": "model", "since": "24h"}).json()
    [row] = [r for r in usage["rows"] if r["group"] == "m"]
    assert row["requests"] == N_LOAD + 1, usage
    assert row["cost_usd"] == pytest.approx((N_LOAD + 1) * DEFAULT_COST, rel=1e-6), usage


# =============================================================================================
# Cost from the catalog's prices
# =============================================================================================


def test_cost_matches_catalog_prices_for_json_and_streamed_answers(ops):
    o, a, _ = ops
    o.launch()
    client = o.client("unused")
    msgs = [{"role": "user", "content": "price me"}]

    a.script(mo.text("json answer", prompt_tokens=1000, completion_tokens=500, cached_tokens=200))
    reply = client.chat.completions.create(model="m", messages=msgs,
                                           extra_headers={"x-request-id": "cost-json"})
    assert reply.usage.prompt_tokens == 1000

    a.script(mo.text("streamed with usage", prompt_tokens=2000, completion_tokens=100,
                     cached_tokens=64))
    chunks = list(client.chat.completions.create(
        model="m", messages=msgs, stream=True, stream_options={"include_usage": True},
        extra_headers={"x-request-id": "cost-stream-usage"}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 100

    a.script(mo.text("streamed without usage", prompt_tokens=40, completion_tokens=3000,
                     cached_tokens=30))
    chunks = list(client.chat.completions.create(
        model="m", messages=msgs, stream=True,
        extra_headers={"x-request-id": "cost-stream-plain"}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "streamed without usage"
    assert all(c.usage is None for c in chunks), "usage was not asked for: none is sent"

    rows = rows_by_id(o, ["cost-json", "cost-stream-usage", "cost-stream-plain"])
    want = {"cost-json": (1000, 500, 200, False),
            "cost-stream-usage": (2000, 100, 64, True),
            "cost-stream-plain": (40, 3000, 30, True)}
    for rid, (p, c, cached, streamed) in want.items():
        r = rows[rid]
        assert (r["prompt_tokens"], r["completion_tokens"]) == (p, c), r
        assert r["cost_usd"] == pytest.approx(cost(p, c, IN_PRICE, OUT_PRICE), rel=1e-9), r
        assert bool(r["stream"]) is streamed and r["outcome"] == "ok", r
        assert (r["model"], r["provider"], r["upstream_model"]) == ("m", "mock-a", "gpt-a"), r
        if streamed:
            assert r["ttft_ms"] is not None and 0 <= r["ttft_ms"] <= r["latency_ms"], r
    # The upstream's prompt-cache hits (usage.prompt_tokens_details.cached_tokens), JSON and
    # streamed alike.
    got = {rid: rows[rid]["cached_tokens"] for rid in want}
    assert got == {rid: w[2] for rid, w in want.items()}, got


def test_errors_failovers_and_interrupted_streams_are_rows(ops):
    o, a, b = ops
    o.launch()

    a.script(mo.context_length_exceeded())
    r = o.post(None, chat_body("m"), {"x-request-id": "err-400"})
    assert r.status_code == 400, r.text
    client_code = error_body(r)["code"]

    a.script(mo.server_error(503))
    r = o.post(None, chat_body("chain"), {"x-request-id": "failover"})
    assert r.status_code == 200 and r.headers["x-freeway-provider"] == "mock-b", r.text

    a.script(mo.stream_then_drop("one two three four five", events_before_drop=3))
    with o.gw.http() as h:
        with h.stream("POST", "/v1/chat/completions", json=chat_body("m", stream=True),
                      headers={"x-request-id": "cut-stream"}) as resp:
            assert resp.status_code == 200
            try:
                resp.read()
            except httpx.HTTPError:
                pass  # how the stream ends is test_stream's business

    rows = rows_by_id(o, ["err-400", "failover", "cut-stream"])
    err = rows["err-400"]
    assert err["status"] == 400 and err["outcome"] not in ("ok", "interrupted"), err
    if client_code:
        assert err["outcome"] == client_code, (err, client_code)
    assert err["cost_usd"] in (0, 0.0, None), err

    fo = rows["failover"]
    assert (fo["provider"], fo["upstream_model"], fo["attempts"]) == ("mock-b", "gpt-b", 2), fo
    assert fo["outcome"] == "ok" and "mock-a/gpt-a" in (fo["route"] or ""), fo
    assert fo["cost_usd"] == pytest.approx(cost(11, 7, 1.0, 2.0), rel=1e-9), fo

    cut = rows["cut-stream"]
    assert cut["outcome"] == "interrupted" and bool(cut["stream"]), cut


# =============================================================================================
# Queries
# =============================================================================================


def test_usage_cli_and_admin_agree_with_the_rows(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    o = Ops(gateways, config(a, b), keys_for(a, b))
    alice = o.create_key("alice")["key"]
    bob = o.create_key("bob")["key"]
    o.launch()
    a.script(mo.text("x", prompt_tokens=100, completion_tokens=10),
             mo.text("x", prompt_tokens=200, completion_tokens=20),
             mo.text("x", prompt_tokens=300, completion_tokens=30),
             mo.text("x", prompt_tokens=5, completion_tokens=1000),
             mo.text("x", prompt_tokens=7, completion_tokens=3))
    ids = []
    for i, key in enumerate([alice, alice, alice, bob, bob]):
        rid = f"usage-{i}"
        ids.append(rid)
        body = chat_body("m", stream=(i == 4))
        with o.gw.http() as h:
            r = h.post("/v1/chat/completions", json=body,
                       headers={"authorization": f"Bearer {key}", "x-request-id": rid})
        assert r.status_code == 200, r.text
    rows = rows_by_id(o, ids)
    assert {r["key"] for r in rows.values()} == {"alice", "bob"}

    expect = {}
    for r in o.ledger():
        g = expect.setdefault(r["key"], {"requests": 0, "prompt_tokens": 0,
                                         "completion_tokens": 0, "cost_usd": 0.0})
        g["requests"] += 1
        g["prompt_tokens"] += r["prompt_tokens"]
        g["completion_tokens"] += r["completion_tokens"]
        g["cost_usd"] += r["cost_usd"]
    assert expect["alice"]["prompt_tokens"] == 600 and expect["bob"]["completion_tokens"] == 1003

    def check(doc: dict, by: str) -> None:
        assert doc["by"] == by and doc["since"] == "24h", doc
        got = {row["group"]: row for row in doc["rows"]}
        assert set(got) == set(expect), doc
        for k, e in expect.items():
            g = got[k]
            assert (g["requests"], g["prompt_tokens"], g["completion_tokens"]) == \
                (e["requests"], e["prompt_tokens"], e["completion_tokens"]), (k, g, e)
            assert g["cost_usd"] == pytest.approx(e["cost_usd"], rel=1e-9), (k, g, e)

    cli = json.loads(o.cli("usage", "--by", "key", "--since", "24h", "--json").stdout)
    check(cli, "key")
    with o.admin() as adm:
        r = adm.get("/admin/usage", params={"by": "key", "since": "24h"})
        assert r.status_code == 200, r.text
        check(r.json(), "key")

        # The other groupings add up to the same five requests.
        today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        for by, group in (("provider", "mock-a"), ("model", "m"), ("day", today)):
            doc = adm.get("/admin/usage", params={"by": by, "since": "24h"}).json()
            assert [(x["group"], x["requests"]) for x in doc["rows"]] == [(group, 5)], (by, doc)
            assert json.loads(o.cli("usage", "--by", by, "--since", "24h", "--json").stdout) \
                == doc

    table = o.cli("usage", "--by", "key", "--since", "24h").stdout
    assert "alice" in table and "bob" in table, table


# =============================================================================================
# A store that cannot be written never fails a request
# =============================================================================================


def test_read_only_store_does_not_fail_requests(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    o = Ops(gateways, config(a, b, ledger={"queue": 16}), keys_for(a, b))
    # A first run creates and migrates the store.
    gw = o.launch()
    assert o.post(None, chat_body("m"), {"x-request-id": "before"}).status_code == 200
    assert gw.stop() == 0
    assert o.ledger_count() == 1
    store_files = sorted(o.db.parent.glob(o.db.name + "*"))
    for f in store_files:
        f.chmod(0o444)
    try:
        # The gateway runs without root's power over file modes: the store is read-only to it.
        gw = o.launch(honour_file_modes=True)
        client = o.client("unused")
        for i in range(40):
            reply = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"q{i}"}])
            assert reply.choices[0].message.content == "hello from mock-a"

        drop_rx = re.compile(r"ledger.*(drop|lost|los[te]|fail|cannot|read.?only)|"
                             r"(drop|lost|fail|cannot|read.?only).*ledger", re.I)

        def seen():
            dropped = sample_sum(o.metrics(), "freeway_ledger_dropped_total") or 0
            return dropped > 0 or any(drop_rx.search(ln) for ln in gw.stderr.splitlines())

        poll(seen, timeout=15, interval=0.25,
             what="freeway_ledger_dropped_total > 0 or a log line about lost ledger rows")
        assert o.ledger_count() == 1, "nothing could be written"
    finally:
        for f in store_files:
            f.chmod(0o644)


def test_locked_store_keeps_requests_flowing_and_rows_are_retried(ops):
    o, a, _ = ops
    o.launch()
    assert o.post(None, chat_body("m"), {"x-request-id": "first"}).status_code == 200
    rows_by_id(o, ["first"])

    # Another process holds the write lock for 8 s (longer than any sane busy timeout).
    con = sqlite3.connect(str(o.db), timeout=10, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    locked = time.monotonic()
    try:
        for i in range(20):
            t = time.monotonic()
            r = o.post(None, chat_body("m"), {"x-request-id": f"locked-{i}"})
            assert r.status_code == 200, r.text
            assert time.monotonic() - t < 2.0, "a request waited on the locked store"
        time.sleep(max(0.0, locked + 8 - time.monotonic()))
    finally:
        con.execute("ROLLBACK")
        con.close()

    def settled():
        dropped = sample_sum(o.metrics(), "freeway_ledger_dropped_total") or 0
        n = o.ledger_count()
        return (n, dropped) if n + dropped >= 21 else None

    n, dropped = poll(settled, timeout=30, interval=0.25,
                      what="every row written or counted as dropped")
    assert n + dropped == 21, (n, dropped)
    assert n == 21, f"rows are retried until the lock goes: {n} written, {dropped} dropped"


def test_ledger_disabled_writes_no_rows(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    o = Ops(gateways, config(a, b, ledger={"enabled": False}), keys_for(a, b))
    gw = o.launch()
    for _ in range(3):
        assert o.post(None, chat_body("m")).status_code == 200
    assert gw.stop() == 0
    if "ledger" in db_tables(o.db):
        assert o.ledger_count() == 0
