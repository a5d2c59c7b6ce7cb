"""Every way a request can fail, as the client sees it: status, OpenAI error body, and the SDK's
exception class. Malformed requests are sent raw (httpx), since the SDK would not send them."""

from __future__ import annotations

import openai
import pytest

import mock_openai as mo
from harness import base_config, chat_body, error_body, keys_for, provider

UNSET_KEY = "FREEWAY_TEST_UNSET_KEY_ERRORS"


@pytest.fixture(scope="module")
def gw(module_mocks, module_gateways):
    a = module_mocks.add("mock-a")
    b = module_mocks.add("mock-b")
    rl = module_mocks.add("mock-rl")
    bad = module_mocks.add("mock-bad")
    cfg = base_config(
        providers={
            "mock-a": provider(a, ["gpt-a"]),
            "mock-b": provider(b, ["gpt-b"]),
            "mock-rl": provider(rl, ["gpt-rl"]),
            "mock-bad": provider(bad, ["gpt-bad"]),
            "mock-off": {"adapter": "openai-compatible", "base_url": b.base_url,
                         "api_key_env": UNSET_KEY, "models": ["gpt-off"]},
        },
        models={
            "smart": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]},
            "limited": {"targets": ["mock-rl/gpt-rl"]},
            "off-only": {"targets": ["mock-off/gpt-off"]},
            "badkey": {"targets": ["mock-bad/gpt-bad"]},
        },
    )
    env = keys_for(a, b, rl)
    env["MOCK_BAD_KEY"] = "sk-not-the-right-key"  # mock-bad answers 401
    return module_gateways.start(cfg, env=env)


@pytest.fixture(autouse=True)
def _reset(module_mocks):
    module_mocks.reset()


@pytest.fixture
def http(gw):
    with gw.http() as h:
        yield h


def no_upstream_called(module_mocks):
    called = {n: len(m.chat_requests) for n, m in module_mocks.by_name.items() if m.chat_requests}
    assert not called, f"upstreams must not be contacted, got {called}"


# -- malformed requests ---------------------------------------------------------------------------


def test_bad_json(http, module_mocks):
    r = http.post("/v1/chat/completions", content=b'{"model": "smart", "messages": [',
                  headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = error_body(r)
    assert err["type"] == "invalid_request_error"
    assert err["code"] == "invalid_json"
    no_upstream_called(module_mocks)


def test_body_not_an_object(http):
    r = http.post("/v1/chat/completions", json=["model", "smart"])
    assert r.status_code == 400
    assert error_body(r)["type"] == "invalid_request_error"


@pytest.mark.parametrize("body, param", [
    ({"model": "smart"}, "messages"),
    ({"model": "smart", "messages": "hello"}, "messages"),
    ({"model": "smart", "messages": {"role": "user", "content": "hi"}}, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": 42, "messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": ["smart"], "messages": [{"role": "user", "content": "hi"}]}, "model"),
], ids=["missing-messages", "messages-string", "messages-object", "missing-model",
        "model-number", "model-list"])
def test_invalid_fields_name_the_field(http, module_mocks, body, param):
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    err = error_body(r)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert param in err["message"], f"the message must name {param!r}: {err['message']!r}"
    no_upstream_called(module_mocks)


def test_unknown_model_404(http, module_mocks):
    r = http.post("/v1/chat/completions", json=chat_body("no-such-model"))
    assert r.status_code == 404
    err = error_body(r)
    assert err["code"] == "model_not_found"
    assert "no-such-model" in err["message"]
    no_upstream_called(module_mocks)


def test_unknown_model_of_known_provider_404(http, module_mocks):
    r = http.post("/v1/chat/completions", json=chat_body("mock-a/gpt-unlisted"))
    assert r.status_code == 404
    assert error_body(r)["code"] == "model_not_found"
    no_upstream_called(module_mocks)


def test_body_over_limit_413(http, module_mocks):
    big = chat_body("smart", "x" * 70_000)  # max_body_bytes = 65536
    r = http.post("/v1/chat/completions", json=big)
    assert r.status_code == 413
    err = error_body(r)
    assert err["code"] == "request_too_large"
    no_upstream_called(module_mocks)


def test_chunked_body_over_limit_413(http, module_mocks):
    """The limit holds for a body sent without Content-Length (chunked) too."""
    def chunks():
        yield b'{"model": "smart", "messages": [{"role": "user", "content": "'
        for _ in range(80):
            yield b"z" * 1000
        yield b'"}]}'
    r = http.post("/v1/chat/completions", content=chunks(),
                  headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert error_body(r)["code"] == "request_too_large"
    no_upstream_called(module_mocks)


def test_body_just_under_limit_is_served(http, module_mocks):
    body = chat_body("smart", "y" * 60_000)
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert module_mocks["mock-a"].last().json["messages"][0]["content"] == "y" * 60_000


@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/chat/completions"),
    ("PUT", "/v1/chat/completions"),
    ("DELETE", "/v1/chat/completions"),
    ("POST", "/v1/models"),
])
def test_wrong_method_405(http, method, path):
    r = http.request(method, path)
    assert r.status_code == 405
    error_body(r)


@pytest.mark.parametrize("path", ["/v1/nope", "/v2/chat/completions", "/v1/completions/x", "/"])
def test_unknown_path_404(http, path):
    r = http.get(path)
    assert r.status_code == 404
    error_body(r)


# -- upstream refusals ----------------------------------------------------------------------------


def test_upstream_400_passed_through_without_failover(http, module_mocks):
    module_mocks["mock-a"].script(mo.bad_request(
        "Invalid value for 'temperature': expected a number between 0 and 2, got 7.",
        param="temperature", code="invalid_value"))
    r = http.post("/v1/chat/completions", json=chat_body("smart", temperature=7))
    assert r.status_code == 400
    err = error_body(r)
    assert "Invalid value for 'temperature'" in err["message"]
    assert module_mocks["mock-b"].chat_requests == [], "a 400 is the client's fault: no failover"


def test_upstream_context_length_passed_through(gw, module_mocks):
    module_mocks["mock-a"].script(mo.context_length_exceeded())
    with pytest.raises(openai.BadRequestError) as e:
        gw.client().chat.completions.create(**chat_body("smart", "very long prompt"))
    assert e.value.status_code == 400
    assert "maximum context length" in e.value.message
    assert module_mocks["mock-b"].chat_requests == []


def test_upstream_content_filter_passed_through(http, module_mocks):
    module_mocks["mock-a"].script(mo.bad_request(
        "The response was filtered due to the prompt triggering content management policy.",
        param="prompt", code="content_filter"))
    r = http.post("/v1/chat/completions", json=chat_body("smart"))
    assert r.status_code == 400
    assert "content management policy" in error_body(r)["message"]
    assert module_mocks["mock-b"].chat_requests == []


def test_upstream_422_passed_through(http, module_mocks):
    module_mocks["mock-a"].script(mo.error(422, mo.openai_error(
        "Unprocessable: 'messages.0.content' is invalid", "invalid_request_error")))
    r = http.post("/v1/chat/completions", json=chat_body("smart"))
    assert r.status_code == 422
    assert "messages.0.content" in error_body(r)["message"]
    assert module_mocks["mock-b"].chat_requests == []


def test_disabled_provider_503_names_variable(http, module_mocks):
    for model, stream in (("mock-off/gpt-off", False), ("off-only", False), ("off-only", True)):
        r = http.post("/v1/chat/completions", json=chat_body(model, stream=stream))
        assert r.status_code == 503, (model, r.text)
        err = error_body(r)
        assert err["code"] == "no_available_target"
        assert "mock-off" in err["message"] and UNSET_KEY in err["message"], err["message"]
    no_upstream_called(module_mocks)


def test_wrong_upstream_key_gives_502(http, module_mocks):
    r = http.post("/v1/chat/completions", json=chat_body("badkey"))
    assert r.status_code == 502
    err = error_body(r)
    assert err["code"] == "upstream_error"
    # The upstream saw the configured (wrong) key and the gateway did not leak it to the client.
    assert module_mocks["mock-bad"].last().authorization == "Bearer sk-not-the-right-key"
    assert "sk-not-the-right-key" not in r.text


# -- the SDK's exception classes ------------------------------------------------------------------


def test_sdk_not_found_error(gw):
    with pytest.raises(openai.NotFoundError) as e:
        gw.client().chat.completions.create(**chat_body("gpt-imaginary"))
    assert e.value.status_code == 404
    assert e.value.code == "model_not_found"
    assert "gpt-imaginary" in e.value.message


def test_sdk_bad_request_error_for_upstream_400(gw, module_mocks):
    module_mocks["mock-a"].script(mo.bad_request("'stop' must contain at most 4 items", param="stop"))
    with pytest.raises(openai.BadRequestError) as e:
        gw.client().chat.completions.create(**chat_body("smart"), stop=["a", "b", "c", "d", "e"])
    assert "'stop' must contain at most 4 items" in e.value.message


def test_sdk_bad_request_error_for_invalid_messages(gw):
    with pytest.raises(openai.BadRequestError) as e:
        gw.client().chat.completions.create(model="smart", messages="not a list")  # type: ignore[arg-type]
    assert e.value.param == "messages"


def test_sdk_rate_limit_error_with_retry_after(gw, module_mocks):
    module_mocks["mock-rl"].script(mo.rate_limited(7, model="gpt-rl"))
    with pytest.raises(openai.RateLimitError) as e:
        gw.client().chat.completions.create(**chat_body("limited"))
    assert e.value.status_code == 429
    retry_after = int(e.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 7, retry_after
    body = e.value.body
    assert isinstance(body, dict) and body.get("message"), body
