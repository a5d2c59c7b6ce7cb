//! One attempt at one target: the adapter builds the upstream request, the shared client sends
//! it with the provider's key injected, the adapter reads the answer, its rate-limit headers
//! and its failures. Knows nothing of failover, filters or the client's dialect.

pub mod attempt;
pub mod body;
pub mod client;
pub mod error;

pub use attempt::{Attempt, OpenStream};
pub use client::Upstream;
pub use error::{AttemptError, Source};
