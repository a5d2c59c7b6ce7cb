"""Privacy end to end: the bundled `pii` filter and trusted-only routing, through the real gateway
with the official openai SDK; the mocks record what each upstream received.

Providers of every gateway here (see `privacy_config`):
- `public`: an API provider with a key and no privacy promise: never trusted;
- `private`: an API provider with `trusted = true`;
- `local`: keyless (self-hosted), hence trusted;
- `nolog`: `privacy = {logs_prompts = false, trains_on_prompts = false}`, hence trusted.
Models put `public` first, so a request that ends up elsewhere was moved there by policy.

The `pii` filter's settings are per gateway (one gateway per action, started on first use and
shared by the module); the `test-guard` filter, configured to trap or spin, checks that a broken
filter fails closed. Every gateway logs at `debug`, and after every test no gateway's stderr may
contain a raw value sent by it.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import httpx
import openai
import pytest

import mock_openai as mo
from harness import (BUNDLED, FILTERS, TESTING, Gateway, base_config, chat_body, error_body,
                     keys_for, provider, sse_events)

PLUGINS = BUNDLED + FILTERS + TESTING
FAST = 2.5  # seconds

# entity type -> (raw value, a prompt carrying it, its first placeholder)
ENTITIES: dict[str, tuple[str, str, str]] = {
    "email": ("jane.doe@example.org", "Please write to jane.doe@example.org today.", "[EMAIL_1]"),
    "phone": ("+44 20 7946 0958", "Call me on +44 20 7946 0958 tomorrow.", "[PHONE_1]"),
    "card": ("4111 1111 1111 1111", "My card is 4111 1111 1111 1111, thanks.", "[CARD_1]"),
    "iban": ("DE89 3704 0044 0532 0130 00", "Pay to IBAN DE89 3704 0044 0532 0130 00 please.",
             "[IBAN_1]"),
    "ssn": ("078-05-1120", "My SSN is 078-05-1120 for the form.", "[SSN_1]"),
    "ip": ("203.0.113.42", "The server at 203.0.113.42 is down.", "[IP_1]"),
    "secret": ("sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w",
               "Use key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w for the call.", "[SECRET_1]"),
}
KINDS = list(ENTITIES)
# A secret that needs escaping inside JSON (newlines), for restoration into tool arguments.
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAzq7Xb9\n-----END RSA PRIVATE KEY-----"
# Values used only by some tests (second addresses, tool calls...); never logged either.
EXTRA_VALUES = ("john.smith@example.com", PEM, "MIIEowIBAAKCAQEAzq7Xb9")
ALL_VALUES = [v for v, _, _ in ENTITIES.values()] + list(EXTRA_VALUES)

ACTIONS = ("redact", "block", "route-trusted", "allow")
MOCK_NAMES = ("public", "private", "local", "nolog")


def all_actions(action: str) -> dict[str, str]:
    return {kind: action for kind in KINDS}


# Gateway flavours: pii settings, and optionally the test-guard behaviour on model "guarded".
FLAVOURS: dict[str, dict[str, Any]] = {
    **{action: {"pii": {"actions": all_actions(action)}} for action in ACTIONS},
    # Reversible pseudonyms; also mixes actions to check which one wins.
    "reversible": {"pii": {"actions": {"iban": "block", "ssn": "route-trusted", "ip": "allow",
                                       "secret": "redact"},
                           "reversible": True}},
    "trap": {"pii": {}, "guard": "trap"},
    "loop": {"pii": {}, "guard": "loop"},
}


def privacy_config(ms: dict[str, mo.MockOpenAI], pii: dict[str, Any],
                   guard: Optional[str] = None) -> dict[str, Any]:
    models: dict[str, Any] = {
        "chat": {"targets": ["public/gpt-pub", "private/gpt-priv"]},
        "chat-local": {"targets": ["public/gpt-pub", "local/llama"]},
        "chat-nolog": {"targets": ["public/gpt-pub", "nolog/gpt-nolog"]},
        "public-only": {"targets": ["public/gpt-pub"]},
    }
    if guard:
        models["guarded"] = {"targets": ["public/gpt-pub", "private/gpt-priv"],
                             "filters": ["test-guard"]}
    cfg = base_config(
        providers={
            "public": provider(ms["public"], ["gpt-pub"]),
            "private": provider(ms["private"], ["gpt-priv"], trusted=True),
            # Keyless: self-hosted, trusted without saying so.
            "local": {"adapter": "openai-compatible", "base_url": ms["local"].base_url,
                      "models": ["llama"]},
            "nolog": provider(ms["nolog"], ["gpt-nolog"],
                              privacy={"logs_prompts": False, "trains_on_prompts": False}),
        },
        models=models,
    )
    cfg["pipeline"]["filters"] = ["pii"]
    cfg["pipeline"]["settings"] = {"pii": pii}
    if guard:
        cfg["pipeline"]["settings"]["test-guard"] = {"behaviour": guard}
    return cfg


class Privacy:
    """The module's mocks and its gateways, one per flavour, started on first use."""

    def __init__(self, module_mocks, module_gateways) -> None:
        self.factory = module_gateways
        self.ms: dict[str, mo.MockOpenAI] = {}
        for name in MOCK_NAMES:
            if name == "local":
                # A local server takes no key (and the gateway sends none).
                self.ms[name] = module_mocks.adopt(mo.MockOpenAI("local", api_key=None).start())
            else:
                self.ms[name] = module_mocks.add(name)
        self.gws: dict[str, Gateway] = {}

    def __getitem__(self, name: str) -> mo.MockOpenAI:
        return self.ms[name]

    def gw(self, flavour: str) -> Gateway:
        if flavour not in self.gws:
            f = FLAVOURS[flavour]
            cfg = privacy_config(self.ms, f["pii"], f.get("guard"))
            env = {**keys_for(*(m for m in self.ms.values() if m.api_key)), "FREEWAY_LOG": "debug"}
            self.gws[flavour] = self.factory.start(cfg, env=env, plugins=PLUGINS)
        return self.gws[flavour]

    def reset(self) -> None:
        for m in self.ms.values():
            m.reset()

    def chat_counts(self) -> dict[str, int]:
        return {name: len(m.chat_requests) for name, m in self.ms.items()}

    def untouched(self) -> None:
        counts = self.chat_counts()
        assert counts == {name: 0 for name in MOCK_NAMES}, f"upstreams were contacted: {counts}"


@pytest.fixture(scope="module")
def env(module_mocks, module_gateways):
    return Privacy(module_mocks, module_gateways)


@pytest.fixture
def p(env):
    """The module's privacy environment with the mocks reset; afterwards, no gateway may have
    logged a raw value during the test."""
    env.reset()
    marks = {name: gw.log_mark() for name, gw in env.gws.items()}
    yield env
    for name, gw in env.gws.items():
        said = gw.stderr_since(marks.get(name, 0))
        leaked = [v for v in ALL_VALUES if v in said]
        assert not leaked, f"gateway '{name}' logged raw PII {leaked}:\n{said[-3000:]}"


def sent_text(rec: mo.Recorded) -> str:
    """Every message text an upstream received, as one string (contents and text parts)."""
    out = []
    for m in rec.json["messages"]:
        c = m.get("content")
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, list):
            out.extend(part.get("text", "") for part in c)
        for call in m.get("tool_calls") or []:
            out.append(call["function"]["arguments"])
    return "\n".join(out)


def post(gw: Gateway, body: dict[str, Any], headers: Optional[dict[str, str]] = None) -> httpx.Response:
    with gw.http() as h:
        return h.post("/v1/chat/completions", json=body, headers=headers or {})


def stream_text(chunks) -> str:
    return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)


# ================================================================================================
# One action per entity type
# ================================================================================================


@pytest.mark.parametrize("kind", KINDS)
def test_redact_sends_a_typed_placeholder(p, kind):
    value, prompt, placeholder = ENTITIES[kind]
    raw = p.gw("redact").client().chat.completions.with_raw_response.create(**chat_body("chat", prompt))
    assert raw.headers["x-freeway-provider"] == "public"
    assert raw.parse().choices[0].message.content == "hello from public"
    rec = p["public"].last()
    assert rec.json["messages"] == [{"role": "user", "content": prompt.replace(value, placeholder)}]
    assert value.encode() not in rec.raw, f"the {kind} value reached the upstream"
    assert rec.json["model"] == "gpt-pub"
    assert p.chat_counts() == {"public": 1, "private": 0, "local": 0, "nolog": 0}


@pytest.mark.parametrize("kind", KINDS)
def test_block_refuses_naming_the_type_only(p, kind):
    value, prompt, _ = ENTITIES[kind]
    r = post(p.gw("block"), chat_body("chat", prompt))
    assert r.status_code == 400, r.text
    err = error_body(r)
    assert err["code"] == "blocked_by_filter", err
    assert "pii" in err["message"] and f"data of type {kind}" in err["message"], err["message"]
    assert value not in r.text, f"the refusal repeats the {kind} value: {r.text}"
    p.untouched()


def test_block_refuses_a_streamed_request_before_streaming(p):
    value, prompt, _ = ENTITIES["card"]
    with pytest.raises(openai.BadRequestError) as e:
        list(p.gw("block").client().chat.completions.create(**chat_body("chat", prompt), stream=True))
    assert e.value.status_code == 400
    assert "data of type card" in e.value.message and value not in e.value.message
    p.untouched()


@pytest.mark.parametrize("kind", KINDS)
def test_route_trusted_is_served_by_the_trusted_provider_only(p, kind):
    value, prompt, _ = ENTITIES[kind]
    raw = p.gw("route-trusted").client().chat.completions.with_raw_response.create(
        **chat_body("chat", prompt))
    assert raw.parse().choices[0].message.content == "hello from private"
    assert raw.headers["x-freeway-provider"] == "private"
    assert raw.headers["x-freeway-attempts"] == "1"
    route = raw.headers["x-freeway-route"]
    assert "public/gpt-pub: cannot serve" in route and "pii:trusted-only" in route, route
    assert p["public"].chat_requests == [], "the untrusted provider must never see the request"
    # route-trusted forwards the request as sent (it is a label, not a rewrite).
    assert p["private"].last().json["messages"] == [{"role": "user", "content": prompt}]


@pytest.mark.parametrize("model,trusted", [("chat-local", "local"), ("chat-nolog", "nolog")])
def test_route_trusted_counts_keyless_and_no_log_providers_as_trusted(p, model, trusted):
    value, prompt, _ = ENTITIES["email"]
    raw = p.gw("route-trusted").client().chat.completions.with_raw_response.create(
        **chat_body(model, prompt))
    assert raw.headers["x-freeway-provider"] == trusted
    assert raw.parse().choices[0].message.content == f"hello from {trusted}"
    assert p["public"].chat_requests == []
    if trusted == "local":
        assert "authorization" not in p["local"].last().headers


def test_route_trusted_streams_from_the_trusted_provider(p):
    _, prompt, _ = ENTITIES["iban"]
    chunks = list(p.gw("route-trusted").client().chat.completions.create(
        **chat_body("chat", prompt), stream=True))
    assert stream_text(chunks) == "hello from private"
    assert p["public"].chat_requests == []


@pytest.mark.parametrize("kind", KINDS)
def test_allow_forwards_the_value_unchanged(p, kind):
    value, prompt, _ = ENTITIES[kind]
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}]
    raw = p.gw("allow").client().chat.completions.with_raw_response.create(
        model="chat", messages=messages, temperature=0.3)
    assert raw.headers["x-freeway-provider"] == "public"
    rec = p["public"].last()
    assert rec.json["messages"] == messages and rec.json["temperature"] == 0.3
    assert p["private"].chat_requests == []


def test_clean_prompts_pass_every_action_untouched(p):
    prompt = "What is 2+2? See RFC 6750, version 1.2.3, order 4411."
    for action in ACTIONS:
        p.reset()
        c = p.gw(action).client().chat.completions.create(**chat_body("chat", prompt))
        assert c.choices[0].message.content == "hello from public", action
        assert p["public"].last().json["messages"][0]["content"] == prompt, action


def test_irreversible_redaction_keeps_placeholders_in_the_answer(p):
    """Without `reversible` the mapping is forgotten: the answer's placeholder stays."""
    p["public"].script(mo.text("Sure, I wrote to [EMAIL_1]."))
    c = p.gw("redact").client().chat.completions.create(**chat_body("chat", ENTITIES["email"][1]))
    assert c.choices[0].message.content == "Sure, I wrote to [EMAIL_1]."


def test_redaction_covers_every_message_and_part(p):
    """System prompts, text parts, earlier assistant turns, tool-call arguments and tool
    results are all redacted; the rewritten body stays valid and keeps everything else."""
    email, phone = ENTITIES["email"][0], ENTITIES["phone"][0]
    messages = [
        {"role": "system", "content": f"The user's phone is {phone}."},
        {"role": "user", "content": [{"type": "text", "text": f"Mail {email} please"}]},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "send_email",
                         "arguments": json.dumps({"to": email, "cc": EXTRA_VALUES[0]})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": f"sent to {email}"},
        {"role": "user", "content": "thanks"},
    ]
    p.gw("redact").client().chat.completions.create(model="chat", messages=messages, max_tokens=50)
    rec = p["public"].last()
    for v in (email, phone, EXTRA_VALUES[0]):
        assert v.encode() not in rec.raw, v
    got = rec.json["messages"]
    assert got[0]["content"] == "The user's phone is [PHONE_1]."
    assert got[1]["content"] == [{"type": "text", "text": "Mail [EMAIL_1] please"}]
    args = json.loads(got[2]["tool_calls"][0]["function"]["arguments"])
    assert args == {"to": "[EMAIL_1]", "cc": "[EMAIL_2]"}
    assert got[2]["tool_calls"][0]["function"]["name"] == "send_email"
    assert got[3] == {"role": "tool", "tool_call_id": "call_1", "content": "sent to [EMAIL_1]"}
    assert got[4] == {"role": "user", "content": "thanks"}
    assert rec.json["max_tokens"] == 50


# ================================================================================================
# Which action wins, when a prompt carries several types (reversible gateway: iban blocks,
# ssn routes to trusted providers, ip is allowed, the rest is redacted)
# ================================================================================================


def test_block_beats_route_trusted_and_redact(p):
    email, iban, ssn = ENTITIES["email"][0], ENTITIES["iban"][0], ENTITIES["ssn"][0]
    r = post(p.gw("reversible"), chat_body("chat", f"mail {email}, pay {iban}, SSN {ssn}"))
    assert r.status_code == 400
    msg = error_body(r)["message"]
    assert "data of type iban" in msg and "email" not in msg and "ssn" not in msg, msg
    assert email not in r.text and iban not in r.text and ssn not in r.text
    p.untouched()


def test_route_trusted_and_redact_apply_together(p):
    """The SSN (route-trusted) keeps the request on a trusted provider, which sees it; the
    e-mail (redact) is still replaced, and its pseudonym is restored in the answer."""
    email, ssn = ENTITIES["email"][0], ENTITIES["ssn"][0]
    p["private"].script(mo.text("Done: wrote to [EMAIL_1]."))
    raw = p.gw("reversible").client().chat.completions.with_raw_response.create(
        **chat_body("chat", f"mail {email} my SSN {ssn}"))
    assert raw.headers["x-freeway-provider"] == "private"
    assert raw.parse().choices[0].message.content == f"Done: wrote to {email}."
    assert p["public"].chat_requests == []
    rec = p["private"].last()
    assert rec.json["messages"][0]["content"] == f"mail [EMAIL_1] my SSN {ssn}"
    assert email.encode() not in rec.raw


def test_route_trusted_and_redact_apply_together_in_streams(p):
    email, ssn = ENTITIES["email"][0], ENTITIES["ssn"][0]
    p["private"].script(mo.text("Done: [EMAIL_1].", pieces=["Done: [EM", "AIL_1", "]."]))
    chunks = list(p.gw("reversible").client().chat.completions.create(
        **chat_body("chat", f"mail {email} my SSN {ssn}"), stream=True))
    assert stream_text(chunks) == f"Done: {email}."
    assert p["public"].chat_requests == []
    assert p["private"].last().json["messages"][0]["content"] == f"mail [EMAIL_1] my SSN {ssn}"


def test_allowed_type_passes_while_another_is_redacted(p):
    email, ip = ENTITIES["email"][0], ENTITIES["ip"][0]
    p.gw("reversible").client().chat.completions.create(
        **chat_body("chat", f"mail {email} from host {ip}"))
    assert p["public"].last().json["messages"][0]["content"] == f"mail [EMAIL_1] from host {ip}"


# ================================================================================================
# Reversible pseudonyms: the provider sees placeholders, the client reads its own data
# ================================================================================================

EMAIL, PHONE, CARD = ENTITIES["email"][0], ENTITIES["phone"][0], ENTITIES["card"][0]
EMAIL2 = EXTRA_VALUES[0]
REVERSIBLE_PROMPT = f"Email {EMAIL} and {EMAIL2}, call {PHONE}, charge {CARD}; again {EMAIL}."


def assert_pseudonymised(rec: mo.Recorded) -> None:
    """The upstream got numbered placeholders (same value, same number) and no value."""
    assert rec.json["messages"][0]["content"] == (
        "Email [EMAIL_1] and [EMAIL_2], call [PHONE_1], charge [CARD_1]; again [EMAIL_1].")
    for v in (EMAIL, EMAIL2, PHONE, CARD):
        assert v.encode() not in rec.raw, v


def test_reversible_json_answer_gets_originals_back(p):
    # The mock echoes the placeholders it received, plus ones it never got and bracketed text.
    p["public"].script(mo.text(
        "Done: wrote to [EMAIL_1] (cc [EMAIL_2]), called [PHONE_1], charged [CARD_1]. "
        "[EMAIL_9] and [1] and [CARD_] stay."))
    c = p.gw("reversible").client().chat.completions.create(**chat_body("chat", REVERSIBLE_PROMPT))
    assert_pseudonymised(p["public"].last())
    assert c.choices[0].message.content == (
        f"Done: wrote to {EMAIL} (cc {EMAIL2}), called {PHONE}, charged {CARD}. "
        "[EMAIL_9] and [1] and [CARD_] stay.")
    assert c.usage.total_tokens == 18 and c.choices[0].finish_reason == "stop"


STREAM_CASES = {
    # name: (pieces the mock streams, what the client must read)
    "split-in-two": (["I will write to ", "[EMA", "IL_1]", " now."],
                     f"I will write to {EMAIL} now."),
    "split-in-many": (["To ", "[", "EMAIL", "_", "2", "]", ", call [PHONE_1", "]."],
                      f"To {EMAIL2}, call {PHONE}."),
    "whole-in-one": (["Card [CARD_1] ok"], f"Card {CARD} ok"),
    "at-the-end": (["Reply to ", "[EMAIL_1]"], f"Reply to {EMAIL}"),
    "split-at-the-end": (["Reply to [EMAIL", "_1]"], f"Reply to {EMAIL}"),
    # Held back as a possible placeholder, never completed: released, not lost, at the end.
    "dangling": (["see [EMA"], "see [EMA"),
    "not-a-placeholder": (["see [", "1] and [Note", "]"], "see [1] and [Note]"),
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_reversible_stream_gets_originals_back(p, case):
    pieces, expected = STREAM_CASES[case]
    p["public"].script(mo.text("".join(pieces), pieces=pieces))
    chunks = list(p.gw("reversible").client().chat.completions.create(
        **chat_body("chat", REVERSIBLE_PROMPT), stream=True))
    assert_pseudonymised(p["public"].last())
    assert stream_text(chunks) == expected
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    if case != "not-a-placeholder" and case != "dangling":
        for ch in chunks:
            piece = ch.choices[0].delta.content or "" if ch.choices else ""
            assert "[EMA" not in piece and "IL_1]" not in piece and "_1]" not in piece, (
                f"a placeholder fragment reached the client: {piece!r}")


def test_reversible_stream_split_across_network_writes(p):
    """The SSE events themselves arrive cut into 7-byte writes (and with keep-alive comments)."""
    pieces = ["Sure: ", "[EMA", "IL_1]", " and ", "[PHONE_1]", "."]
    p["public"].script(mo.text("".join(pieces), pieces=pieces, write_size=7, sse_comments=True))
    with p.gw("reversible").http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chat", REVERSIBLE_PROMPT, stream=True))
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    text = "".join((json.loads(e)["choices"] or [{}])[0].get("delta", {}).get("content") or ""
                   for e in events[:-1])
    assert text == f"Sure: {EMAIL} and {PHONE}."


def test_reversible_tool_call_arguments_json(p):
    p["public"].script(mo.tool_call("send_email", '{"to": "[EMAIL_1]", "cc": ["[EMAIL_2]"], '
                                                  '"note": "call [PHONE_1]"}'))
    c = p.gw("reversible").client().chat.completions.create(
        **chat_body("chat", REVERSIBLE_PROMPT),
        tools=[{"type": "function", "function": {"name": "send_email", "parameters": {}}}])
    assert_pseudonymised(p["public"].last())
    call = c.choices[0].message.tool_calls[0]
    assert call.function.name == "send_email"
    assert json.loads(call.function.arguments) == {"to": EMAIL, "cc": [EMAIL2],
                                                   "note": f"call {PHONE}"}
    assert c.choices[0].finish_reason == "tool_calls"


def test_reversible_tool_call_arguments_streamed(p):
    arguments = '{"to": "[EMAIL_1]", "note": "call [PHONE_1]"}'
    p["public"].script(mo.tool_call(
        "send_email", arguments,
        argument_pieces=['{"to": "[EMA', 'IL_1]", "no', 'te": "call [PHO', 'NE_1', ']"}']))
    chunks = list(p.gw("reversible").client().chat.completions.create(
        **chat_body("chat", REVERSIBLE_PROMPT), stream=True,
        tools=[{"type": "function", "function": {"name": "send_email", "parameters": {}}}]))
    assert_pseudonymised(p["public"].last())
    calls = [tc for ch in chunks if ch.choices for tc in (ch.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "send_email"
    joined = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert json.loads(joined) == {"to": EMAIL, "note": f"call {PHONE}"}
    for tc in calls:
        assert "[EMA" not in (tc.function.arguments or "")


def test_reversible_restores_escaped_values_into_tool_arguments(p):
    """A PEM key has newlines: restored into tool-call arguments (JSON text) it must be escaped,
    restored into content it is plain text."""
    prompt = f"Store this key:\n{PEM}\nin the vault."
    p["public"].script(mo.tool_call("store", '{"key": "[SECRET_1]", "n": 1}'),
                       mo.text("Stored [SECRET_1].", pieces=["Stored [SEC", "RET_1", "]."]))
    client = p.gw("reversible").client()
    c = client.chat.completions.create(**chat_body("chat", prompt))
    rec = p["public"].last()
    assert rec.json["messages"][0]["content"] == "Store this key:\n[SECRET_1]\nin the vault."
    assert b"MIIEowIBAAKCAQEAzq7Xb9" not in rec.raw
    assert json.loads(c.choices[0].message.tool_calls[0].function.arguments) == {"key": PEM, "n": 1}
    chunks = list(client.chat.completions.create(**chat_body("chat", prompt), stream=True))
    assert stream_text(chunks) == f"Stored {PEM}."


def test_reversible_restores_around_multibyte_text_cut_anywhere(p):
    """Non-ASCII text next to placeholders, and SSE bytes cut in the middle of characters."""
    prompt = f"Schreib an {EMAIL} — grüße 😀 und ruf {PHONE} an."
    pieces = ["Grüße 😀 an ", "[EMA", "IL_1]—", "und «[PHONE_1]»", " ✓"]
    p["public"].script(mo.text("".join(pieces), pieces=pieces, write_size=5))
    chunks = list(p.gw("reversible").client().chat.completions.create(
        **chat_body("chat", prompt), stream=True))
    assert p["public"].last().json["messages"][0]["content"] == (
        "Schreib an [EMAIL_1] — grüße 😀 und ruf [PHONE_1] an.")
    assert stream_text(chunks) == f"Grüße 😀 an {EMAIL}—und «{PHONE}» ✓"


def test_reversible_restoration_survives_failover(p):
    """The first target fails; the second gets the same pseudonymised body and its answer is
    restored with the same mapping."""
    p["public"].script(mo.server_error(503))
    p["private"].script(mo.text("Mailed [EMAIL_1]."))
    raw = p.gw("reversible").client().chat.completions.with_raw_response.create(
        **chat_body("chat", REVERSIBLE_PROMPT))
    assert raw.headers["x-freeway-provider"] == "private"
    assert raw.headers["x-freeway-attempts"] == "2"
    assert raw.parse().choices[0].message.content == f"Mailed {EMAIL}."
    assert_pseudonymised(p["public"].last())
    assert_pseudonymised(p["private"].last())


# ================================================================================================
# Trusted-only routing
# ================================================================================================


def test_trusted_only_without_a_trusted_target_is_refused(p):
    value, prompt, _ = ENTITIES["email"]
    r = post(p.gw("route-trusted"), chat_body("public-only", prompt))
    assert r.status_code == 400, r.text
    err = error_body(r)
    assert err["code"] == "unsupported_request"
    msg = err["message"]
    assert "public-only" in msg and "pii:trusted-only" in msg and "not trusted" in msg, msg
    assert "'public'" in msg, msg
    assert value not in r.text
    p.untouched()


def test_label_header_forces_trusted_routing(p):
    gw = p.gw("allow")
    raw = gw.client().chat.completions.with_raw_response.create(
        **chat_body("chat", "nothing personal here"), extra_headers={"x-freeway-tags": "sensitive"})
    assert raw.headers["x-freeway-provider"] == "private"
    assert p["public"].chat_requests == []
    # Among other tags, with spaces.
    raw = gw.client().chat.completions.with_raw_response.create(
        **chat_body("chat", "nothing personal"), extra_headers={"x-freeway-tags": "code , sensitive"})
    assert raw.headers["x-freeway-provider"] == "private"
    assert p["public"].chat_requests == []
    # The filter's own tag works from a client too.
    raw = gw.client().chat.completions.with_raw_response.create(
        **chat_body("chat", "nothing personal"), extra_headers={"x-freeway-tags": "pii:trusted-only"})
    assert raw.headers["x-freeway-provider"] == "private"
    assert p["public"].chat_requests == []
    # Tags that are not trusted-only change nothing.
    raw = gw.client().chat.completions.with_raw_response.create(
        **chat_body("chat", "nothing personal"), extra_headers={"x-freeway-tags": "code,sensitive-ish"})
    assert raw.headers["x-freeway-provider"] == "public"


def test_metadata_sensitive_forces_trusted_routing(p):
    gw = p.gw("allow")
    raw = gw.client().chat.completions.with_raw_response.create(
        **chat_body("chat", "nothing personal here"), metadata={"sensitive": "true"})
    assert raw.headers["x-freeway-provider"] == "private"
    assert p["public"].chat_requests == []
    raw = gw.client().chat.completions.with_raw_response.create(
        **chat_body("chat", "nothing personal here"), metadata={"sensitive": "false"})
    assert raw.headers["x-freeway-provider"] == "public"


@pytest.mark.parametrize("how", ["header", "metadata"])
def test_client_label_without_a_trusted_target_is_refused(p, how):
    kw: dict[str, Any] = ({"headers": {"x-freeway-tags": "sensitive"}} if how == "header" else {})
    body = chat_body("public-only", "nothing personal here")
    if how == "metadata":
        body["metadata"] = {"sensitive": "true"}
    r = post(p.gw("allow"), body, **kw)
    assert r.status_code == 400, r.text
    err = error_body(r)
    assert err["code"] == "unsupported_request"
    assert "'sensitive'" in err["message"] and "not trusted" in err["message"], err["message"]
    p.untouched()


# ================================================================================================
# Broken filters fail closed
# ================================================================================================


@pytest.mark.parametrize("behaviour", ["trap", "loop"])
def test_broken_filter_fails_closed(p, behaviour):
    gw = p.gw(behaviour)
    _, prompt, _ = ENTITIES["email"]
    for stream in (False, True):
        t0 = time.monotonic()
        r = post(gw, chat_body("guarded", prompt, stream=stream))
        elapsed = time.monotonic() - t0
        assert r.status_code == 500, r.text
        err = error_body(r)
        assert err["code"] == "plugin_error", err
        assert "test-guard" in err["message"], err["message"]
        assert elapsed < FAST, f"{behaviour}: the client waited {elapsed:.1f}s"
    p.untouched()
    # The gateway keeps serving, and the pii filter still works.
    c = gw.client().chat.completions.create(**chat_body("chat", prompt))
    assert c.choices[0].message.content == "hello from public"
    assert p["public"].last().json["messages"][0]["content"] == prompt.replace(
        ENTITIES["email"][0], "[EMAIL_1]")
    with gw.http() as h:
        assert h.get("/healthz").status_code == 200
    # ...and the broken filter keeps failing closed.
    assert post(gw, chat_body("guarded", "harmless")).status_code == 500
    assert p.chat_counts()["public"] == 1


@pytest.mark.parametrize("pii,culprit", [
    ({"actions": {"emial": "redact"}}, "emial"),
    ({"actions": {"email": "hide"}}, "hide"),
    ({"reversible": "yes"}, "reversible"),
])
def test_misspelt_pii_settings_refuse_to_start(p, pii, culprit):
    """A misspelt action must never silently let data through: the pii plugin checks its
    settings when the gateway starts, and the gateway refuses the config, naming the key."""
    err = p.factory.start_refused(privacy_config(p.ms, pii), env=keys_for(p["public"]),
                                  plugins=PLUGINS)
    assert "pipeline.settings.pii" in err and culprit in err, err
    p.untouched()


# ================================================================================================
# Logs
# ================================================================================================


def test_logs_never_contain_pii(p):
    """Every outcome (redacted, blocked, routed, refused, allowed, restored, failed) for every
    type, on every gateway flavour; then the whole stderr of every gateway is searched."""
    for flavour in FLAVOURS:
        gw = p.gw(flavour)
        for kind in KINDS:
            _, prompt, placeholder = ENTITIES[kind]
            p["public"].script(mo.text(f"echo {placeholder}"))
            for model in ("chat", "public-only") + (("guarded",) if "guard" in FLAVOURS[flavour] else ()):
                post(gw, chat_body(model, prompt))
                post(gw, chat_body(model, prompt, stream=True))
            p.reset()
    for flavour, gw in p.gws.items():
        assert gw.proc.poll() is None, f"gateway '{flavour}' died"
        stderr = gw.stderr
        assert "request" in stderr  # it did log the requests
        leaked = [v for v in ALL_VALUES if v in stderr]
        assert not leaked, f"gateway '{flavour}' logged raw PII {leaked}"
