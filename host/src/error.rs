//! The one error a client can receive from the gateway, whatever went wrong and wherever.
//!
//! Each variant knows its HTTP status, its machine-readable code (OpenAI's `error.code`), the
//! parameter at fault when there is one, a `Retry-After` when waiting helps, and a short,
//! low-cardinality label for metrics. How it is written on the wire is the inbound dialect's
//! business (`api/`): the same error is an OpenAI error body on `/v1/chat/completions` and an
//! `error` event inside a committed stream. Call sites build variants, never status/code pairs.

use std::time::Duration;

use hyper::StatusCode;

/// Which part of an answer a filter blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Request,
    Answer,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// The request is malformed: `code` is `invalid_json`, `invalid_value`,
    /// `missing_required_parameter` or `invalid_body`, `param` names the field.
    #[error("{message}")]
    InvalidRequest {
        code: &'static str,
        param: Option<String>,
        message: String,
    },
    #[error("the request body is larger than this gateway's limit of {max} bytes")]
    BodyTooLarge { max: usize },
    /// The client did not send its request in time (`server.body_*_timeout_ms`).
    #[error("{message}")]
    ClientTimeout { message: String },
    #[error(
        "the model '{model}' does not exist on this gateway; GET /v1/models lists the available ones"
    )]
    ModelNotFound { model: String },
    #[error(
        "Incorrect API key provided: pass one of this gateway's keys as `Authorization: Bearer <key>` (or `x-api-key: <key>`)"
    )]
    InvalidApiKey,
    #[error("the API key '{key}' was revoked")]
    RevokedApiKey { key: String },
    #[error("the API key '{key}' has expired")]
    ExpiredApiKey { key: String },
    #[error("the key '{key}' may not use the model '{model}'")]
    ModelNotAllowed { key: String, model: String },
    #[error("the key '{key}' has reached its {budget}{}", match retry_after { Some(_) => "; it resets at the start of the next period", None => "" })]
    BudgetExceeded {
        key: String,
        budget: String,
        retry_after: Option<Duration>,
    },
    #[error("the key '{key}' is over its limit of {limit}")]
    KeyRateLimited {
        key: String,
        limit: String,
        retry_after: Duration,
    },
    #[error("admin routes need `Authorization: Bearer <admin key>`")]
    InvalidAdminKey,
    #[error("the key '{key}' has used its daily allowance of {cap}; it resets at 00:00 UTC")]
    DailyCapReached {
        key: String,
        cap: String,
        retry_after: Duration,
    },
    /// `scope` is "request" on the public API, "admin" on the admin API.
    #[error("unknown {scope} URL: {method} {path}")]
    UnknownUrl {
        scope: &'static str,
        method: String,
        path: String,
    },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the {} was blocked by filter '{filter}': {reason}", match stage { Stage::Request => "request", Stage::Answer => "answer" })]
    Blocked {
        stage: Stage,
        filter: String,
        reason: String,
    },
    /// A plugin trapped, timed out, ran out of memory, erred or was missing, and nothing else
    /// could serve. The message names the plugin.
    #[error("{message}")]
    Plugin { message: String },
    /// Every target is rate-limited or cooling down; retry after the soonest frees.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Duration,
    },
    /// No target can take this request (images to text-only models, over the window, …).
    #[error("{message}")]
    UnsupportedRequest { message: String },
    /// Every target is disabled, down or unavailable.
    #[error("{message}")]
    NoAvailableTarget { message: String },
    #[error("{message}")]
    UpstreamTimeout { message: String },
    /// Upstreams failed: bad answers, refused keys, a mix of failures.
    #[error("{message}")]
    Upstream { message: String },
    /// The upstream refused the request itself (context length, content filter, a bad
    /// parameter): no other target would do better, so its own status and code are passed on.
    #[error("{message}")]
    UpstreamRefused {
        status: StatusCode,
        code: String,
        param: Option<String>,
        message: String,
    },
    /// A committed stream broke after its first chunk reached the client.
    #[error("the stream from {target} was interrupted: {reason}")]
    StreamInterrupted { target: String, reason: String },
    #[error("reload refused, the previous version keeps serving: {reason}")]
    ReloadRefused { reason: String },
    /// The gateway itself failed (its store, a task): nothing the client can fix.
    #[error("{message}")]
    Internal { message: String },
}

impl GatewayError {
    /// A field with a wrong value or type.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        GatewayError::InvalidRequest {
            code: "invalid_value",
            param: Some(param.into()),
            message: message.into(),
        }
    }

    /// A required field that is absent.
    pub fn missing(param: &str) -> Self {
        GatewayError::InvalidRequest {
            code: "missing_required_parameter",
            param: Some(param.to_string()),
            message: format!("you must provide the `{param}` parameter"),
        }
    }

    /// A body that is not the JSON it should be.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        GatewayError::InvalidRequest {
            code: "invalid_json",
            param: None,
            message: message.into(),
        }
    }

    pub fn plugin(message: impl Into<String>) -> Self {
        GatewayError::Plugin {
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::InvalidRequest { .. }
            | GatewayError::Blocked { .. }
            | GatewayError::UnsupportedRequest { .. } => StatusCode::BAD_REQUEST,
            GatewayError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::ClientTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            GatewayError::ModelNotFound { .. } | GatewayError::UnknownUrl { .. } => {
                StatusCode::NOT_FOUND
            }
            GatewayError::InvalidApiKey
            | GatewayError::RevokedApiKey { .. }
            | GatewayError::ExpiredApiKey { .. }
            | GatewayError::InvalidAdminKey => StatusCode::UNAUTHORIZED,
            GatewayError::ModelNotAllowed { .. } => StatusCode::FORBIDDEN,
            GatewayError::DailyCapReached { .. }
            | GatewayError::RateLimited { .. }
            | GatewayError::BudgetExceeded { .. }
            | GatewayError::KeyRateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::Plugin { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::NoAvailableTarget { .. } => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Upstream { .. } | GatewayError::StreamInterrupted { .. } => {
                StatusCode::BAD_GATEWAY
            }
            GatewayError::UpstreamRefused { status, .. } => *status,
            GatewayError::ReloadRefused { .. } => StatusCode::CONFLICT,
            GatewayError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code clients branch on.
    pub fn code(&self) -> &str {
        match self {
            GatewayError::InvalidRequest { code, .. } => code,
            GatewayError::BodyTooLarge { .. } => "request_too_large",
            GatewayError::ClientTimeout { .. } => "request_timeout",
            GatewayError::ModelNotFound { .. } => "model_not_found",
            GatewayError::InvalidApiKey
            | GatewayError::RevokedApiKey { .. }
            | GatewayError::ExpiredApiKey { .. } => "invalid_api_key",
            GatewayError::ModelNotAllowed { .. } => "model_not_allowed",
            GatewayError::BudgetExceeded { .. } => "budget_exceeded",
            GatewayError::KeyRateLimited { .. } => "key_rate_limited",
            GatewayError::InvalidAdminKey => "invalid_admin_key",
            GatewayError::DailyCapReached { .. } => "daily_cap_reached",
            GatewayError::UnknownUrl { .. } => "unknown_url",
            GatewayError::MethodNotAllowed { .. } => "method_not_allowed",
            GatewayError::Blocked { .. } => "blocked_by_filter",
            GatewayError::Plugin { .. } => "plugin_error",
            GatewayError::RateLimited { .. } => "rate_limited",
            GatewayError::UnsupportedRequest { .. } => "unsupported_request",
            GatewayError::NoAvailableTarget { .. } => "no_available_target",
            GatewayError::UpstreamTimeout { .. } => "upstream_timeout",
            GatewayError::Upstream { .. } => "upstream_error",
            GatewayError::UpstreamRefused { code, .. } => code,
            GatewayError::StreamInterrupted { .. } => "stream_interrupted",
            GatewayError::ReloadRefused { .. } => "reload_refused",
            GatewayError::Internal { .. } => "internal_error",
        }
    }

    /// A label for metrics: a fixed set of values, whatever the message says.
    pub fn label(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest { .. } => "invalid_request",
            GatewayError::BodyTooLarge { .. } => "body_too_large",
            GatewayError::ClientTimeout { .. } => "client_timeout",
            GatewayError::ModelNotFound { .. } => "model_not_found",
            GatewayError::InvalidApiKey
            | GatewayError::RevokedApiKey { .. }
            | GatewayError::ExpiredApiKey { .. }
            | GatewayError::InvalidAdminKey => "unauthorized",
            GatewayError::ModelNotAllowed { .. } => "model_not_allowed",
            GatewayError::BudgetExceeded { .. } => "budget_exceeded",
            GatewayError::KeyRateLimited { .. } => "key_rate_limited",
            GatewayError::DailyCapReached { .. } => "key_cap_reached",
            GatewayError::UnknownUrl { .. } => "unknown_url",
            GatewayError::MethodNotAllowed { .. } => "method_not_allowed",
            GatewayError::Blocked { .. } => "blocked",
            GatewayError::Plugin { .. } => "plugin_error",
            GatewayError::RateLimited { .. } => "rate_limited",
            GatewayError::UnsupportedRequest { .. } => "unsupported",
            GatewayError::NoAvailableTarget { .. } => "no_target",
            GatewayError::UpstreamTimeout { .. } => "upstream_timeout",
            GatewayError::Upstream { .. } => "upstream_error",
            GatewayError::UpstreamRefused { .. } => "upstream_refused",
            GatewayError::StreamInterrupted { .. } => "stream_interrupted",
            GatewayError::ReloadRefused { .. } => "reload_refused",
            GatewayError::Internal { .. } => "internal_error",
        }
    }

    /// The request field at fault, when one is.
    pub fn param(&self) -> Option<&str> {
        match self {
            GatewayError::InvalidRequest { param, .. }
            | GatewayError::UpstreamRefused { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    /// How long the client should wait before trying again, when waiting helps.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GatewayError::DailyCapReached { retry_after, .. }
            | GatewayError::RateLimited { retry_after, .. }
            | GatewayError::KeyRateLimited { retry_after, .. } => Some(*retry_after),
            GatewayError::BudgetExceeded { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_header(&self) -> Option<String> {
        self.retry_after()
            .map(|d| d.as_millis().div_ceil(1000).max(1).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_know_status_code_and_retry() {
        let limited = GatewayError::RateLimited {
            message: "slow down".into(),
            retry_after: Duration::from_millis(4200),
        };
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.code(), "rate_limited");
        assert_eq!(limited.retry_after_header().as_deref(), Some("5"));
        let missing = GatewayError::missing("model");
        assert_eq!(missing.param(), Some("model"));
        assert_eq!(
            missing.to_string(),
            "you must provide the `model` parameter"
        );
        let blocked = GatewayError::Blocked {
            stage: Stage::Answer,
            filter: "pii".into(),
            reason: "card".into(),
        };
        assert_eq!(
            blocked.to_string(),
            "the answer was blocked by filter 'pii': card"
        );
        assert_eq!(blocked.label(), "blocked");
    }
}
