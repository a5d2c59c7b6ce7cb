//! Server-sent events framing (the WHATWG `text/event-stream` format), for adapters whose
//! upstream streams over SSE.
//!
//! The host hands a stream decoder raw bytes exactly as they arrive from the socket, so a read
//! may end anywhere: inside a field name, inside a multi-byte UTF-8 sequence, or between the
//! `\r` and `\n` of one line ending. [`SseDecoder`] buffers only the unfinished line and decodes
//! text per complete line, so none of those splits can corrupt an event.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `None` when absent or empty (the spec's default "message").
    pub event: Option<String>,
    /// The `data:` lines joined with `"\n"`.
    pub data: String,
}

/// Incremental SSE parser: feed bytes with [`push`](Self::push), end with
/// [`finish`](Self::finish).
///
/// Follows the WHATWG event-stream rules: lines end with `\n`, `\r\n` or `\r`; a line starting
/// with `:` is a comment; one space after the field's colon is dropped; `id` and `retry` are
/// ignored (the host does not reconnect); an event is dispatched at a blank line, and only if
/// it had `data`. Invalid UTF-8 becomes U+FFFD rather than failing the stream.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of the line not yet terminated.
    partial_line: Vec<u8>,
    /// The previous input ended with `\r`: a `\n` starting the next input belongs to it.
    after_cr: bool,
    /// No line has been processed yet (a leading byte-order mark is dropped).
    at_stream_start: bool,
    event: Option<String>,
    /// Data lines, each followed by `\n` (the last one is removed at dispatch).
    data: String,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self {
            at_stream_start: true,
            ..Self::default()
        }
    }

    /// Events completed by `bytes`, in order.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            if self.partial_line.is_empty() {
                self.process_line(&bytes[..end], &mut events);
            } else {
                let mut line = std::mem::take(&mut self.partial_line);
                line.extend_from_slice(&bytes[..end]);
                self.process_line(&line, &mut events);
                line.clear();
                // Keep the allocation for the next split line.
                self.partial_line = line;
            }
            let mut next = end + 1;
            if bytes[end] == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            bytes = &bytes[next..];
        }
        self.partial_line.extend_from_slice(bytes);
        events
    }

    /// The body ended: the unterminated last line counts as a line, and an event still being
    /// collected is dispatched even though no blank line closed it.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut events = Vec::new();
        if !self.partial_line.is_empty() {
            let line = std::mem::take(&mut self.partial_line);
            self.process_line(&line, &mut events);
        }
        self.after_cr = false;
        // The last line can only have dispatched if it was a lone byte-order mark, and then
        // nothing is left to collect: at most one event either way.
        events.pop().or_else(|| self.dispatch())
    }

    fn process_line(&mut self, mut line: &[u8], events: &mut Vec<SseEvent>) {
        if self.at_stream_start {
            self.at_stream_start = false;
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.is_empty() {
            events.extend(self.dispatch());
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
            }
            b"event" => {
                self.event =
                    (!value.is_empty()).then(|| String::from_utf8_lossy(value).into_owned());
            }
            // `id` and `retry` only matter to a reconnecting client; unknown fields are ignored.
            _ => {}
        }
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        Some(SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(text: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: text.to_string(),
        }
    }

    /// Feeds `input` in pieces of `size` bytes, then finishes.
    fn decode_in_pieces(input: &[u8], size: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for piece in input.chunks(size) {
            events.extend(decoder.push(piece));
        }
        events.extend(decoder.finish());
        events
    }

    #[test]
    fn events_end_at_blank_lines_with_any_line_ending() {
        let input = b"data: one\n\ndata: two\r\n\r\ndata: three\r\rdata: four\n\n";
        assert_eq!(
            decode_in_pieces(input, input.len()),
            vec![data("one"), data("two"), data("three"), data("four")]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let input = "\u{feff}: keep-alive\r\nevent: delta\r\ndata: {\"text\":\"héllo 👋\"}\r\nid: 7\r\nretry: 100\r\n\r\ndata: line one\rdata:line two\r\rdata: [DONE]\n\n".as_bytes();
        let expected = vec![
            SseEvent {
                event: Some("delta".into()),
                data: "{\"text\":\"héllo 👋\"}".into(),
            },
            data("line one\nline two"),
            data("[DONE]"),
        ];
        for size in 1..=input.len() {
            assert_eq!(decode_in_pieces(input, size), expected, "piece size {size}");
        }
        // Two pieces split at every position, including inside "\r\n" and inside "👋".
        for split in 0..=input.len() {
            let mut decoder = SseDecoder::new();
            let mut events = decoder.push(&input[..split]);
            events.extend(decoder.push(&input[split..]));
            events.extend(decoder.finish());
            assert_eq!(events, expected, "split at {split}");
        }
    }

    #[test]
    fn cr_then_lf_in_separate_pushes_is_one_line_ending() {
        let mut decoder = SseDecoder::new();
        assert_eq!(decoder.push(b"data: a\r"), vec![]);
        assert_eq!(decoder.push(b""), vec![]);
        // This "\n" completes the "\r\n" above, so it is not the blank line ending the event.
        assert_eq!(decoder.push(b"\n"), vec![]);
        assert_eq!(decoder.push(b"\r\n"), vec![data("a")]);
    }

    #[test]
    fn comments_and_other_fields_are_ignored() {
        let input = b": ping\n\nid: 1\nretry: 5\nfoo: bar\n\ndata\n\n";
        // "data" without a colon is a data line with an empty value.
        assert_eq!(decode_in_pieces(input, 3), vec![data("")]);
    }

    #[test]
    fn only_one_space_after_the_colon_is_dropped() {
        assert_eq!(
            decode_in_pieces(b"data:  two spaces\ndata:none\n\n", 64),
            vec![data(" two spaces\nnone")]
        );
    }

    #[test]
    fn event_name_without_data_dispatches_nothing_and_does_not_leak() {
        let input = b"event: ping\n\ndata: x\n\n";
        assert_eq!(decode_in_pieces(input, 5), vec![data("x")]);
    }

    #[test]
    fn finish_dispatches_a_trailing_event_without_blank_line() {
        let mut decoder = SseDecoder::new();
        assert_eq!(
            decoder.push(b"data: first\n\ndata: tail"),
            vec![data("first")]
        );
        assert_eq!(decoder.finish(), Some(data("tail")));

        let mut decoder = SseDecoder::new();
        assert_eq!(decoder.push(b"event: end\ndata: tail\n"), vec![]);
        assert_eq!(
            decoder.finish(),
            Some(SseEvent {
                event: Some("end".into()),
                data: "tail".into()
            })
        );

        let mut decoder = SseDecoder::new();
        assert_eq!(decoder.push(b"data: done\n\n"), vec![data("done")]);
        assert_eq!(decoder.finish(), None);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let events = decode_in_pieces(b"data: a\xffb\n\n", 1);
        assert_eq!(events, vec![data("a\u{fffd}b")]);
    }

    /// Fuzzed framing (proptest): however the bytes are split — inside a field name, a
    /// multi-byte character or a `\r\n` — the events are those of the whole input, and no
    /// input panics. `FREEWAY_FUZZ_CASES` raises the case count for a long run.
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn decode(pieces: &[&[u8]]) -> Vec<SseEvent> {
            let mut decoder = SseDecoder::new();
            let mut events = Vec::new();
            for piece in pieces {
                events.extend(decoder.push(piece));
            }
            events.extend(decoder.finish());
            events
        }

        fn stream() -> impl Strategy<Value = Vec<u8>> {
            let line = prop_oneof![
                "data: [\\PC]{0,20}",
                "event: [a-z_]{0,10}",
                ": keep-alive",
                "data:\\{\"a\":\"é日\"\\}",
                "id: 7",
                "retry: 10",
                "",
            ];
            let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
            prop_oneof![
                prop::collection::vec((line, ending), 0..24).prop_map(|lines| {
                    let mut out = String::from("\u{feff}");
                    for (line, end) in lines {
                        out.push_str(&line);
                        out.push_str(end);
                    }
                    out.into_bytes()
                }),
                prop::collection::vec(any::<u8>(), 0..256),
            ]
        }

        fn cases() -> u32 {
            std::env::var("FREEWAY_FUZZ_CASES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(512)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn splitting_anywhere_gives_the_same_events(
                bytes in stream(),
                cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
            ) {
                let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
                cuts.sort_unstable();
                let mut pieces = Vec::new();
                let mut from = 0;
                for cut in cuts.into_iter().chain([bytes.len()]) {
                    pieces.push(&bytes[from..cut]);
                    from = cut;
                }
                prop_assert_eq!(decode(&pieces), decode(&[&bytes]));
            }
        }
    }
}
