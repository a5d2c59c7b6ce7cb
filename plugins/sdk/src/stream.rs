//! The `stream-decoder` skeleton every SSE-speaking adapter shares: SSE framing, the order in
//! which chunks and errors go out, and the resource the provider world exports.
//!
//! An adapter supplies only an [`EventTranslator`]: what one upstream event becomes, when the
//! upstream's stream is over, and what closes the stream at the end of the body. The rest is
//! the same for every provider and lives here once, because the host relies on it:
//!
//! - an error met after chunks of the same push is held back (the *pending error*): those
//!   chunks go out first and the error at the next call, so a client sees every token the
//!   upstream sent before it failed, while an error before any chunk still fails the call
//!   and lets the host fail over (it commits to a target at its first chunk);
//! - events after the translator says the stream stopped are ignored (the host writes its own
//!   `[DONE]`);
//! - the end of the body flushes an unterminated last event before the translator decides
//!   whether the answer was complete.

use std::cell::RefCell;

use crate::provider::exports::freeway::plugin::adapter::{Chunk, GuestStreamDecoder, Target};
use crate::sse::{SseDecoder, SseEvent};
use crate::types::Error;

/// One provider's part of a stream decoder.
pub trait EventTranslator {
    /// The translator for a stream from `target` (the resource's constructor).
    fn for_target(target: &Target) -> Self
    where
        Self: Sized;

    /// Appends the chunks one upstream event becomes to `chunks`, or says why it is an error.
    fn translate_event(&mut self, event: SseEvent, chunks: &mut Vec<Chunk>) -> Result<(), Error>;

    /// Whether the upstream's stream is over: later events are ignored.
    fn stopped(&self) -> bool {
        false
    }

    /// The body ended with no error pending: appends what closes the stream (a usage chunk,
    /// say) to `chunks`, or returns the error for a stream that was cut short.
    fn end(&mut self, chunks: &mut Vec<Chunk>) -> Result<(), Error>;
}

/// SSE decoding and the pending error around a translator.
pub struct StreamDecoder<T> {
    sse: SseDecoder,
    /// An error met after chunks of the same push: those chunks go out first, the error at the
    /// next call.
    pending_error: Option<Error>,
    translator: T,
}

impl<T: EventTranslator> StreamDecoder<T> {
    pub fn new(translator: T) -> Self {
        Self {
            sse: SseDecoder::new(),
            pending_error: None,
            translator,
        }
    }

    /// Chunks for the events `bytes` completes.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Chunk>, Error> {
        if let Some(failure) = self.pending_error.take() {
            return Err(failure);
        }
        let events = self.sse.push(bytes);
        self.translate(events)
    }

    /// The body ended: the last chunks, or the error that ends the stream.
    pub fn finish(&mut self) -> Result<Vec<Chunk>, Error> {
        if let Some(failure) = self.pending_error.take() {
            return Err(failure);
        }
        let trailing = self.sse.finish().into_iter().collect();
        let mut chunks = self.translate(trailing)?;
        if let Some(failure) = self.pending_error.take() {
            return Err(failure);
        }
        self.translator.end(&mut chunks)?;
        Ok(chunks)
    }

    fn translate(&mut self, events: Vec<SseEvent>) -> Result<Vec<Chunk>, Error> {
        let mut chunks = Vec::with_capacity(events.len() + 1);
        for event in events {
            if self.translator.stopped() {
                break;
            }
            if let Err(failure) = self.translator.translate_event(event, &mut chunks) {
                if chunks.is_empty() {
                    return Err(failure);
                }
                self.pending_error = Some(failure);
                break;
            }
        }
        Ok(chunks)
    }
}

/// The exported `stream-decoder` resource: name it as the adapter's
/// `type StreamDecoder = DecoderResource<MyTranslator>;`. The generated trait hands out
/// `&self`, so the state sits in a `RefCell`; calls on one resource never overlap.
pub struct DecoderResource<T>(RefCell<StreamDecoder<T>>);

impl<T: EventTranslator + 'static> GuestStreamDecoder for DecoderResource<T> {
    fn new(target: Target) -> Self {
        Self(RefCell::new(StreamDecoder::new(T::for_target(&target))))
    }

    fn push(&self, bytes: Vec<u8>) -> Result<Vec<Chunk>, Error> {
        self.0.borrow_mut().push(&bytes)
    }

    fn finish(&self) -> Result<Vec<Chunk>, Error> {
        self.0.borrow_mut().finish()
    }
}

/// Test helpers for adapters' translators.
#[doc(hidden)]
pub mod fixtures {
    use super::{Chunk, Error, EventTranslator, StreamDecoder};

    /// Feeds `body` to `decoder` in pieces of `size` bytes: the chunks of every push (each of
    /// which must succeed), and what `finish` returned.
    pub fn decode_in_pieces<T: EventTranslator>(
        mut decoder: StreamDecoder<T>,
        body: &str,
        size: usize,
    ) -> (Vec<Chunk>, Result<Vec<Chunk>, Error>) {
        let mut chunks = Vec::new();
        for piece in body.as_bytes().chunks(size) {
            chunks.extend(decoder.push(piece).expect("push succeeds"));
        }
        (chunks, decoder.finish())
    }

    /// Every chunk of a stream that must finish cleanly, fed in pieces of `size` bytes.
    pub fn decode_complete<T: EventTranslator>(
        decoder: StreamDecoder<T>,
        body: &str,
        size: usize,
    ) -> Vec<Chunk> {
        let (mut chunks, finished) = decode_in_pieces(decoder, body, size);
        chunks.extend(finished.expect("complete"));
        chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::error;
    use crate::types::ErrorKind;

    /// Each event's data is a chunk; "fail" is an error, "stop" ends the stream, and the
    /// stream is complete only once stopped.
    #[derive(Default)]
    struct Echo {
        stopped: bool,
    }

    impl EventTranslator for Echo {
        fn for_target(_target: &Target) -> Self {
            Self::default()
        }

        fn translate_event(
            &mut self,
            event: SseEvent,
            chunks: &mut Vec<Chunk>,
        ) -> Result<(), Error> {
            match event.data.as_str() {
                "fail" => Err(error(ErrorKind::Unavailable, true, "failed")),
                "stop" => {
                    self.stopped = true;
                    Ok(())
                }
                data => {
                    chunks.push(Chunk {
                        data: data.to_owned(),
                        usage: None,
                    });
                    Ok(())
                }
            }
        }

        fn stopped(&self) -> bool {
            self.stopped
        }

        fn end(&mut self, _chunks: &mut Vec<Chunk>) -> Result<(), Error> {
            if self.stopped {
                Ok(())
            } else {
                Err(error(ErrorKind::Unavailable, true, "ended early"))
            }
        }
    }

    fn data(chunks: &[Chunk]) -> Vec<&str> {
        chunks.iter().map(|chunk| chunk.data.as_str()).collect()
    }

    #[test]
    fn an_error_waits_for_the_next_call_unless_no_chunk_came_first() {
        let mut decoder = StreamDecoder::new(Echo::default());
        let chunks = decoder
            .push(b"data: a\n\ndata: fail\n\ndata: b\n\n")
            .expect("a first");
        assert_eq!(data(&chunks), ["a"]);
        let pending = decoder.push(b"").expect_err("then the error");
        let mut fresh = StreamDecoder::new(Echo::default());
        let at_once = fresh
            .push(b"data: fail\n\ndata: a\n\n")
            .expect_err("no chunk before it");
        assert_eq!(
            (pending.message.as_str(), at_once.message.as_str()),
            ("failed", "failed")
        );
    }

    #[test]
    fn events_after_the_stop_are_ignored_and_the_tail_is_flushed() {
        let mut decoder = StreamDecoder::new(Echo::default());
        assert_eq!(
            data(&decoder.push(b"data: a\n\ndata: b").expect("a")),
            ["a"]
        );
        // "b" is flushed, but the stream never stopped: the end decides it is an error.
        let failure = decoder.finish().expect_err("ended early");
        assert_eq!(failure.message, "ended early");

        let mut decoder = StreamDecoder::new(Echo::default());
        let chunks = decoder
            .push(b"data: a\n\ndata: stop\n\ndata: late\n\n")
            .expect("a");
        assert_eq!(data(&chunks), ["a"]);
        assert!(decoder.finish().expect("complete").is_empty());
    }

    #[test]
    fn a_pending_error_wins_over_the_end() {
        let mut decoder = StreamDecoder::new(Echo::default());
        assert_eq!(data(&decoder.push(b"data: a\n\n").expect("a")), ["a"]);
        let failure = decoder.finish().expect_err("cut");
        assert_eq!(failure.message, "ended early");
        let mut decoder = StreamDecoder::new(Echo::default());
        decoder.push(b"data: a\n\ndata: fail\n\n").expect("a");
        let failure = decoder.finish().expect_err("pending");
        assert_eq!(failure.message, "failed");
    }
}
