"""Virtual keys: created with `freeway keys create` or `POST /admin/keys`, stored in the SQLite
store as hashes only, presented by clients as their OpenAI API key.

What a user notices: the key works with the SDK, a budget or rate reached answers 429 with the
right code (and `Retry-After` at the reset), a revoked, expired or unknown key 401, a model
outside the key's list 403, hard budgets hold under concurrency (the upstream sees no request
past the budget), CLI changes reach a running gateway within seconds, and the secret is shown
once and never again: not in the store, a log line or any `/admin` answer.

Prices are chosen so the arithmetic is exact: the input price is 0 (the prompt estimate does not
matter) and a request with `max_tokens = 1000` answered with 1,000 completion tokens costs
1000 x 250 / 1e6 = 0.25 USD, its worst case and its real cost alike.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import openai
import pytest

import mock_openai as mo
from harness import (Ops, base_config, clear_of_a_minute_boundary, db_rows, db_tables,
                     error_body, keys_for, poll, priced, utc_midnight_in)

OUT_PRICE = 250.0  # USD per million completion tokens
PER_REQUEST = 0.25  # 1,000 completion tokens at OUT_PRICE
BIG = 1000  # max_tokens of a "big" request, and the completion tokens the mock reports for it


def config(mock: mo.MockOpenAI, **sections) -> dict:
    return base_config(
        admin={"listen": "127.0.0.1:0"},
        store={"path": "freeway.db"},
        providers={mock.name: priced(mock, "gpt-a", input_price=0.0, output_price=OUT_PRICE)},
        models={"m": {"targets": [f"{mock.name}/gpt-a"]},
                "other": {"targets": [f"{mock.name}/gpt-a"]}},
        **sections)


@pytest.fixture
def ops(mocks, gateways):
    """A written config with a store (no key yet, gateway not started) and its mock."""
    a = mocks.add("mock-a")
    return Ops(gateways, config(a), keys_for(a)), a


def big(mock: mo.MockOpenAI, n: int = 1, delay: float = 0.0) -> None:
    """Script `n` answers that each report 1,000 completion tokens (0.25 USD)."""
    mock.script(*[mo.text("a long answer", completion_tokens=BIG, delay=delay)
                  for _ in range(n)])


def ask(client: openai.OpenAI, model: str = "m", max_tokens: int = BIG):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=max_tokens)


def body(model: str = "m", max_tokens: int = BIG) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": max_tokens}


def secret_line(stdout: str) -> str:
    """The secret `keys create` prints on its own line (without --json)."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip().startswith("fw-")]
    assert len(lines) == 1, f"want the secret on exactly one line of its own: {stdout!r}"
    assert " " not in lines[0], lines[0]
    return lines[0]


def assert_401(r: httpx.Response, word: str = "") -> None:
    assert r.status_code == 401, r.text
    err = error_body(r)
    assert err["code"] == "invalid_api_key", err
    if word:
        assert word in err["message"].lower(), err


# =============================================================================================
# Lifecycle
# =============================================================================================


def test_cli_key_create_use_budget_revoke(ops):
    o, a = ops
    out = o.cli("keys", "create", "--name", "alice", "--owner", "alice@example.com",
                "--daily-usd", "0.6").stdout
    secret = secret_line(out)
    assert secret.startswith("fw-") and len(secret) >= 24, secret
    o.launch()
    client = o.client(secret)

    # The SDK with the new key works; without a key (or with another one) it is refused now
    # that a key exists.
    reply = ask(client, max_tokens=10)
    assert reply.choices[0].message.content == "hello from mock-a"
    assert_401(o.post(None, body()))
    assert_401(o.post("fw-not-a-real-key-000000000000", body()))
    assert len(a.chat_requests) == 1

    # 0.00175 spent. Two big requests fit in 0.6 USD (0.25 each), the third would pass it.
    big(a, 2)
    ask(client)
    ask(client)
    with pytest.raises(openai.RateLimitError) as exc:
        ask(client)
    e = exc.value
    assert e.status_code == 429 and e.code == "budget_exceeded", e.body
    retry = int(e.response.headers["retry-after"])
    assert abs(retry - utc_midnight_in()) <= 5, (retry, utc_midnight_in())
    assert len(a.chat_requests) == 3, "a request past the budget must not reach the upstream"
    # A small request still fits: 0.50175 + 0.0025 <= 0.6.
    assert o.post(secret, body(max_tokens=10)).status_code == 200

    spent = 2 * PER_REQUEST + 2 * 7 * OUT_PRICE / 1e6
    entry = o.wait_key("alice", "spent_usd_today", spent)
    assert entry["owner"] == "alice@example.com", entry
    assert entry["revoked"] is False
    assert entry["spent_usd_total"] == pytest.approx(spent, rel=1e-6), entry

    # Revoked from the CLI while the gateway runs: refused within seconds, saying so.
    o.cli("keys", "revoke", "alice")
    poll(lambda: o.post(secret, body(max_tokens=10)).status_code == 401, timeout=5,
         what="the revoked key to be refused")
    seen = len(a.chat_requests)  # the polls before the CLI change reached the gateway got in
    assert_401(o.post(secret, body(max_tokens=10)), "revoked")
    assert len(a.chat_requests) == seen, "a revoked key's request must not reach the upstream"
    assert o.key_entry("alice")["revoked"] is True


def test_admin_api_key_create_use_patch_revoke(ops):
    o, a = ops
    o.launch()
    with o.admin() as adm:
        r = adm.post("/admin/keys", json={"name": "bob", "owner": "team-b", "models": ["m"],
                                          "tags": ["beta"], "budget_usd": 5})
        assert r.status_code == 201, r.text
        created = r.json()
        secret = created["key"]
        assert secret.startswith("fw-") and created["name"] == "bob", created
        assert secret.startswith(created["prefix"]) and len(created["prefix"]) < len(secret)

        # Usable at once, with the SDK.
        reply = ask(o.client(secret), max_tokens=10)
        assert reply.choices[0].message.content == "hello from mock-a"

        listed = adm.get("/admin/keys")
        assert listed.status_code == 200, listed.text
        [entry] = [k for k in listed.json()["keys"] if k["name"] == "bob"]
        assert entry["owner"] == "team-b" and entry["models"] == ["m"], entry
        assert entry["revoked"] is False and "key" not in entry, entry
        assert secret not in listed.text

        # PATCH: one request per minute from now on.
        r = adm.patch("/admin/keys/bob", json={"rpm": 1})
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "bob" and secret not in r.text, r.text
        first = o.post(secret, body(max_tokens=10))
        second = o.post(secret, body(max_tokens=10))
        statuses = [first.status_code, second.status_code]
        assert 429 in statuses, (statuses, second.text)
        limited = first if first.status_code == 429 else second
        assert error_body(limited)["code"] == "key_rate_limited"

        # DELETE revokes; the key is refused with a message that says so, and stays listed.
        r = adm.delete("/admin/keys/bob")
        assert r.status_code == 200, r.text
        assert r.json()["revoked"] is True, r.text
        assert_401(o.post(secret, body(max_tokens=10)), "revoked")
        [entry] = [k for k in adm.get("/admin/keys").json()["keys"] if k["name"] == "bob"]
        assert entry["revoked"] is True, entry


def test_env_keys_keep_working_alongside_virtual_keys(mocks, gateways):
    a = mocks.add("mock-a")
    cfg = config(a, auth={"keys": [{"name": "master", "key_env": "GW_MASTER"}]})
    o = Ops(gateways, cfg, {**keys_for(a), "GW_MASTER": "fw-master-key-0001"})
    secret = o.create_key("carol")["key"]
    o.launch()
    assert o.post("fw-master-key-0001", body(max_tokens=10)).status_code == 200
    assert o.post(secret, body(max_tokens=10)).status_code == 200
    assert_401(o.post("fw-master-key-0002", body(max_tokens=10)))
    assert len(a.chat_requests) == 2


# =============================================================================================
# Budgets
# =============================================================================================


def test_twenty_concurrent_requests_against_a_budget_for_five(ops):
    """5.5 requests' worth of budget, 20 requests at once: exactly 5 are served, and the
    upstream sees exactly 5; the others are refused before forwarding."""
    o, a = ops
    secret = o.create_key("burst", "--daily-usd", str(5.5 * PER_REQUEST))["key"]
    o.launch()
    big(a, 20, delay=0.3)  # slow answers: every request is in flight at once
    barrier = threading.Barrier(20)

    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=o.gw.url, timeout=30) as h:
            barrier.wait(10)
            return h.post("/v1/chat/completions", json=body(),
                          headers={"authorization": f"Bearer {secret}"})

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) == 5, statuses
    assert statuses.count(429) == 15, statuses
    for r in answers:
        if r.status_code == 429:
            assert error_body(r)["code"] == "budget_exceeded", r.text
            assert abs(int(r.headers["retry-after"]) - utc_midnight_in()) <= 5, r.headers
    assert len(a.chat_requests) == 5, f"the upstream saw {len(a.chat_requests)} requests"

    # Settled at the real cost: 1.25 spent, and nothing more fits.
    o.wait_key("burst", "spent_usd_today", 5 * PER_REQUEST)
    r = o.post(secret, body())
    assert r.status_code == 429 and error_body(r)["code"] == "budget_exceeded", r.text
    assert len(a.chat_requests) == 5


def test_lifetime_budget_refuses_without_retry_after(ops):
    o, a = ops
    secret = o.create_key("once", "--budget-usd", "0.3")["key"]
    o.launch()
    big(a, 2)
    assert o.post(secret, body()).status_code == 200
    r = o.post(secret, body())
    assert r.status_code == 429, r.text
    assert error_body(r)["code"] == "budget_exceeded"
    assert "retry-after" not in r.headers, "a lifetime budget never resets: no Retry-After"
    assert len(a.chat_requests) == 1


def test_monthly_budget_retry_after_is_the_first_of_next_month(ops):
    o, a = ops
    secret = o.create_key("monthly", "--monthly-usd", "0.3")["key"]
    o.launch()
    big(a, 2)
    assert o.post(secret, body()).status_code == 200
    r = o.post(secret, body())
    assert r.status_code == 429 and error_body(r)["code"] == "budget_exceeded", r.text
    now = datetime.now(timezone.utc)
    first = (now.replace(day=28) + timedelta(days=4)).replace(day=1, hour=0, minute=0, second=0,
                                                              microsecond=0)
    want = (first - now).total_seconds()
    assert abs(int(r.headers["retry-after"]) - want) <= 5, (r.headers["retry-after"], want)


def test_daily_token_budget(ops):
    """2,500 tokens a day; each big answer uses 11 + 1,000: the third would pass it."""
    o, a = ops
    secret = o.create_key("tokens", "--daily-tokens", "2500")["key"]
    o.launch()
    big(a, 3)
    assert o.post(secret, body()).status_code == 200
    assert o.post(secret, body()).status_code == 200
    r = o.post(secret, body())
    assert r.status_code == 429, r.text
    assert error_body(r)["code"] == "budget_exceeded"
    assert abs(int(r.headers["retry-after"]) - utc_midnight_in()) <= 5, r.headers
    assert len(a.chat_requests) == 2
    o.wait_key("tokens", "tokens_today", 2 * (11 + BIG))


def test_streamed_answers_are_settled_against_the_budget(ops):
    """A stream that did not ask for usage is still priced (the gateway asks the upstream for
    it) and settled against the key's budget."""
    o, a = ops
    secret = o.create_key("streamer", "--daily-usd", "0.3")["key"]
    o.launch()
    big(a, 1)
    chunks = list(o.client(secret).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=BIG, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "a long answer"
    o.wait_key("streamer", "spent_usd_today", PER_REQUEST)
    r = o.post(secret, body())
    assert r.status_code == 429 and error_body(r)["code"] == "budget_exceeded", r.text
    assert len(a.chat_requests) == 1


def test_reservation_is_priced_at_the_most_expensive_candidate(mocks, gateways):
    """A model whose fallback costs ten times more: a request is admitted only if its worst
    case at the fallback's price fits, since a failover must not overshoot the budget."""
    cheap = mocks.add("cheap")
    pricey = mocks.add("pricey")
    cfg = base_config(
        admin={"listen": "127.0.0.1:0"},
        store={"path": "freeway.db"},
        providers={"cheap": priced(cheap, "c", input_price=0.0, output_price=OUT_PRICE),
                   "pricey": priced(pricey, "p", input_price=0.0, output_price=10 * OUT_PRICE)},
        models={"pair": {"targets": ["cheap/c", "pricey/p"]}})
    o = Ops(gateways, cfg, keys_for(cheap, pricey))
    small_budget = o.create_key("small", "--daily-usd", "1.0")["key"]
    large_budget = o.create_key("large", "--daily-usd", "3.0")["key"]
    o.launch()
    # Worst case 1,000 tokens at 2,500 USD/M = 2.5 USD: over 1.0, within 3.0.
    r = o.post(small_budget, body("pair"))
    assert r.status_code == 429 and error_body(r)["code"] == "budget_exceeded", r.text
    assert cheap.chat_requests == [] and pricey.chat_requests == []
    big(cheap, 1)
    r = o.post(large_budget, body("pair"))
    assert r.status_code == 200 and r.headers["x-freeway-provider"] == "cheap", r.text
    # Settled at what the cheap target really cost.
    o.wait_key("large", "spent_usd_today", PER_REQUEST)


def test_admin_key_api_needs_the_admin_key(mocks, gateways):
    a = mocks.add("mock-a")
    cfg = config(a)
    cfg["admin"]["api_key_env"] = "ADMIN_KEY"
    o = Ops(gateways, cfg, {**keys_for(a), "ADMIN_KEY": "adm-0001"})
    o.launch()
    with o.gw.admin() as anonymous:
        assert anonymous.post("/admin/keys", json={"name": "x"}).status_code == 401
        assert anonymous.get("/admin/keys").status_code == 401
    with o.gw.admin("adm-0001") as adm:
        r = adm.post("/admin/keys", json={"name": "x"})
        assert r.status_code == 201, r.text
    assert o.post(r.json()["key"], body(max_tokens=10)).status_code == 200


# =============================================================================================
# Refusals: expiry, models, rates
# =============================================================================================


def test_expired_key_is_refused(ops):
    o, a = ops
    o.launch()
    soon = (datetime.now(timezone.utc) + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with o.admin() as adm:
        r = adm.post("/admin/keys", json={"name": "brief", "expires_at": soon})
        assert r.status_code == 201, r.text
    secret = r.json()["key"]
    assert o.post(secret, body(max_tokens=10)).status_code == 200
    poll(lambda: o.post(secret, body(max_tokens=10)).status_code == 401, timeout=15,
         interval=0.25, what="the key to expire")
    seen = len(a.chat_requests)
    assert_401(o.post(secret, body(max_tokens=10)), "expired")
    assert len(a.chat_requests) == seen, "an expired key's request must not reach the upstream"


def test_expiry_as_a_duration(ops):
    o, _ = ops
    o.create_key("month", "--expires", "30d")
    entry = o.key_entry("month")
    expires = datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00"))
    want = datetime.now(timezone.utc) + timedelta(days=30)
    assert abs((expires - want).total_seconds()) < 120, entry


def test_model_not_allowed_is_403(ops):
    o, a = ops
    secret = o.create_key("narrow", "--models", "m")["key"]
    o.launch()
    client = o.client(secret)
    with pytest.raises(openai.PermissionDeniedError) as exc:
        ask(client, model="other", max_tokens=10)
    assert exc.value.status_code == 403 and exc.value.code == "model_not_allowed", exc.value.body
    assert a.chat_requests == [], "a refused model must not reach the upstream"
    assert ask(client, model="m", max_tokens=10).choices[0].message.content == "hello from mock-a"


def test_key_rpm_answers_429_key_rate_limited(ops):
    o, a = ops
    secret = o.create_key("slow", "--rpm", "2")["key"]
    other = o.create_key("free")["key"]
    o.launch()
    clear_of_a_minute_boundary()
    assert o.post(secret, body(max_tokens=10)).status_code == 200
    assert o.post(secret, body(max_tokens=10)).status_code == 200
    r = o.post(secret, body(max_tokens=10))
    assert r.status_code == 429, r.text
    assert error_body(r)["code"] == "key_rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60, r.headers
    assert len(a.chat_requests) == 2
    assert o.post(other, body(max_tokens=10)).status_code == 200, "another key is not affected"


def test_key_tpm_answers_429_key_rate_limited(ops):
    """2,000 tokens a minute, reached after two big answers (1,011 tokens each)."""
    o, a = ops
    secret = o.create_key("tpm", "--tpm", "2000")["key"]
    o.launch()
    big(a, 2)
    clear_of_a_minute_boundary()
    assert o.post(secret, body()).status_code == 200
    assert o.post(secret, body()).status_code == 200
    r = o.post(secret, body())
    assert r.status_code == 429, r.text
    assert error_body(r)["code"] == "key_rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60, r.headers
    assert len(a.chat_requests) == 2


# =============================================================================================
# The secret is shown once
# =============================================================================================


def test_secret_never_stored_logged_or_served(mocks, gateways):
    a = mocks.add("mock-a")
    # Debug logging: what an operator turns on when something is wrong.
    o = Ops(gateways, config(a), {**keys_for(a), "FREEWAY_LOG": "debug"})
    created = o.cli("keys", "create", "--name", "cli-key", "--rpm", "100")
    cli_secret = secret_line(created.stdout)
    assert cli_secret not in created.stderr, "the secret is printed once, on stdout"
    o.launch()
    with o.admin() as adm:
        r = adm.post("/admin/keys", json={"name": "api-key", "daily_usd": 10})
        assert r.status_code == 201, r.text
        api_secret = r.json()["key"]
    secrets = [cli_secret, api_secret]

    for s in secrets:
        client = o.client(s)
        ask(client, max_tokens=10)
        chunks = list(client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=10, stream=True))
        assert chunks
        # A wrong key that shares the prefix.
        assert_401(o.post(s[:-4] + "zzzz", body(max_tokens=10)))

    # Every admin answer, and the CLI's listings.
    shown = []
    with o.admin() as adm:
        for path in ("/admin/keys", "/admin/usage?by=key&since=24h", "/admin/config",
                     "/admin/plugins", "/admin/metrics", "/metrics"):
            r = adm.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            shown.append((path, r.text))
    shown.append(("keys list", o.cli("keys", "list").stdout))
    shown.append(("keys list --json", o.cli("keys", "list", "--json").stdout))
    for where, text in shown:
        for s in secrets:
            assert s not in text, f"the secret appears in {where}"

    gw = o.gw
    assert gw.stop() == 0
    logs = gw.stderr + "\n".join(gw.stdout_lines)
    assert logs.count("\n") > 10, "debug logging says something"
    for s in secrets:
        assert s not in logs, "the secret appears in the gateway's output"

    # The store: every value of every table, and the raw bytes of the files (WAL included).
    tables = db_tables(o.db)
    assert tables, "the store has tables"
    for t in tables:
        for row in db_rows(o.db, f'SELECT * FROM "{t}"'):
            for col, v in row.items():
                for s in secrets:
                    assert not (isinstance(v, str) and s in v), f"secret in {t}.{col}"
                    assert not (isinstance(v, bytes) and s.encode() in v), f"secret in {t}.{col}"
    files = sorted(o.db.parent.glob(o.db.name + "*"))
    assert o.db in files
    for f in files:
        raw = f.read_bytes()
        for s in secrets:
            assert s.encode() not in raw, f"the secret's bytes are in {f.name}"


def test_keys_list_json_has_no_secret(ops):
    o, _ = ops
    k1 = o.create_key("one", "--models", "m,other", "--rpm", "7", "--daily-usd", "1.5",
                      "--tags", "a,b", "--owner", "ops")
    k2 = o.create_key("two")
    assert k1["key"] != k2["key"]
    assert k1["key"].startswith(k1["prefix"]) and len(k1["prefix"]) < len(k1["key"])
    out = o.cli("keys", "list", "--json").stdout
    for k in (k1, k2):
        assert k["key"] not in out
    keys = {k["name"]: k for k in json.loads(out)}
    assert set(keys) == {"one", "two"}, keys
    one = keys["one"]
    assert "key" not in one and one["prefix"] == k1["prefix"], one
    assert one["owner"] == "ops" and one["models"] == ["m", "other"], one
    assert one["revoked"] is False and one["expires_at"] is None, one
    for field in ("created_at", "spent_usd_today", "spent_usd_month", "spent_usd_total",
                  "tokens_today"):
        assert field in one, (field, one)
    assert one["spent_usd_total"] == 0 and one["tokens_today"] == 0, one
    # The limits set at creation are listed (where they sit in the object is not fixed here).
    text = json.dumps(one)
    assert '"rpm": 7' in text and "1.5" in text, one


# =============================================================================================
# A running gateway follows the CLI
# =============================================================================================


def test_cli_changes_reach_a_running_gateway_within_seconds(ops):
    o, a = ops
    o.launch()
    # No key anywhere yet: the gateway is open.
    assert o.post(None, body(max_tokens=10)).status_code == 200

    secret = o.create_key("late")["key"]
    t = time.monotonic()
    poll(lambda: o.post(secret, body(max_tokens=10)).status_code == 200
         and o.post(None, body(max_tokens=10)).status_code == 401,
         timeout=5, interval=0.1, what="the CLI-created key to be required and accepted")
    assert time.monotonic() - t < 5

    o.cli("keys", "update", "late", "--models", "other")
    poll(lambda: o.post(secret, body("m", 10)).status_code == 403, timeout=5, interval=0.1,
         what="the updated model list to apply")
    assert o.post(secret, body("other", 10)).status_code == 200

    o.cli("keys", "revoke", "late")
    poll(lambda: o.post(secret, body("other", 10)).status_code == 401, timeout=5, interval=0.1,
         what="the revoked key to be refused")
    # A revoked key still counts as "keys exist": the gateway stays closed.
    assert_401(o.post(None, body(max_tokens=10)))


def test_store_path_is_relative_to_the_config_folder(ops, tmp_path):
    """The CLI run from another folder writes the same store the gateway reads."""
    o, a = ops
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = o.cli("keys", "create", "--name", "far", "--json", cwd=elsewhere).stdout
    secret = json.loads(out)["key"]
    assert o.db.is_file(), f"no store next to the config: {sorted(o.path.parent.iterdir())}"
    assert not (elsewhere / "freeway.db").exists()
    o.launch(cwd=elsewhere)
    assert o.post(secret, body(max_tokens=10)).status_code == 200
