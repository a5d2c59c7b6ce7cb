"""The logging policy, through the real gateway: a request's text reaches the log only where the
operator allowed it (`log_content` of the serving provider, or of the public model), and only
as the provider saw it (after filters redacted it); every request logs its sizes and counts.

Providers of the module's gateway:
- `open`: `log_content = "all"`; `quiet`: the default (nothing); `prompts`: prompts only;
- `vault`: trusted for sensitive data, `log_content = "all"`.
The gateway logs JSON lines (`FREEWAY_LOG_FORMAT=json`), so each test reads fields, not text.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Optional

import pytest

import mock_openai as mo
from harness import BUNDLED, FILTERS, Gateway, base_config, chat_body, keys_for, poll, provider

PLUGINS = BUNDLED + FILTERS
EMAIL = "jane.doe@example.org"
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def ms(module_mocks) -> dict[str, mo.MockOpenAI]:
    return {name: module_mocks.add(name) for name in ("open", "quiet", "prompts", "vault")}


@pytest.fixture(scope="module")
def gw(ms, module_gateways) -> Gateway:
    cfg = base_config(
        providers={
            "open": provider(ms["open"], ["m-open"], log_content="all"),
            "quiet": provider(ms["quiet"], ["m-quiet"]),
            "prompts": provider(ms["prompts"], ["m-prompts"], log_content="prompts"),
            "vault": provider(ms["vault"], ["m-vault"], trusted=True, log_content="all"),
        },
        models={
            "open": {"targets": ["open/m-open"]},
            "quiet": {"targets": ["quiet/m-quiet"]},
            "prompts-only": {"targets": ["prompts/m-prompts"]},
            # The model's own setting wins over the provider's, both ways.
            "muted": {"targets": ["open/m-open"], "log_content": "none"},
            "loud": {"targets": ["quiet/m-quiet"], "log_content": "answers"},
            # The serving provider's policy applies, not the one that failed first.
            "failover": {"targets": ["open/m-open", "quiet/m-quiet"]},
            "redacted": {"targets": ["open/m-open"], "filters": ["pii"]},
            "vault": {"targets": ["vault/m-vault"]},
        },
        admin={"listen": "127.0.0.1:0"},
    )
    cfg["pipeline"]["settings"] = {"pii": {"reversible": True}}
    env = {**keys_for(*ms.values()), "FREEWAY_LOG_FORMAT": "json"}
    return module_gateways.start(cfg, env=env, plugins=PLUGINS)


@pytest.fixture
def m(ms, gw) -> dict[str, mo.MockOpenAI]:
    for mock in ms.values():
        mock.reset()
    return ms


def log_events(gw: Gateway, since: int) -> list[dict[str, Any]]:
    events = []
    for line in gw.stderr_since(since).splitlines():
        try:
            events.append(json.loads(line)["fields"])
        except (ValueError, KeyError, TypeError):
            continue
    return events


def ask(gw: Gateway, model: str, prompt: str, *, stream: bool = False,
        headers: Optional[dict[str, str]] = None) -> tuple[str, str, list[dict[str, Any]]]:
    """Send one request; return (request id, answer text, its log events once it is served)."""
    request_id = f"content-log-{next(_ids)}"
    mark = gw.log_mark()
    client = gw.client(default_headers={"x-request-id": request_id, **(headers or {})})
    if stream:
        chunks = client.chat.completions.create(**chat_body(model, prompt), stream=True)
        answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = client.chat.completions.create(**chat_body(model, prompt)).choices[0].message.content

    def served() -> list[dict[str, Any]]:
        mine = [e for e in log_events(gw, mark) if e.get("request_id") == request_id]
        done = any(e.get("message") in ("request served", "stream served") for e in mine)
        return mine if done else []

    return request_id, answer, poll(served, what=f"the log line of {request_id}")


def content(events: list[dict[str, Any]]) -> dict[str, str]:
    """part -> logged text (the gateway Debug-quotes it, so it arrives as a JSON string)."""
    return {e["part"]: json.loads(e["text"]) for e in events if e.get("message") == "content"}


def served(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in events if e.get("message") in ("request served", "stream served"))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_by_default_only_sizes_and_counts_are_logged(gw, m, stream):
    m["quiet"].script(mo.text("the quiet answer", pieces=["the quiet", " answer"]))
    _, answer, events = ask(gw, "quiet", "a quiet prompt", stream=stream)
    assert answer == "the quiet answer"
    assert content(events) == {}
    line = served(events)
    assert line["messages"] == 1 and line["prompt_bytes"] > len("a quiet prompt")
    assert line["answer_bytes"] > len("the quiet answer")
    assert "quiet prompt" not in gw.stderr and "the quiet answer" not in gw.stderr


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_provider_that_allows_it_logs_prompt_and_answer(gw, m, stream):
    m["open"].script(mo.text("an open answer", pieces=["an ", "open", " answer"]))
    _, _, events = ask(gw, "open", "an open prompt", stream=stream)
    logged = content(events)
    assert set(logged) == {"prompt", "answer"}
    # The prompt as the gateway forwarded it (before the adapter's translation).
    assert json.loads(logged["prompt"])["messages"] == m["open"].last().json["messages"]
    assert "an open answer" in logged["answer"]
    if stream:
        assert logged["answer"] == "an open answer"


def test_prompts_only_keeps_answers_out(gw, m):
    m["prompts"].script(mo.text("a private answer"))
    _, _, events = ask(gw, "prompts-only", "a loggable prompt")
    logged = content(events)
    assert set(logged) == {"prompt"} and "a loggable prompt" in logged["prompt"]
    assert "a private answer" not in gw.stderr


def test_the_public_model_overrides_the_provider(gw, m):
    m["open"].script(mo.text("muted answer"))
    _, _, events = ask(gw, "muted", "muted prompt")
    assert content(events) == {}
    m["quiet"].script(mo.text("loud answer"))
    _, _, events = ask(gw, "loud", "loud prompt")
    assert set(content(events)) == {"answer"}
    assert "loud answer" in content(events)["answer"] and "loud prompt" not in gw.stderr


def test_the_serving_providers_policy_applies_after_failover(gw, m):
    m["open"].script(mo.server_error(503))
    m["quiet"].script(mo.text("served quietly"))
    _, answer, events = ask(gw, "failover", "failover prompt")
    assert answer == "served quietly" and len(m["open"].chat_requests) == 1
    assert content(events) == {}
    assert "failover prompt" not in gw.stderr


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_logged_text_is_what_the_provider_saw_after_redaction(gw, m, stream):
    """pii redacts the prompt before it is logged, and the answer is logged before the
    pseudonym is restored: the e-mail never reaches the log, though the client reads it."""
    m["open"].script(mo.text("I wrote to [EMAIL_1].", pieces=["I wrote to [EM", "AIL_1]."]))
    _, answer, events = ask(gw, "redacted", f"write to {EMAIL}", stream=stream)
    assert answer == f"I wrote to {EMAIL}."
    logged = content(events)
    assert "write to [EMAIL_1]" in logged["prompt"]
    assert "I wrote to [EMAIL_1]." in logged["answer"]
    assert EMAIL not in gw.stderr


@pytest.mark.parametrize("how", ["header", "metadata"])
def test_requests_marked_sensitive_are_never_logged(gw, m, how):
    m["vault"].script(mo.text(f"sealed answer by {how}"))
    mark = gw.log_mark()
    prompt = f"sealed prompt by {how}"
    if how == "header":
        _, _, events = ask(gw, "vault", prompt, headers={"x-freeway-tags": "sensitive"})
    else:
        request_id = f"content-log-{next(_ids)}"
        gw.client(default_headers={"x-request-id": request_id}).chat.completions.create(
            **chat_body("vault", prompt), metadata={"sensitive": "true"})
        events = poll(lambda: [e for e in log_events(gw, mark)
                               if e.get("request_id") == request_id
                               and e.get("message") == "request served"], what="served line")
    assert content(events) == {}
    said = gw.stderr_since(mark)
    assert "sealed prompt" not in said and "sealed answer" not in said
    # Without the mark the same provider logs (so the test above could fail).
    m["vault"].script(mo.text("open answer"))
    _, _, events = ask(gw, "vault", "an unmarked vault prompt")
    assert "an unmarked vault prompt" in content(events)["prompt"]


def test_the_admin_view_shows_the_policy(gw, m):
    with gw.admin() as h:
        config = h.get("/admin/config").json()["config"]
    assert config["providers"]["open"]["log_content"] == "all"
    assert config["providers"]["quiet"]["log_content"] == "none"
    assert config["models"]["muted"]["log_content"] == "none"
    assert config["models"]["open"]["log_content"] is None  # the provider's applies


def test_a_bad_log_content_value_is_refused(m, module_gateways):
    cfg = base_config(providers={"open": provider(m["open"], ["m-open"], log_content="yes")},
                      models={"open": {"targets": ["open/m-open"]}})
    err = module_gateways.start_refused(cfg, env=keys_for(m["open"]))
    assert "providers.open.log_content" in err, err
