//! Who may call the public API: with `[auth] keys` configured, every route but `/healthz`
//! needs one of them as a bearer token (compared in constant time); with none, the gateway
//! is open. The key's name is what its usage is counted under.

use hyper::HeaderMap;

use crate::config::GatewayKey;
use crate::error::GatewayError;
use crate::http::{bearer_token, constant_time_eq};
use crate::pipeline::Gateway;

/// The gateway key the request presents (None when no keys are configured).
pub fn authenticate(
    gateway: &Gateway,
    headers: &HeaderMap,
) -> Result<Option<GatewayKey>, GatewayError> {
    let snapshot = gateway.snapshot.load();
    let keys = &snapshot.config.gateway_keys;
    if keys.is_empty() {
        return Ok(None);
    }
    let presented = bearer_token(headers).unwrap_or_default();
    keys.iter()
        .find(|k| constant_time_eq(presented.as_bytes(), k.key.expose().as_bytes()))
        .cloned()
        .map(Some)
        .ok_or(GatewayError::InvalidApiKey)
}
