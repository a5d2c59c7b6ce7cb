"""What each instance mode guarantees about plugin memory, seen through a plugin that breaks
the contract's "no state between calls" on purpose.

`test-guard` with `{"behaviour": "remember"}` keeps the last request body it saw in its
instance's memory and rewrites every request to carry it (`REMEMBERED<<previous body>>`), so
what the upstream receives shows which earlier request, if any, shared the instance.

- `pooled` (the default): an instance is reused, but only for the same gateway key. Alice's
  second request may see her first; Bob's never sees Alice's.
- `fresh`: every request gets a new instance; nothing is ever remembered.
"""

from __future__ import annotations

import re

import openai
import pytest

from harness import TESTING, BUNDLED, base_config, chat_body, keys_for, provider

KEYS = {"GW_ALICE": "fw-alice-key-000000001", "GW_BOB": "fw-bob-key-00000000002"}
REMEMBERED = re.compile(r"REMEMBERED<<(.*)>>", re.S)


def config(mock, mode):
    cfg = base_config(providers={"plain": provider(mock, ["gpt-p"])},
                      models={"one": {"targets": ["plain/gpt-p"]}},
                      auth={"keys": [{"name": "alice", "key_env": "GW_ALICE"},
                                     {"name": "bob", "key_env": "GW_BOB"}]})
    if mode == "default":
        del cfg["plugins"]["defaults"]["instances"]
    else:
        cfg["plugins"]["defaults"]["instances"] = mode
    # Room for one idle instance per key: Alice's can wait while Bob's request runs.
    cfg["plugins"]["defaults"]["pool_size"] = 2
    cfg["pipeline"]["filters"] = ["test-guard"]
    cfg["pipeline"]["settings"] = {"test-guard": {"behaviour": "remember"}}
    return cfg


def remembered(mock) -> str:
    """What the filter's instance remembered when it handled the last request upstream saw."""
    sent = mock.last().json["messages"][-1]["content"]
    match = REMEMBERED.search(sent)
    assert match, f"the filter did not annotate the request: {sent!r}"
    return match.group(1)


def ask(gw, key, text):
    client = openai.OpenAI(base_url=gw.base_url, api_key=KEYS[key], max_retries=0, timeout=30)
    return client.chat.completions.create(**chat_body("one", text))


@pytest.mark.parametrize("mode", ["default", "pooled"])
def test_a_pooled_instance_never_serves_two_gateway_keys(mocks, gateways, mode):
    m = mocks.add("plain")
    gw = gateways.start(config(m, mode), env={**keys_for(m), **KEYS}, plugins=BUNDLED + TESTING)
    ask(gw, "GW_ALICE", "alice-secret-1")
    assert remembered(m) == "", "the first request met a used instance"
    ask(gw, "GW_BOB", "bob-question-1")
    assert "alice" not in remembered(m), "Bob's request ran on Alice's instance"
    ask(gw, "GW_ALICE", "alice-question-2")
    # The pool really reuses within one key (else this test could not fail): Alice's second
    # request met the instance that handled her first.
    assert "alice-secret-1" in remembered(m)
    ask(gw, "GW_BOB", "bob-question-2")
    assert "alice" not in remembered(m), "Bob's request ran on Alice's instance"
    # Streams and concurrent requests lease the same way.
    for _ in range(3):
        for chunk in openai.OpenAI(base_url=gw.base_url, api_key=KEYS["GW_BOB"],
                                   max_retries=0).chat.completions.create(
                **chat_body("one", "bob-stream"), stream=True):
            pass
        assert "alice" not in remembered(m)


def test_fresh_instances_remember_nothing(mocks, gateways):
    m = mocks.add("plain")
    gw = gateways.start(config(m, "fresh"), env={**keys_for(m), **KEYS},
                        plugins=BUNDLED + TESTING)
    for key, text in [("GW_ALICE", "alice-1"), ("GW_ALICE", "alice-2"), ("GW_BOB", "bob-1")]:
        ask(gw, key, text)
        assert remembered(m) == "", f"{text} met an instance that had served another request"
