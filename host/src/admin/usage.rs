//! `GET /admin/usage?by=key|provider|model|day|hour&since=24h`: the ledger, summed — the same JSON
//! as `freeway usage --json`.

use std::time::SystemTime;

use hyper::{Response, StatusCode};

use crate::api::openai::error_response;
use crate::error::GatewayError;
use crate::http::{ResponseBody, json_response};
use crate::pipeline::Gateway;
use crate::store::ledger::{GroupBy, since_ms, usage, usage_json};

fn invalid(param: &str, message: String) -> GatewayError {
    GatewayError::invalid(param, message)
}

pub async fn handle(gateway: &Gateway, query: Option<&str>) -> Response<ResponseBody> {
    let mut by = "key".to_string();
    let mut since = "24h".to_string();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("by", value)) => by = value.to_string(),
            Some(("since", value)) => since = value.to_string(),
            _ => {}
        }
    }
    let Some(group) = GroupBy::parse(&by) else {
        let error = invalid(
            "by",
            format!("by={by:?}: use key, provider, model, day or hour"),
        );
        return error_response(&error, "admin");
    };
    let start = match since_ms(&since, SystemTime::now()) {
        Ok(start) => start,
        Err(error) => return error_response(&invalid("since", error.to_string()), "admin"),
    };
    let Some(store) = gateway.store.clone() else {
        return json_response(StatusCode::OK, &usage_json(group, &since, &[]));
    };
    let rows = tokio::task::spawn_blocking(move || {
        store
            .connect()
            .and_then(|connection| usage(&connection, group, start))
    })
    .await;
    match rows {
        Ok(Ok(rows)) => json_response(StatusCode::OK, &usage_json(group, &since, &rows)),
        Ok(Err(error)) => error_response(
            &GatewayError::Internal {
                message: format!("the store failed: {error}"),
            },
            "admin",
        ),
        Err(_) => error_response(
            &GatewayError::Internal {
                message: "the store task failed".into(),
            },
            "admin",
        ),
    }
}
