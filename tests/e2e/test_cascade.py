"""Cascades through the real binary: the bundled `cascade` router asks a judge model (a
scripted mock that answers from what it is asked) which tier of targets answers, through the
gateway itself; the verdict is cached by the request's text; a late, failed or unparseable
verdict uses the default tier and the route explanation says so; judge calls are ledger rows
of their own. From every inbound dialect (chat completions, /v1/messages, /v1/responses).
"""

from __future__ import annotations

import uuid
from typing import Any

import anthropic
import pytest

import mock_openai as mo
from harness import Ops, base_config, keys_for, poll, provider

PLUGINS = ("openai-compatible", "priority-fallback", "cascade")


def judge_rule(body: dict[str, Any]) -> mo.Behaviour:
    """The scripted judge: requests that ask for a proof are hard."""
    return mo.text("hard" if "prove" in mo.last_user_text(body).lower() else "easy")


def cascade_config(j: mo.MockOpenAI, e: mo.MockOpenAI, h: mo.MockOpenAI,
                   **extra: Any) -> dict[str, Any]:
    settings = {"judge": "judge-model", "default": "easy", "timeout_ms": 500,
                "tiers": {"easy": ["mock-e"], "hard": ["mock-h/large"]}}
    return base_config(
        providers={"mock-j": provider(j, ["tiny"]), "mock-e": provider(e, ["small"]),
                   "mock-h": provider(h, ["large"])},
        models={
            "judge-model": {"targets": ["mock-j/tiny"]},
            "auto": {"targets": ["mock-e/small", "mock-h/large"], "router": "cascade",
                     "settings": settings},
            # Its own judge: the judge call is never judged itself (depth 1).
            "selfjudge": {"targets": ["mock-e/small", "mock-h/large"], "router": "cascade",
                          "settings": {**settings, "judge": "selfjudge"}},
        },
        **extra)


@pytest.fixture(scope="module")
def cascade(module_mocks, module_gateways):
    j, e, h = (module_mocks.add(n) for n in ("mock-j", "mock-e", "mock-h"))
    gw = module_gateways.start(cascade_config(j, e, h), env=keys_for(j, e, h), plugins=PLUGINS)
    return gw, j, e, h


@pytest.fixture
def tiers(cascade, module_mocks):
    module_mocks.reset()
    gw, j, e, h = cascade
    j.respond_with(judge_rule)
    return cascade


def unique(text: str) -> str:
    """A question the verdict cache has not seen."""
    return f"{text} ({uuid.uuid4().hex[:8]})"


def test_the_judge_picks_the_tier(tiers):
    gw, j, e, h = tiers
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": unique("Prove that 2 is prime")}])
    assert raw.parse().choices[0].message.content == "hello from mock-h"
    route = raw.headers["x-freeway-route"]
    assert route.startswith("judge judge-model: tier hard, as the judge answered ("), route
    assert "mock-h/large: ok" in route
    asked = j.last().json
    assert asked["model"] == "tiny" and asked["max_tokens"] == 8
    assert "one of: easy, hard" in asked["messages"][0]["content"]
    assert "Prove that 2 is prime" in asked["messages"][1]["content"]

    r = gw.client().chat.completions.create(
        model="auto", messages=[{"role": "user", "content": unique("Say hi")}])
    assert r.choices[0].message.content == "hello from mock-e"
    assert len(j.chat_requests) == 2


def test_the_verdict_is_cached_by_the_requests_text(tiers):
    gw, j, e, h = tiers
    question = unique("Prove the lemma")
    for _ in range(3):
        raw = gw.client().chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": question}])
        assert raw.parse().choices[0].message.content == "hello from mock-h"
    assert len(j.chat_requests) == 1
    assert "(cached verdict)" in raw.headers["x-freeway-route"]


def test_a_late_verdict_uses_the_default_tier(tiers):
    gw, j, e, h = tiers
    j.script(mo.text("hard", delay=1.5))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": unique("Prove it")}])
    assert raw.parse().choices[0].message.content == "hello from mock-e"
    route = raw.headers["x-freeway-route"]
    assert route.startswith(
        "judge judge-model: no verdict: default tier easy (no answer within 500 ms)"), route


def test_a_failed_or_unparseable_verdict_uses_the_default_tier(tiers):
    gw, j, e, h = tiers
    j.script(mo.server_error(500))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": unique("Prove it")}])
    assert raw.parse().choices[0].message.content == "hello from mock-e"
    route = raw.headers["x-freeway-route"]
    assert route.startswith("judge judge-model: no verdict: default tier easy ("), route
    assert "failed" in route

    j.script(mo.text("It depends on the reader."))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": unique("Prove it")}])
    assert raw.parse().choices[0].message.content == "hello from mock-e"
    assert "answer 'It depends on the reader.' names no one tier: default tier easy" in \
        raw.headers["x-freeway-route"]


def test_a_judge_call_is_never_judged_itself(tiers):
    gw, j, e, h = tiers
    raw = gw.client().chat.completions.with_raw_response.create(
        model="selfjudge", messages=[{"role": "user", "content": unique("Prove it")}])
    # The judge call went to the default tier (it was not judged), answered "hello from
    # mock-e", which names no tier: the request goes to the default tier as well.
    assert raw.parse().choices[0].message.content == "hello from mock-e"
    assert "names no one tier" in raw.headers["x-freeway-route"]
    assert len(e.chat_requests) == 2 and not j.chat_requests


def test_messages_and_responses_clients_are_judged_too(tiers):
    gw, j, e, h = tiers
    claude = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)
    raw = claude.messages.with_raw_response.create(
        model="auto", max_tokens=100,
        messages=[{"role": "user", "content": unique("Prove Fermat's little theorem")}])
    assert raw.parse().content[0].text == "hello from mock-h"
    assert raw.headers["x-freeway-route"].startswith("judge judge-model: tier hard")

    raw = gw.client().responses.with_raw_response.create(
        model="auto", input=unique("Prove there are infinitely many primes"))
    assert raw.parse().output_text == "hello from mock-h"
    assert raw.headers["x-freeway-route"].startswith("judge judge-model: tier hard")
    raw = gw.client().responses.with_raw_response.create(model="auto", input=unique("Hi"))
    assert raw.parse().output_text == "hello from mock-e"


def test_judge_calls_are_ledger_rows_of_the_same_key(mocks, gateways):
    j, e, h = (mocks.add(n) for n in ("mock-j", "mock-e", "mock-h"))
    j.respond_with(judge_rule)
    o = Ops(gateways, cascade_config(j, e, h, store={"path": "freeway.db"}),
            keys_for(j, e, h), plugins=PLUGINS)
    key = o.create_key("team-a")["key"]
    o.launch()
    raw = o.client(key).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Prove it"}])
    assert raw.parse().choices[0].message.content == "hello from mock-h"
    request_id = raw.headers["x-request-id"]
    rows = poll(lambda: (lambda r: r if len(r) == 2 else None)(
        o.ledger("WHERE request_id LIKE ?", (request_id + "%",))),
        timeout=10, interval=0.1, what="two ledger rows")
    by_id = {r["request_id"]: r for r in rows}
    judge = by_id[request_id + ".judge"]
    assert judge["key"] == "team-a" and judge["model"] == "judge-model"
    assert judge["provider"] == "mock-j" and judge["status"] == 200
    served = by_id[request_id]
    assert served["key"] == "team-a" and served["provider"] == "mock-h"
    assert served["route"].startswith("judge judge-model: tier hard")


def test_cascade_settings_are_checked_at_load(gateways, mocks):
    j, e, h = (mocks.add(n) for n in ("mock-j", "mock-e", "mock-h"))
    config = cascade_config(j, e, h)
    config["models"]["auto"]["settings"]["default"] = "medium"
    path = gateways.write(config, plugins=PLUGINS)
    out = gateways.cli(path, "check", env=keys_for(j, e, h), check=False)
    assert out.returncode != 0
    assert "models.auto.settings" in out.stderr + out.stdout
    assert "`default` must be one of the tiers (easy, hard)" in out.stderr + out.stdout
