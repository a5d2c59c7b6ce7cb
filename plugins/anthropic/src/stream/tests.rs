use super::*;
use freeway_plugin_sdk::stream::{StreamDecoder, fixtures};
use serde_json::json;

fn new_decoder(model: &str, created: u64) -> StreamDecoder<Translator> {
    StreamDecoder::new(Translator::new(model, created))
}

const CREATED: u64 = 1_730_000_000;

/// A text answer as the Messages streaming reference shows it.
const TEXT_STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hé\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"llo 👋\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/// Text, a thinking block, then two tool calls (block indexes 2 and 3, tool indexes 0, 1).
const TOOL_STREAM: &str = "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2},\"content\":[],\"stop_reason\":null}}\r\n\r\nevent: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\r\n\r\nevent: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Weather needed.\"}}\r\n\r\nevent: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\r\n\r\nevent: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\nevent: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n\r\nevent: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking.\"}}\r\n\r\nevent: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":1}\r\n\r\nevent: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\r\n\r\nevent: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\r\n\r\nevent: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\r\n\r\nevent: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"Paris\\\"}\"}}\r\n\r\nevent: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":2}\r\n\r\nevent: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_02\",\"name\":\"get_time\",\"input\":{}}}\r\n\r\nevent: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\r\n\r\nevent: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":3}\r\n\r\nevent: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\r\n\r\nevent: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";

fn decode_in_pieces(body: &str, size: usize) -> (Vec<Chunk>, Result<Vec<Chunk>, Error>) {
    fixtures::decode_in_pieces(new_decoder("claude-sonnet-4-5", CREATED), body, size)
}

/// Each chunk's JSON, of a stream that must finish cleanly.
fn decode(body: &str) -> Vec<Value> {
    let chunks =
        fixtures::decode_complete(new_decoder("claude-sonnet-4-5", CREATED), body, body.len());
    let json = |chunk: &Chunk| serde_json::from_str(&chunk.data).expect("chunk JSON");
    chunks.iter().map(json).collect()
}

#[test]
fn text_stream() {
    let chunks = decode(TEXT_STREAM);
    let header = |choices: Value| json!({"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "object": "chat.completion.chunk", "created": CREATED, "model": "claude-sonnet-4-5-20250929", "choices": choices});
    let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut usage_chunk = header(json!([]));
    usage_chunk["usage"] = json!({"prompt_tokens": 30, "completion_tokens": 15, "total_tokens": 45, "prompt_tokens_details": {"cached_tokens": 5}});
    assert_eq!(
        chunks,
        vec![
            header(choice(
                json!({"role": "assistant", "content": "Hé"}),
                Value::Null
            )),
            header(choice(json!({"content": "llo 👋"}), Value::Null)),
            header(choice(json!({}), json!("stop"))),
            usage_chunk,
        ]
    );
}

#[test]
fn usage_is_only_on_the_last_chunk() {
    let (chunks, finished) = decode_in_pieces(TEXT_STREAM, 64);
    assert!(finished.expect("complete").is_empty());
    let (last, rest) = chunks.split_last().expect("chunks");
    assert!(rest.iter().all(|chunk| chunk.usage.is_none()));
    let usage = last.usage.as_ref().expect("usage");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (30, 15));
}

#[test]
fn every_split_gives_the_same_chunks() {
    for body in [TEXT_STREAM, TOOL_STREAM] {
        let whole: Vec<String> = {
            let (mut chunks, finished) = decode_in_pieces(body, body.len());
            chunks.extend(finished.expect("complete"));
            chunks.into_iter().map(|chunk| chunk.data).collect()
        };
        for size in [1, 2, 3, 5, 7, 13, 64, 333] {
            let (mut chunks, finished) = decode_in_pieces(body, size);
            chunks.extend(finished.expect("complete"));
            let data: Vec<String> = chunks.into_iter().map(|chunk| chunk.data).collect();
            assert_eq!(data, whole, "piece size {size}");
        }
    }
}

#[test]
fn tool_stream_numbers_calls_by_order() {
    let chunks = decode(TOOL_STREAM);
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"].get(0))
        .map(|choice| &choice["delta"])
        .collect();
    assert_eq!(
        deltas[0],
        &json!({"role": "assistant", "reasoning_content": "Weather needed."})
    );
    assert_eq!(
        deltas[1],
        &json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "EqQB"}]})
    );
    let deltas = &deltas[2..];
    assert_eq!(deltas[0], &json!({"content": "Checking."}));
    assert_eq!(
        deltas[1],
        &json!({"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})
    );
    assert_eq!(
        deltas[2],
        &json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]})
    );
    assert_eq!(
        deltas[3],
        &json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"Paris\"}"}}]})
    );
    assert_eq!(
        deltas[4],
        &json!({"tool_calls": [{"index": 1, "id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": ""}}]})
    );
    assert_eq!(
        deltas[5],
        &json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]})
    );
    assert_eq!(deltas.len(), 7);
    let finish = &chunks[chunks.len() - 2]["choices"][0]["finish_reason"];
    assert_eq!(finish, "tool_calls");
    assert_eq!(
        chunks.last().expect("usage")["usage"]["completion_tokens"],
        89
    );
}

#[test]
fn error_event_is_typed() {
    let mut decoder = new_decoder("m", CREATED);
    let failure = decoder
        .push(b"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n")
        .expect_err("error");
    assert_eq!(failure.kind, ErrorKind::Unavailable);
    assert!(failure.retryable);
    assert_eq!(failure.message, "Overloaded");
    assert_eq!(failure.code.as_deref(), Some("overloaded_error"));

    let mut decoder = new_decoder("m", CREATED);
    let failure = decoder
        .push(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}\n\n")
        .expect_err("error");
    assert_eq!(failure.kind, ErrorKind::RateLimited);
}

#[test]
fn chunks_before_an_error_go_out_first() {
    let body = TEXT_STREAM
        .split("event: content_block_stop")
        .next()
        .expect("prefix")
        .to_owned()
        + "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server error\"}}\n\n";
    let mut decoder = new_decoder("m", CREATED);
    let chunks = decoder.push(body.as_bytes()).expect("the text so far");
    assert_eq!(chunks.len(), 2);
    let failure = decoder.push(b"").expect_err("then the error");
    assert_eq!(failure.kind, ErrorKind::Unavailable);
}

#[test]
fn cut_short_stream_is_an_error_but_a_lost_message_stop_is_not() {
    let cut = TEXT_STREAM
        .split("event: message_delta")
        .next()
        .expect("prefix");
    let (chunks, finished) = decode_in_pieces(cut, 10);
    assert_eq!(chunks.len(), 2);
    let failure = finished.expect_err("ended early");
    assert_eq!(failure.kind, ErrorKind::Unavailable);
    assert!(failure.retryable);

    let no_stop = TEXT_STREAM
        .split("event: message_stop")
        .next()
        .expect("prefix");
    let (_, finished) = decode_in_pieces(no_stop, 10);
    let tail = finished.expect("complete");
    assert_eq!(tail.len(), 1);
    assert!(tail[0].usage.is_some());
}

#[test]
fn garbage_and_bad_shapes_are_invalid_responses() {
    for body in [
        "data: {not json}\n\n",
        "event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
        "data: {\"type\":\"content_block_delta\",\"index\":5,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n\n",
    ] {
        let mut decoder = new_decoder("m", CREATED);
        let failure = decoder.push(body.as_bytes()).expect_err("invalid");
        assert_eq!(failure.kind, ErrorKind::InvalidResponse, "{body}");
    }
}

#[test]
fn events_after_message_stop_are_ignored() {
    let body = format!(
        "{TEXT_STREAM}event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"late\"}}}}\n\n"
    );
    assert_eq!(decode(&body).len(), 4);
}

#[test]
fn overload_right_after_message_start_leaves_failover_open() {
    let start = TEXT_STREAM
        .split("event: content_block_start")
        .next()
        .expect("message_start");
    let body = format!(
        "{start}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}}\n\n"
    );
    let mut decoder = new_decoder("m", CREATED);
    let failure = decoder
        .push(body.as_bytes())
        .expect_err("no chunk before the error");
    assert_eq!(failure.kind, ErrorKind::Unavailable);
    assert!(failure.retryable);
}
