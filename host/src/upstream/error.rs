//! Why one attempt at one target failed: where the failure came from, what kind it was,
//! whether another target could do better, and what the upstream asked for. The failover
//! loop decides from `retryable` only; target state from [`AttemptError::failure`].

use std::time::Duration;

use crate::plugins::PluginFault;
use crate::plugins::bindings::types::{self, ErrorKind};
use crate::state::{Failure, FailureKind};

/// Where a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The gateway itself (configuration, limits).
    Gateway,
    /// A plugin trapped, timed out, ran out of memory or returned nonsense.
    Plugin,
    /// The upstream provider or the network to it.
    Upstream,
}

#[derive(Debug, Clone)]
pub struct AttemptError {
    pub source: Source,
    pub kind: ErrorKind,
    pub retryable: bool,
    pub message: String,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub code: Option<String>,
    pub param: Option<String>,
}

impl AttemptError {
    fn new(source: Source, kind: ErrorKind, message: impl Into<String>) -> Self {
        AttemptError {
            source,
            kind,
            retryable: true,
            message: message.into(),
            status: None,
            retry_after: None,
            code: None,
            param: None,
        }
    }

    /// What an adapter made of an upstream's error answer.
    pub fn from_plugin_error(error: types::Error) -> Self {
        AttemptError {
            source: Source::Upstream,
            kind: error.kind,
            retryable: error.retryable,
            message: error.message,
            status: error.status,
            retry_after: error.retry_after_ms.map(Duration::from_millis),
            code: error.code,
            param: error.param,
        }
    }

    pub fn timeout(after: Duration) -> Self {
        Self::new(
            Source::Upstream,
            ErrorKind::Timeout,
            format!(
                "the upstream did not answer within {} ms",
                after.as_millis()
            ),
        )
    }

    pub fn upstream(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(Source::Upstream, kind, message)
    }

    /// The adapter built something the host cannot send (a bad URL, header or method).
    pub fn plugin(message: impl Into<String>) -> Self {
        Self::new(Source::Plugin, ErrorKind::Internal, message)
    }

    /// The gateway cannot make the request (a key that cannot go in a header).
    pub fn gateway(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(Source::Gateway, kind, message)
    }

    /// What target state makes of this failure.
    pub fn failure(&self) -> Failure {
        let upstream = self.source == Source::Upstream;
        let kind = match self.kind {
            ErrorKind::RateLimited => FailureKind::RateLimited,
            ErrorKind::QuotaExhausted => FailureKind::QuotaExhausted,
            ErrorKind::Auth if upstream => FailureKind::KeyRefused,
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::InvalidResponse
                if upstream =>
            {
                FailureKind::Unwell
            }
            _ => FailureKind::Other,
        };
        Failure {
            kind,
            retry_after: self.retry_after,
        }
    }

    /// What the route explanation says of this failure, e.g. "429 rate-limited".
    pub fn summary(&self) -> String {
        let kind = kind_name(self.kind);
        let mut out = match (self.source, self.status) {
            (Source::Plugin, _) => format!("plugin error: {}", self.message),
            (_, Some(status)) => format!("{status} {kind}"),
            (_, None) => format!("{kind}: {}", self.message),
        };
        if let Some(after) = self.retry_after {
            out.push_str(&format!(" (retry in {})", human(after)));
        }
        out
    }
}

impl From<PluginFault> for AttemptError {
    fn from(fault: PluginFault) -> Self {
        Self::new(Source::Plugin, ErrorKind::Internal, fault.to_string())
    }
}

/// The error kind's WIT name (`rate-limited`, …), as logs and route explanations print it.
pub use crate::plugins::bindings::error_kind_name as kind_name;

/// A short human duration: "37s" or "250ms".
pub fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{}s", d.as_millis().div_ceil(1000))
    } else {
        format!("{}ms", d.as_millis())
    }
}
