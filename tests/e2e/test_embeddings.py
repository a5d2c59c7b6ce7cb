"""`POST /v1/embeddings` through the real gateway with the official `openai` SDK
(`client.embeddings.create`, which asks for base64 unless told otherwise) against the
wire-faithful OpenAI and Gemini mocks (`mock_embeddings`): floats and base64, list inputs batched
into one upstream call, `dimensions`, failover, adapters that cannot embed skipped (400
`unsupported_request` when none can), request filters on the input text, and usage and cost in
the ledger and metrics. One gateway serves the whole module."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import mock_anthropic as ma
import mock_gemini as mg
import mock_openai as mo
from harness import (ADAPTERS, BUNDLED, FREEWAY_BIN, PLUGINS_DIR, STORE_NAME, base_config,
                     db_rows, poll, sample_sum, scrape)
from mock_embeddings import vector

SMALL = "text-embedding-3-small"
GEM = "gemini-embedding-001"
OAI_PRICE = 0.02  # USD per million input tokens
GEM_PRICE = 0.15


@pytest.fixture(scope="module")
def world(module_mocks, module_gateways) -> dict[str, Any]:
    oai = module_mocks.adopt(mo.MockOpenAI("oai", "sk-oai").start())
    oai2 = module_mocks.adopt(mo.MockOpenAI("oai2", "sk-oai2").start())
    gem = module_mocks.adopt(mg.MockGemini("gem", "AIza-e").start())
    claude = module_mocks.adopt(ma.MockAnthropic("claude", "sk-ant-e").start())
    embedding = {"dimensions": 1536, "context_window": 8192, "input_price": OAI_PRICE,
                 "output_price": 0}
    cfg = base_config(
        admin={"listen": "127.0.0.1:0"},
        store={"path": STORE_NAME},
        providers={
            "oai": {"adapter": "openai-compatible", "base_url": oai.base_url,
                    "api_key_env": "OAI_KEY", "models": {SMALL: embedding}},
            "oai2": {"adapter": "openai-compatible", "base_url": oai2.base_url,
                     "api_key_env": "OAI2_KEY", "models": {SMALL: embedding}},
            "gem": {"adapter": "gemini", "base_url": gem.base_url, "api_key_env": "GEM_KEY",
                    "models": {GEM: {"dimensions": 3072, "context_window": 2048,
                                     "input_price": GEM_PRICE, "output_price": 0},
                               "gemini-2.5-flash": {"context_window": 1048576}}},
            "claude": {"adapter": "anthropic", "base_url": claude.base_url,
                       "api_key_env": "CLAUDE_KEY", "models": ["claude-sonnet-4-5"]}},
        models={"embed": {"targets": [f"oai/{SMALL}", f"oai2/{SMALL}"]},
                "gembed": {"targets": [f"gem/{GEM}"]},
                "mixed": {"targets": ["claude/claude-sonnet-4-5", "gem/gemini-2.5-flash",
                                      f"gem/{GEM}"]},
                "claude": {"targets": ["claude/claude-sonnet-4-5"]},
                "safe-embed": {"targets": [f"oai/{SMALL}"], "filters": ["pii"]}})
    gw = module_gateways.start(
        cfg, env={"OAI_KEY": "sk-oai", "OAI2_KEY": "sk-oai2", "GEM_KEY": "AIza-e",
                  "CLAUDE_KEY": "sk-ant-e"},
        plugins=BUNDLED + ADAPTERS + ("pii",))
    return {"gw": gw, "oai": oai, "oai2": oai2, "gem": gem, "claude": claude}


@pytest.fixture(autouse=True)
def _reset(module_mocks):
    module_mocks.reset()


def embeddings_of(world) -> Any:
    return world["gw"].client().embeddings


def close(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(abs(a - b) < 1e-6 for a, b in zip(got, want))


def post(world, body: dict[str, Any]) -> httpx.Response:
    with world["gw"].http() as c:
        return c.post("/v1/embeddings", json=body)


# =============================================================================================
# The SDK's own encodings, list inputs, dimensions
# =============================================================================================


def test_the_sdk_default_base64_and_float_give_the_upstream_vectors(world):
    # The SDK asks for base64 and decodes it itself; the gateway asked the upstream for floats.
    answer = embeddings_of(world).create(model="embed", input="The food was delicious")
    assert close(answer.data[0].embedding, vector("The food was delicious", 1536))
    assert answer.usage.prompt_tokens == len("The food was delicious") // 4
    sent = world["oai"].requests[-1]
    assert sent.path == "/v1/embeddings"
    assert sent.json["model"] == SMALL and sent.json["encoding_format"] == "float"

    floats = embeddings_of(world).create(model="embed", input="x" * 40, encoding_format="float")
    assert close(floats.data[0].embedding, vector("x" * 40, 1536))
    raw = post(world, {"model": "embed", "input": "abc", "encoding_format": "base64"})
    assert raw.status_code == 200 and isinstance(raw.json()["data"][0]["embedding"], str)
    assert raw.headers["x-freeway-provider"] == "oai"


def test_a_list_is_one_upstream_call_in_input_order_with_its_dimensions(world):
    texts = ["first", "second one", "third"]
    answer = embeddings_of(world).create(model="embed", input=texts, dimensions=256)
    assert [d.index for d in answer.data] == [0, 1, 2]
    for item, text in zip(answer.data, texts):
        assert close(item.embedding, vector(text, 256))
    assert len(world["oai"].requests) == 1
    assert world["oai"].requests[0].json["input"] == texts
    assert world["oai"].requests[0].json["dimensions"] == 256


def test_gemini_single_is_embed_content_and_a_list_is_one_batch(world):
    one = embeddings_of(world).create(model="gembed", input="hello", dimensions=768)
    assert close(one.data[0].embedding, vector("hello", 768))
    texts = [f"text {i}" for i in range(5)]
    many = embeddings_of(world).create(model="gembed", input=texts)
    assert [len(d.embedding) for d in many.data] == [3072] * 5
    assert close(many.data[4].embedding, vector("text 4", 3072))
    calls = world["gem"].requests
    assert [c.path.rsplit(":", 1)[-1] for c in calls] == ["embedContent", "batchEmbedContents"]
    assert calls[0].json["outputDimensionality"] == 768
    assert [r["content"]["parts"][0]["text"] for r in calls[1].json["requests"]] == texts
    assert {r["model"] for r in calls[1].json["requests"]} == {f"models/{GEM}"}
    assert "x-goog-api-key" in calls[1].headers


# =============================================================================================
# Routing, failover and incapability
# =============================================================================================


def test_a_failing_target_fails_over_to_the_next(world):
    world["oai"].script(mo.server_error())
    raw = embeddings_of(world).with_raw_response.create(model="embed", input=["a", "b"])
    assert raw.headers["x-freeway-provider"] == "oai2"
    assert raw.headers["x-freeway-attempts"] == "2"
    assert len(raw.parse().data) == 2


def test_targets_that_cannot_embed_are_skipped_and_none_is_a_400(world):
    served = embeddings_of(world).with_raw_response.create(model="mixed", input="hi")
    assert served.headers["x-freeway-model"] == GEM
    route = served.headers["x-freeway-route"]
    assert "adapter 'anthropic' cannot create embeddings" in route, route
    assert "not an embedding model" in route, route

    with pytest.raises(openai.BadRequestError) as refused:
        embeddings_of(world).create(model="claude", input="hi")
    assert refused.value.code == "unsupported_request"
    assert "cannot create embeddings" in refused.value.message
    assert world["claude"].requests == []
    # And the other way: an embedding model does not chat.
    world["gem"].reset()
    with pytest.raises(openai.BadRequestError) as chat:
        world["gw"].client().chat.completions.create(
            model="gembed", messages=[{"role": "user", "content": "hi"}])
    assert chat.value.code == "unsupported_request"
    assert world["gem"].requests == []


def test_what_gemini_cannot_take_is_refused_before_any_call(world):
    with pytest.raises(openai.BadRequestError) as tokens:
        embeddings_of(world).create(model="gembed", input=[[1, 2, 3]])
    assert tokens.value.code == "unsupported_request" and "token" in tokens.value.message
    with pytest.raises(openai.BadRequestError) as batch:
        embeddings_of(world).create(model="gembed", input=["a"] * 101)
    assert "at most 100" in batch.value.message
    assert world["gem"].requests == []
    # The OpenAI-compatible upstream takes token ids.
    assert len(embeddings_of(world).create(model="embed", input=[[1, 2], [3]]).data) == 2


@pytest.mark.parametrize("body,param", [
    ({"model": "embed"}, "input"),
    ({"model": "embed", "input": ""}, "input"),
    ({"model": "embed", "input": []}, "input"),
    ({"model": "embed", "input": ["ok", ""]}, "input[1]"),
    ({"model": "embed", "input": "hi", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "embed", "input": "hi", "dimensions": -3}, "dimensions"),
])
def test_bad_requests_are_refused_in_openais_shape(world, body, param):
    r = post(world, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param, r.text
    assert world["oai"].requests == []


def test_an_upstream_refusal_reaches_the_client_as_its_own_400(world):
    world["oai"].script(mo.error(400, mo.openai_error(
        "This model does not support specifying dimensions.", "invalid_request_error")))
    with pytest.raises(openai.BadRequestError) as refused:
        embeddings_of(world).create(model="embed", input="hi", dimensions=8)
    assert "does not support specifying dimensions" in refused.value.message
    assert world["oai2"].requests == []


# =============================================================================================
# Filters, ledger, metrics
# =============================================================================================


def test_request_filters_judge_the_input_text(world):
    embeddings_of(world).create(model="safe-embed",
                                input=["write to jane@example.org", "nothing here"])
    sent = world["oai"].requests[-1].json["input"]
    assert "jane@example.org" not in sent[0] and sent[0].startswith("write to ")
    assert sent[1] == "nothing here"
    with pytest.raises(openai.BadRequestError) as blocked:
        embeddings_of(world).create(model="safe-embed",
                                    input="key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w")
    assert blocked.value.code == "blocked_by_filter"
    with pytest.raises(openai.BadRequestError) as tokens:
        embeddings_of(world).create(model="safe-embed", input=[1, 2, 3])
    assert tokens.value.code == "unsupported_request" and "filters" in tokens.value.message
    assert len(world["oai"].requests) == 1


def test_usage_and_cost_reach_the_ledger_and_metrics(world):
    gw = world["gw"]
    raw = embeddings_of(world).with_raw_response.create(model="embed", input=["a" * 40, "b" * 80])
    oai_id = raw.headers["x-request-id"]
    gem = embeddings_of(world).with_raw_response.create(model="gembed", input="c" * 400)
    gem_id = gem.headers["x-request-id"]
    db = gw.config_path.parent / STORE_NAME

    def rows():
        found = db_rows(db, "SELECT * FROM ledger WHERE request_id IN (?, ?)", (oai_id, gem_id))
        return {r["request_id"]: r for r in found} if len(found) == 2 else None

    by_id = poll(rows, timeout=10, interval=0.1, what="ledger rows of both requests")
    assert by_id[oai_id]["prompt_tokens"] == 30 and by_id[oai_id]["completion_tokens"] == 0
    assert abs(by_id[oai_id]["cost_usd"] - 30 * OAI_PRICE / 1e6) < 1e-12
    # Gemini does not count embedded tokens: the gateway's estimate (characters / 4) is used.
    assert by_id[gem_id]["prompt_tokens"] == 100
    assert abs(by_id[gem_id]["cost_usd"] - 100 * GEM_PRICE / 1e6) < 1e-12
    with gw.admin() as a:
        samples = scrape(a.get("/metrics").text)
    assert sample_sum(samples, "freeway_embedding_inputs_total", model="embed") >= 2
    assert sample_sum(samples, "freeway_tokens_total", model="gembed", kind="prompt") >= 100


# =============================================================================================
# The contract: embedder is optional, and 0.2.0 builds still load
# =============================================================================================


@pytest.mark.parametrize("plugin,embeds", [("gemini", "yes"), ("anthropic", "no")])
@pytest.mark.parametrize("contract", ["0.2.1", "0.2.0"])
def test_plugin_check_says_whether_an_adapter_embeds_on_either_contract(tmp_path: Path, plugin,
                                                                        embeds, contract):
    """The bundled build, and the same build relabelled as one made for 0.2.0 (before the
    embedder existed): both load on this gateway, and the embedder is found across the line."""
    wasm = tmp_path / f"{plugin}.wasm"
    wasm.write_bytes(re.sub(rb"(freeway:plugin/[a-z-]+)@0\.2\.1",
                            rb"\1@" + contract.encode(), (PLUGINS_DIR / f"{plugin}.wasm").read_bytes()))
    done = subprocess.run([str(FREEWAY_BIN), "plugin", "check", str(wasm)], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"contract:    freeway:plugin@{contract} (this gateway speaks 0.2.1)" in done.stdout
    assert f"embeddings:  {embeds}" in done.stdout, done.stdout
