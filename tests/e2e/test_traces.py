"""OTLP trace export: with `telemetry.otlp_endpoint` set, every request becomes one span with a
child per upstream attempt, posted as OTLP/HTTP protobuf to a collector — here a stub on
127.0.0.1:0 that decodes what it receives with the official `opentelemetry-proto` messages. The
spans carry the GenAI semantic-convention attributes a tool such as Langfuse reads.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import mock_openai as mo
from harness import base_config, chat_body, keys_for, poll, priced


class Collector:
    """An OTLP/HTTP traces endpoint: records each export's headers and decoded spans."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.resources: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.headers.append({k.lower(): v for k, v in self.headers.items()})
                for rs in request.resource_spans:
                    collector.resources.append(attrs(rs.resource.attributes))
                    for ss in rs.scope_spans:
                        collector.spans.extend(ss.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def stop(self) -> None:
        self.server.shutdown()

    def request_spans(self) -> list[Any]:
        return [s for s in self.spans if not s.parent_span_id]


def value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind)


def attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs}


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.stop()


@pytest.fixture
def traced(mocks, gateways, collector):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    cfg = base_config(
        telemetry={"otlp_endpoint": collector.url, "service_name": "freeway-test",
                   "headers": {"authorization": "Basic dGVzdDp0ZXN0"}},
        providers={"mock-a": priced(a, "gpt-a", input_price=3.0, output_price=15.0),
                   "mock-b": priced(b, "gpt-b", input_price=1.0, output_price=2.0)},
        models={"m": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}})
    gw = gateways.start(cfg, env=keys_for(a, b))
    return gw, a, b


def test_a_request_is_one_span_with_genai_attributes(traced, collector):
    gw, a, _ = traced
    client = gw.client()
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                   extra_headers={"x-request-id": "trace-json"})
    span = poll(lambda: next((s for s in collector.request_spans()
                              if attrs(s.attributes).get("freeway.request_id") == "trace-json"),
                             None), timeout=10, what="the request's span at the collector")
    got = attrs(span.attributes)
    assert got["gen_ai.operation.name"] == "chat"
    assert got["gen_ai.request.model"] == "m"
    assert got["gen_ai.provider.name"] == "mock-a"
    assert got["gen_ai.response.model"] == "gpt-a"
    assert got["gen_ai.usage.input_tokens"] == 11
    assert got["gen_ai.usage.output_tokens"] == 7
    assert got["gen_ai.response.finish_reasons"] == ["stop"]
    assert got["http.response.status_code"] == 200
    assert "error.type" not in got
    assert span.end_time_unix_nano > span.start_time_unix_nano > 0
    children = [s for s in collector.spans if s.parent_span_id == span.span_id]
    assert len(children) == 1 and children[0].trace_id == span.trace_id
    assert attrs(children[0].attributes)["gen_ai.provider.name"] == "mock-a"
    assert collector.resources[0]["service.name"] == "freeway-test"
    assert collector.headers[0]["authorization"] == "Basic dGVzdDp0ZXN0"
    assert collector.headers[0]["content-type"] == "application/x-protobuf"


def test_failover_is_a_child_span_per_attempt_and_errors_carry_their_type(traced, collector):
    gw, a, b = traced
    a.script(mo.error(429, mo.openai_error("slow down", "requests", code="rate_limit_exceeded"),
                      headers={"retry-after": "30"}))
    with gw.http() as c:
        r = c.post("/v1/chat/completions", json=chat_body("m"),
                   headers={"x-request-id": "trace-failover"})
    assert r.status_code == 200 and r.headers["x-freeway-provider"] == "mock-b"

    def mine():
        return next((s for s in collector.request_spans()
                     if attrs(s.attributes).get("freeway.request_id") == "trace-failover"), None)
    span = poll(mine, timeout=10, what="the failover request's span")
    children = sorted((s for s in collector.spans if s.parent_span_id == span.span_id),
                      key=lambda s: s.start_time_unix_nano)
    assert [attrs(c.attributes)["gen_ai.provider.name"] for c in children] == ["mock-a", "mock-b"]
    assert attrs(children[0].attributes)["error.type"] == "rate-limited"
    assert children[0].status.code == 2  # STATUS_CODE_ERROR
    assert "error.type" not in attrs(children[1].attributes)
    assert attrs(span.attributes)["freeway.attempts"] == 2

    # A request that fails is traced too, its error type on the span.
    with gw.http() as c:
        r = c.post("/v1/chat/completions", json=chat_body("nope"),
                   headers={"x-request-id": "trace-404"})
    assert r.status_code == 404
    failed = poll(lambda: next((s for s in collector.request_spans()
                                if attrs(s.attributes).get("freeway.request_id") == "trace-404"),
                               None), timeout=10, what="the failed request's span")
    assert attrs(failed.attributes)["error.type"] == "model_not_found"
    assert failed.status.code == 2


def test_streams_are_traced_with_usage_and_finish_reason(traced, collector):
    gw, _, _ = traced
    chunks = list(gw.client().chat.completions.create(
        model="m", messages=[{"role": "user", "content": "stream"}], stream=True,
        stream_options={"include_usage": True}, extra_headers={"x-request-id": "trace-stream"}))
    assert chunks
    span = poll(lambda: next((s for s in collector.request_spans()
                              if attrs(s.attributes).get("freeway.request_id") == "trace-stream"),
                             None), timeout=10, what="the stream's span")
    got = attrs(span.attributes)
    assert got["gen_ai.usage.output_tokens"] == 7
    assert got["gen_ai.response.finish_reasons"] == ["stop"]


def test_a_collector_that_is_down_costs_no_request(mocks, gateways):
    a = mocks.add("mock-a")
    cfg = base_config(telemetry={"otlp_endpoint": "http://127.0.0.1:9/v1/traces"},
                      providers={"mock-a": priced(a, "gpt-a", input_price=1.0, output_price=1.0)},
                      models={"m": {"targets": ["mock-a/gpt-a"]}})
    gw = gateways.start(cfg, env=keys_for(a))
    with gw.http() as c:
        for _ in range(5):
            assert c.post("/v1/chat/completions", json=chat_body("m")).status_code == 200
    gw.wait_for_log("cannot export traces", timeout=10)


def test_a_bad_endpoint_is_refused_at_start(gateways):
    err = gateways.start_refused(base_config(telemetry={"otlp_endpoint": "udp://collector:4318"},
                                             providers={}, models={}))
    assert "telemetry.otlp_endpoint" in err
