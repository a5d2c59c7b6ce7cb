//! Who may call the public API: as soon as any key exists — `[auth] keys` in the config or a
//! virtual key in the store, revoked ones included — every route but `/healthz` needs one as
//! a bearer token or, as Anthropic's SDKs send it, an `x-api-key` header; with none, the gateway is open (and may then listen only on loopback,
//! unless the operator says otherwise). Keys are looked up by the SHA-256 of the token.

use std::sync::Arc;
use std::time::SystemTime;

use hyper::HeaderMap;

use crate::error::GatewayError;
use crate::http::bearer_token;
use crate::pipeline::Gateway;
use crate::state::Caller;
use crate::state::keyring::KeyProblem;

/// The caller the request's key names (None when no key exists at all).
pub fn authenticate(
    gateway: &Gateway,
    headers: &HeaderMap,
) -> Result<Option<Arc<Caller>>, GatewayError> {
    if !gateway.keys.required() {
        return Ok(None);
    }
    let presented = bearer_token(headers)
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match gateway.keys.find(presented, now) {
        Ok(caller) => Ok(Some(caller)),
        Err(KeyProblem::Unknown) => Err(GatewayError::InvalidApiKey),
        Err(KeyProblem::Revoked(key)) => Err(GatewayError::RevokedApiKey { key }),
        Err(KeyProblem::Expired(key)) => Err(GatewayError::ExpiredApiKey { key }),
    }
}
