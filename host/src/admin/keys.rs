//! `/admin/keys`: virtual keys over HTTP — list (`GET`), create (`POST`, the secret is in the
//! answer and nowhere else), change (`PATCH /admin/keys/NAME`), revoke (`DELETE`). Changes
//! reach the key ring at once.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::{Method, Response, StatusCode};
use serde_json::json;

use crate::api::openai::error_response;
use crate::error::GatewayError;
use crate::http::{ResponseBody, json_response};
use crate::pipeline::Gateway;
use crate::reload::refresh_keys;
use crate::store::keys::{self, KeyLimits, KeyRow, KeySpec, KeySpend, view};
use crate::store::{Store, StoreError};

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn invalid(message: impl Into<String>) -> GatewayError {
    GatewayError::InvalidRequest {
        code: "invalid_value",
        param: None,
        message: message.into(),
    }
}

fn store_error(error: StoreError) -> GatewayError {
    match error {
        StoreError::Invalid(message) => invalid(message),
        other => GatewayError::Internal {
            message: format!("the store failed: {other}"),
        },
    }
}

async fn with_store<T: Send + 'static>(
    store: Store,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, GatewayError> {
    tokio::task::spawn_blocking(move || {
        let connection = store.connect()?;
        f(&connection)
    })
    .await
    .map_err(|_| GatewayError::Internal {
        message: "the store task failed".into(),
    })?
    .map_err(store_error)
}

async fn spend(gateway: &Gateway, name: &str) -> KeySpend {
    let usage = gateway
        .shared
        .key_usage
        .usage(name, SystemTime::now())
        .await;
    KeySpend {
        usd_today: usage.usd_today,
        usd_month: usage.usd_month,
        usd_total: usage.usd_total,
        tokens_today: usage.tokens_today,
    }
}

async fn shown(gateway: &Gateway, row: &KeyRow) -> serde_json::Value {
    view(row, spend(gateway, &row.name).await)
}

/// Answer one `/admin/keys` request; `name` is the path segment after it, if any.
pub async fn handle(
    gateway: &Arc<Gateway>,
    method: &Method,
    name: Option<&str>,
    body: Bytes,
) -> Response<ResponseBody> {
    match answer(gateway, method, name, body).await {
        Ok(response) => response,
        Err(error) => error_response(&error, "admin"),
    }
}

async fn answer(
    gateway: &Arc<Gateway>,
    method: &Method,
    name: Option<&str>,
    body: Bytes,
) -> Result<Response<ResponseBody>, GatewayError> {
    let Some(store) = gateway.store.clone() else {
        return Err(invalid(
            "this gateway keeps its store in memory (store.path = \"memory\"): virtual keys need a store file",
        ));
    };
    let spec = || -> Result<KeySpec, GatewayError> {
        if body.is_empty() {
            return Ok(KeySpec::default());
        }
        serde_json::from_slice(&body).map_err(|e| invalid(format!("invalid key JSON: {e}")))
    };
    let response = match (method, name) {
        (&Method::GET, None) => {
            let rows = with_store(store, keys::all).await?;
            let mut views = Vec::with_capacity(rows.len());
            for row in &rows {
                views.push(shown(gateway, row).await);
            }
            json_response(StatusCode::OK, &json!({"keys": views}))
        }
        (&Method::POST, None) => {
            let spec = spec()?;
            let name = spec
                .name
                .clone()
                .ok_or_else(|| invalid("a new key needs a \"name\""))?;
            let (row, secret) = with_store(store, move |c| {
                let mut limits = KeyLimits::default();
                spec.apply(&mut limits, now_s())?;
                keys::create(c, &name, &limits, now_s())
            })
            .await?;
            let mut object = shown(gateway, &row).await;
            object["key"] = json!(secret);
            json_response(StatusCode::CREATED, &object)
        }
        (&Method::PATCH, Some(name)) => {
            let spec = spec()?;
            let name = name.to_string();
            let row = with_store(store, move |c| {
                let row = keys::get(c, &name)?
                    .ok_or_else(|| StoreError::Invalid(format!("no key named '{name}'")))?;
                let mut limits = row.limits;
                spec.apply(&mut limits, now_s())?;
                keys::update(c, &name, &limits)
            })
            .await?;
            json_response(StatusCode::OK, &shown(gateway, &row).await)
        }
        (&Method::DELETE, Some(name)) => {
            let name = name.to_string();
            let row = with_store(store, move |c| keys::revoke(c, &name, now_s())).await?;
            json_response(StatusCode::OK, &shown(gateway, &row).await)
        }
        (method, _) => {
            return Err(GatewayError::MethodNotAllowed {
                method: method.to_string(),
                path: format!(
                    "/admin/keys{}",
                    name.map(|n| format!("/{n}")).unwrap_or_default()
                ),
            });
        }
    };
    if method != Method::GET
        && let Err(error) = refresh_keys(gateway).await
    {
        tracing::warn!("cannot reload keys: {error:#}");
    }
    Ok(response)
}
