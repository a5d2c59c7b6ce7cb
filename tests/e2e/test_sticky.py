"""Sticky sessions: a conversation keeps the target that served it while that target can serve,
and moves when it cannot. Keyed by the `x-freeway-session` header, or by the OpenAI `user`
field plus how the conversation began."""

from __future__ import annotations

import pytest

import mock_openai as mo
from harness import base_config, chat_body, keys_for, provider


@pytest.fixture
def spread(mocks, gateways):
    """mock-a then mock-b behind "spread" (priority-fallback: a first), so a conversation
    that sticks to b is visibly against the router's own order."""
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    cfg = base_config(
        providers={"mock-a": provider(a, ["gpt-a"]), "mock-b": provider(b, ["gpt-b"])},
        models={"spread": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}},
    )
    gw = gateways.start(cfg, env=keys_for(a, b))
    return gw, a, b


def served_by(gw, body, headers=None):
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=body, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.headers["x-freeway-provider"]


def test_session_header_keeps_the_target_that_answered_and_moves_when_it_dies(spread):
    gw, a, b = spread
    session = {"x-freeway-session": "conv-1"}
    a.script(mo.server_error(503))
    # a fails once: the conversation lands on b...
    assert served_by(gw, chat_body("spread"), session) == "mock-b"
    # ...and stays there although a (first in config order) is healthy again.
    for _ in range(3):
        assert served_by(gw, chat_body("spread"), session) == "mock-b"
    assert len(a.chat_requests) == 1
    # A request without the session follows the configured order.
    assert served_by(gw, chat_body("spread")) == "mock-a"
    # b dies: the conversation moves to a and then stays on a.
    b.script(mo.server_error(503))
    assert served_by(gw, chat_body("spread"), session) == "mock-a"
    assert served_by(gw, chat_body("spread"), session) == "mock-a"


def test_user_and_conversation_prefix_key_a_session(spread):
    gw, a, b = spread
    first_turn = chat_body("spread", content="Plan my trip to Porto", user="alice")
    a.script(mo.server_error(503))
    assert served_by(gw, first_turn) == "mock-b"
    # The next turn of the same conversation (same beginning, more messages) stays on b.
    second_turn = dict(first_turn)
    second_turn["messages"] = first_turn["messages"] + [
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "Two days only."},
    ]
    assert served_by(gw, second_turn) == "mock-b"
    # Another conversation of the same user is not affected.
    assert served_by(gw, chat_body("spread", content="Something else", user="alice")) == "mock-a"
