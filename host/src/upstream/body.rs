//! An upstream answer's body as an adapter should see it: decoded from the `Content-Encoding`
//! it came in (hyper's client does not decode, and adapters parse bytes, not compressed
//! streams), capped in size (`server.max_response_bytes`, so an upstream cannot make the
//! gateway buffer without bound), and its failures typed: a body that breaks off, is not
//! valid chunked encoding, or does not decompress is a broken answer (`invalid-response`,
//! 502 to the client), never an outage.
//!
//! Decompression pulls through a 16 KiB buffer, so a small compressed body that expands
//! enormously (a "zip bomb") is cut at the cap like any other large answer.

use std::io;
use std::pin::Pin;

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZlibDecoder};
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use hyper::HeaderMap;
use hyper::body::Incoming;
use hyper::header::CONTENT_ENCODING;
use tokio::io::AsyncRead;
use tokio_util::io::{ReaderStream, StreamReader};

use super::error::AttemptError;
use crate::plugins::bindings::types::ErrorKind;

const DECODE_BUFFER: usize = 16 * 1024;

/// An upstream body, yielding its decoded bytes piece by piece.
pub enum Decoded {
    Plain(Incoming),
    Compressed {
        encoding: String,
        stream: ReaderStream<Pin<Box<dyn AsyncRead + Send>>>,
    },
}

impl Decoded {
    /// The body of an answer with these headers; an encoding the gateway cannot decode is a
    /// broken answer.
    pub fn new(headers: &HeaderMap, body: Incoming) -> Result<Self, AttemptError> {
        let encoding = headers
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if encoding.is_empty() || encoding == "identity" {
            return Ok(Decoded::Plain(body));
        }
        let reader = StreamReader::new(
            body.into_data_stream()
                .map_err(|e| io::Error::other(format!("the answer broke off: {e}"))),
        );
        let decoder: Pin<Box<dyn AsyncRead + Send>> = match encoding.as_str() {
            "gzip" | "x-gzip" => {
                let mut decoder = GzipDecoder::new(reader);
                decoder.multiple_members(true);
                Box::pin(decoder)
            }
            "br" => Box::pin(BrotliDecoder::new(reader)),
            "deflate" => Box::pin(ZlibDecoder::new(reader)),
            other => {
                return Err(AttemptError::upstream(
                    ErrorKind::InvalidResponse,
                    format!(
                        "the upstream sent its answer as content-encoding {:?}, which the gateway cannot decode",
                        other.chars().take(40).collect::<String>()
                    ),
                ));
            }
        };
        Ok(Decoded::Compressed {
            encoding,
            stream: ReaderStream::with_capacity(decoder, DECODE_BUFFER),
        })
    }

    /// The next decoded bytes, `None` at the end of the body.
    pub async fn next_data(&mut self) -> Option<Result<Bytes, AttemptError>> {
        match self {
            Decoded::Plain(body) => loop {
                match body.frame().await? {
                    Ok(frame) => {
                        if let Ok(data) = frame.into_data() {
                            return Some(Ok(data));
                        }
                    }
                    Err(error) => {
                        return Some(Err(broken(format!("the answer broke off: {error}"))));
                    }
                }
            },
            Decoded::Compressed { encoding, stream } => match stream.next().await? {
                Ok(data) => Some(Ok(data)),
                Err(error) => Some(Err(broken(format!(
                    "its {encoding} answer could not be decoded: {error}"
                )))),
            },
        }
    }
}

/// Read a whole answer, decoded, refusing one larger than `max` bytes.
pub async fn read_answer(
    headers: &HeaderMap,
    body: Incoming,
    max: usize,
) -> Result<Bytes, AttemptError> {
    let mut body = Decoded::new(headers, body)?;
    let mut parts: Vec<Bytes> = Vec::new();
    let mut length = 0;
    while let Some(data) = body.next_data().await {
        let data = data?;
        length += data.len();
        if length > max {
            return Err(too_large(max));
        }
        parts.push(data);
    }
    // Most answers are one frame: that one is kept as it is, without a copy.
    if parts.len() == 1 {
        return Ok(parts.swap_remove(0));
    }
    let mut out = BytesMut::with_capacity(length);
    for part in parts {
        out.extend_from_slice(&part);
    }
    Ok(out.freeze())
}

/// An answer over `server.max_response_bytes`.
pub fn too_large(max: usize) -> AttemptError {
    AttemptError::upstream(
        ErrorKind::InvalidResponse,
        format!(
            "the upstream's answer is larger than this gateway's limit of {max} bytes (server.max_response_bytes)"
        ),
    )
}

fn broken(message: String) -> AttemptError {
    AttemptError::upstream(
        ErrorKind::InvalidResponse,
        format!("the upstream {message}"),
    )
}
