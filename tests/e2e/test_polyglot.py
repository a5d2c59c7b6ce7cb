"""Plugins written in other languages, loaded into the real gateway next to the Rust ones:

- `keyword-guard` (Python, componentize-py; a filter): blocks prompts with configured words,
  phrases or regexes (400 naming the rule), labels prompts by keyword for routing;
- `tag-router` (JavaScript, componentize-qjs; a router): requests carrying a tag with a route
  (client header `x-freeway-tags`, then labels from filters) try that route's providers first.

Both run as pooled instances (a fresh CPython per call would cost ~10 ms). The first gateway of a
session compiles the 19 MB Python component (~10 s); later ones load it from the plugin cache.
"""

from __future__ import annotations

from typing import Any, Optional

import httpx
import openai
import pytest

import mock_openai as mo
from harness import (BUNDLED, POLYGLOT, Gateway, base_config, chat_body, error_body, keys_for,
                     provider)

PLUGINS = BUNDLED + POLYGLOT
TARGETS = ["public/gpt-pub", "private/gpt-priv", "code/gpt-code"]

GUARD_SETTINGS = {
    "block": ["forbidden", "top secret"],
    "patterns": [r"\b\d{3}-\d{2}-\d{4}\b"],
    # "sensitive" is also one of the host's trusted-only tags; "code" and "eu" are not.
    "label": {"sensitive": ["salary", "confidential"], "code": ["python", "rust"]},
}
POOLED = {"instances": "pooled", "pool_size": 2, "timeout_ms": 2000}


def polyglot_config(ms: dict[str, mo.MockOpenAI], guard: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    cfg = base_config(
        providers={
            "public": provider(ms["public"], ["gpt-pub"]),
            "private": provider(ms["private"], ["gpt-priv"], trusted=True),
            "code": provider(ms["code"], ["gpt-code"]),
        },
        models={
            "chat": {"router": "tag-router", "targets": TARGETS,
                     "settings": {"routes": {"sensitive": ["private"], "code": ["code/gpt-code"],
                                             "eu": ["private"]},
                                  "default": "priority"}},
            # Tagged requests try only their route's candidates.
            "strict": {"router": "tag-router", "targets": TARGETS,
                       "settings": {"routes": {"code": ["code"]}, "default": "none"}},
            # The same targets without tag-router: configured order.
            "plain": {"targets": TARGETS},
        },
        admin={"listen": "127.0.0.1:0"},
    )
    cfg["pipeline"]["filters"] = ["keyword-guard"]
    cfg["pipeline"]["settings"] = {"keyword-guard": guard if guard is not None else GUARD_SETTINGS}
    cfg["plugins"]["overrides"] = {"keyword-guard": dict(POOLED), "tag-router": dict(POOLED)}
    return cfg


@pytest.fixture(scope="module")
def ms(module_mocks) -> dict[str, mo.MockOpenAI]:
    return {name: module_mocks.add(name) for name in ("public", "private", "code")}


@pytest.fixture(scope="module")
def gw(ms, module_gateways) -> Gateway:
    return module_gateways.start(polyglot_config(ms), env=keys_for(*ms.values()), plugins=PLUGINS)


@pytest.fixture
def m(ms, gw) -> dict[str, mo.MockOpenAI]:
    for mock in ms.values():
        mock.reset()
    return ms


def untouched(m: dict[str, mo.MockOpenAI]) -> None:
    counts = {name: len(mock.chat_requests) for name, mock in m.items()}
    assert counts == {name: 0 for name in m}, f"upstreams were contacted: {counts}"


def post(gw: Gateway, body: dict[str, Any], headers: Optional[dict[str, str]] = None) -> httpx.Response:
    with gw.http() as h:
        return h.post("/v1/chat/completions", json=body, headers=headers or {})


def served_by(gw: Gateway, model: str, prompt: str, tags: Optional[str] = None) -> str:
    extra = {"extra_headers": {"x-freeway-tags": tags}} if tags is not None else {}
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body(model, prompt), **extra)
    provider_name = raw.headers["x-freeway-provider"]
    assert raw.parse().choices[0].message.content == f"hello from {provider_name}"
    return provider_name


def admin_plugins(gw: Gateway) -> dict[str, dict[str, Any]]:
    with gw.admin() as h:
        r = h.get("/admin/plugins")
    assert r.status_code == 200, r.text
    return {p["name"]: p for p in r.json()["plugins"]}


# ================================================================================================
# keyword-guard (Python filter)
# ================================================================================================


@pytest.mark.parametrize("prompt,rule", [
    ("Tell me the FORBIDDEN plan about zebras", 'block[0] ("forbidden")'),
    ("this is top\n   Secret, about zebras", 'block[1] ("top secret")'),
    ("my number is 123-45-6789, zebras", r"patterns[0] (/\b\d{3}-\d{2}-\d{4}\b/)"),
])
def test_keyword_guard_blocks_with_its_reason(gw, m, prompt, rule):
    r = post(gw, chat_body("chat", prompt))
    assert r.status_code == 400, r.text
    err = error_body(r)
    assert err["code"] == "blocked_by_filter", err
    assert err["message"] == (
        f"the request was blocked by filter 'keyword-guard': "
        f"request blocked by keyword-guard: it matches rule {rule}"), err["message"]
    assert "zebras" not in err["message"], "the reason must not quote the client's text"
    untouched(m)


def test_keyword_guard_blocks_streamed_and_system_prompts(gw, m):
    with pytest.raises(openai.BadRequestError) as e:
        list(gw.client().chat.completions.create(
            model="chat", stream=True,
            messages=[{"role": "system", "content": "forbidden knowledge"},
                      {"role": "user", "content": [{"type": "text", "text": "hi"}]}]))
    assert 'block[0] ("forbidden")' in e.value.message
    with pytest.raises(openai.BadRequestError):
        gw.client().chat.completions.create(
            model="chat", messages=[{"role": "user", "content": [
                {"type": "text", "text": "hello"}, {"type": "text", "text": "FORBIDDEN"}]}])
    untouched(m)


def test_keyword_guard_allows_other_words_and_assistant_turns(gw, m):
    """Whole words only; assistant turns repeat what a model said and are not checked."""
    messages = [{"role": "user", "content": "is unforbidden a word?"},
                {"role": "assistant", "content": "forbidden is; unforbidden is not"},
                {"role": "user", "content": "thanks"}]
    c = gw.client().chat.completions.create(model="chat", messages=messages)
    assert c.choices[0].message.content == "hello from public"
    assert m["public"].last().json["messages"] == messages


def test_keyword_guard_label_reaches_routing(gw, m):
    # "code" is not a trusted-only tag: only tag-router moves this request to the code provider.
    assert served_by(gw, "chat", "write some Python for me") == "code"
    assert m["code"].last().json["messages"] == [
        {"role": "user", "content": "write some Python for me"}], "a label forwards unchanged"
    assert m["public"].chat_requests == []
    # Without tag-router the label changes nothing.
    assert served_by(gw, "plain", "write some Python for me") == "public"


def test_keyword_guard_sensitive_label_keeps_the_request_on_trusted_providers(gw, m):
    assert served_by(gw, "chat", "what is my manager's salary?") == "private"
    # "sensitive" is a trusted-only tag: even without tag-router, untrusted providers are skipped.
    assert served_by(gw, "plain", "this is confidential") == "private"
    assert m["public"].chat_requests == [] and m["code"].chat_requests == []


def test_client_tags_come_before_filter_labels(gw, m):
    # Header tag "eu" (route: private) first, then the filter's "code" label.
    assert served_by(gw, "chat", "some rust please", tags="eu") == "private"
    # Same header, the code route as fallback when private fails.
    m["private"].script(mo.server_error(503))
    raw = gw.client().chat.completions.with_raw_response.create(
        **chat_body("chat", "some rust please"), extra_headers={"x-freeway-tags": "eu"})
    assert raw.headers["x-freeway-provider"] == "code"
    route = raw.headers["x-freeway-route"]
    assert route.index("private/gpt-priv") < route.index("code/gpt-code"), route


# ================================================================================================
# tag-router (JavaScript router)
# ================================================================================================


@pytest.mark.parametrize("tags,expected", [
    (None, "public"),
    ("code", "code"),
    ("eu", "private"),
    ("unknown", "public"),
    ("unknown, code", "code"),
    ("code,eu", "code"),
    ("eu,code", "private"),
])
def test_tag_router_picks_the_provider_for_the_header_tag(gw, m, tags, expected):
    assert served_by(gw, "chat", "hello there", tags=tags) == expected
    others = [name for name in m if name != expected]
    assert all(m[name].chat_requests == [] for name in others)


def test_tag_router_falls_back_in_priority_order(gw, m):
    m["code"].script(mo.server_error(500))
    raw = gw.client().chat.completions.with_raw_response.create(
        **chat_body("chat", "hello"), extra_headers={"x-freeway-tags": "code"})
    assert raw.headers["x-freeway-provider"] == "public"
    assert raw.headers["x-freeway-attempts"] == "2"
    route = raw.headers["x-freeway-route"]
    assert route.index("code/gpt-code") < route.index("public/gpt-pub"), route


def test_tag_router_default_none_keeps_tagged_requests_on_their_route(gw, m):
    assert served_by(gw, "strict", "hello", tags="code") == "code"
    m["code"].script(mo.server_error(500))
    r = post(gw, chat_body("strict", "hello"), headers={"x-freeway-tags": "code"})
    # An upstream 500 counts as "unavailable": 503; what matters is that nothing else was tried.
    assert r.status_code == 503, r.text
    assert "not chosen by router 'tag-router'" in error_body(r)["message"]
    assert m["public"].chat_requests == [] and m["private"].chat_requests == []
    # Untagged requests still get every candidate in configured order.
    assert served_by(gw, "strict", "hello") == "public"


def test_tag_router_streams(gw, m):
    chunks = list(gw.client().chat.completions.create(
        **chat_body("chat", "hello"), stream=True, extra_headers={"x-freeway-tags": "code"}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello from code"


def test_bad_tag_router_settings_refuse_to_start(m, module_gateways):
    """The JavaScript router's `check-settings` runs at start: a route that is not a list is
    refused with the key it sits under, before any request could be misrouted."""
    cfg = polyglot_config(m)
    cfg["models"]["misrouted"] = {"router": "tag-router", "targets": TARGETS,
                                  "settings": {"routes": {"code": "code"}}}
    err = module_gateways.start_refused(cfg, env=keys_for(*m.values()), plugins=PLUGINS)
    assert "models.misrouted.settings" in err and "tag-router" in err, err
    assert "routes.code" in err, err
    untouched(m)


# ================================================================================================
# Both pooled, as the admin API reports
# ================================================================================================


def test_polyglot_plugins_are_pooled_and_counted(gw, m):
    before = admin_plugins(gw)
    kg, tr = before["keyword-guard"], before["tag-router"]
    assert kg["kind"] == "filter" and tr["kind"] == "router"
    assert kg["instances"] == "pooled" and tr["instances"] == "pooled", (kg, tr)
    assert kg["pool_size"] == 2 and kg["timeout_ms"] == 2000
    n = 5
    for i in range(n):
        assert served_by(gw, "chat", f"hello {i}", tags="code") == "code"
    after = admin_plugins(gw)
    assert after["keyword-guard"]["calls"] >= kg["calls"] + n, (kg, after["keyword-guard"])
    assert after["tag-router"]["calls"] >= tr["calls"] + n, (tr, after["tag-router"])
    assert after["keyword-guard"]["faults"] == 0 and after["tag-router"]["faults"] == 0
    assert after["keyword-guard"]["loaded_at"] == kg["loaded_at"], "a plugin was reloaded"


def test_bad_keyword_guard_settings_refuse_to_start(m, module_gateways):
    """The Python filter's `check-settings` runs at start: the config is refused, naming the
    key and the plugin's own reason."""
    err = module_gateways.start_refused(polyglot_config(m, guard={"block": "forbidden"}),
                                        env=keys_for(*m.values()), plugins=PLUGINS)
    assert "pipeline.settings.keyword-guard" in err, err
    assert "keyword-guard" in err and "`block` must be a list of strings" in err, err
    untouched(m)
