"""The official `openai` Node SDK (npm `openai`, pinned in tests/node/package.json and installed
by `make test` with `npm ci`) through the real gateway: chat plain, streamed and a tool round
trip, the Responses API plain and with its streaming helper, embeddings in the SDK's default
base64 and in floats, and an error. `tests/node/sdk_client.mjs` runs one scenario per call and
prints what the SDK returned; the mock upstream records what reached it."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

import mock_openai as mo
from harness import REPO, base_config
from mock_embeddings import vector

NODE_DIR = REPO / "tests/node"
NODE = shutil.which("node")


@pytest.fixture(scope="module")
def world(module_mocks, module_gateways) -> dict[str, Any]:
    if NODE is None:
        pytest.fail("node is not installed (Node 18+ is needed, as for the JS plugins)")
    if not (NODE_DIR / "node_modules/openai/package.json").is_file():
        pytest.fail("the openai Node SDK is not installed: run `make node-sdk` (make test does)")
    up = module_mocks.adopt(mo.MockOpenAI("up", "sk-up").start())
    cfg = base_config(
        providers={"up": {"adapter": "openai-compatible", "base_url": up.base_url,
                          "api_key_env": "UP_KEY",
                          "models": {"gpt-4o-mini": {"context_window": 128000},
                                     "text-embedding-3-small": {"dimensions": 1536}}}},
        models={"smart": {"targets": ["up/gpt-4o-mini"]},
                "embed": {"targets": ["up/text-embedding-3-small"]}})
    gw = module_gateways.start(cfg, env={"UP_KEY": "sk-up"})
    return {"gw": gw, "up": up}


@pytest.fixture(autouse=True)
def _reset(module_mocks):
    module_mocks.reset()


def node(world, scenario: str, model: str = "smart") -> dict[str, Any]:
    done = subprocess.run([NODE, "sdk_client.mjs", world["gw"].base_url, scenario, model],
                          cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"node {scenario} failed:\n{done.stderr}"
    return json.loads(done.stdout)


def test_chat_plain_and_streamed(world):
    world["up"].script(mo.text("Hello from the mock"))
    plain = node(world, "chat")
    assert plain["content"] == "Hello from the mock"
    assert plain["usage"]["prompt_tokens"] == 11
    world["up"].script(mo.text("one two three", pieces=["one ", "two ", "three"]))
    streamed = node(world, "chat-stream")
    assert streamed["content"] == "one two three"
    assert streamed["usage"]["completion_tokens"] == 7
    assert world["up"].chat_requests[-1].json["stream"] is True


def test_a_tool_round_trip(world):
    world["up"].script(mo.tool_call("get_weather", '{"city": "Paris"}'),
                       mo.text("It is 18 C and sunny in Paris"))
    result = node(world, "tools")
    assert result["finish_reason"] == "tool_calls"
    assert (result["name"], result["arguments"]) == ("get_weather", {"city": "Paris"})
    assert result["answer"] == "It is 18 C and sunny in Paris"
    second = world["up"].chat_requests[-1].json["messages"]
    assert second[-1] == {"role": "tool", "tool_call_id": second[1]["tool_calls"][0]["id"],
                          "content": "18 C and sunny"}


def test_responses_plain_and_with_the_streaming_helper(world):
    world["up"].script(mo.text("Hello there"))
    plain = node(world, "responses")
    assert (plain["status"], plain["text"]) == ("completed", "Hello there")
    sent = world["up"].chat_requests[-1].json["messages"]
    assert sent[0]["content"] == "Be brief" and sent[-1]["content"] == "Say hello"
    world["up"].script(mo.text("Hi again", pieces=["Hi ", "again"]))
    streamed = node(world, "responses-stream")
    assert streamed["text"] == streamed["deltas"] == "Hi again"
    assert streamed["status"] == "completed"
    types = streamed["types"]
    assert types[0] == "response.created" and types[-1] == "response.completed", types
    assert types.count("response.output_text.delta") == 2, types


def test_embeddings_in_base64_and_floats(world):
    result = node(world, "embeddings", "embed")
    for encoding in ("base64", "float"):
        vectors = result[encoding]
        assert len(vectors) == 2 and len(vectors[0]) == 1536
        for got, text in zip(vectors, ["first text", "second text"]):
            assert all(abs(a - b) < 1e-6 for a, b in zip(got, vector(text, 1536))), encoding
    assert result["usage"]["prompt_tokens"] > 0
    assert {r.json["encoding_format"] for r in world["up"].requests} == {"float"}


def test_errors_are_the_sdks_typed_errors(world):
    result = node(world, "error")
    assert result["thrown"] and result["class"] == "NotFoundError", result
    assert (result["status"], result["code"]) == (404, "model_not_found")
    assert "no-such-model" in result["message"]
