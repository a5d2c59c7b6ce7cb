//! The operator dashboard: one page and its scripts, compiled into the binary (no build step,
//! no separate server, no framework — plain ES modules and hand-drawn SVG charts), served by
//! the admin listener at `/admin/dashboard`.
//!
//! The page and its assets hold no data and no secret, so they are served without the admin
//! key; everything they show comes from the admin API, which the page calls with the key the
//! operator typed (kept in `sessionStorage`, sent as `Authorization: Bearer`). `GET
//! /admin/session` tells the page whether a key is needed and whether the one it has is
//! right, as a 200 either way, so a login never shows as a failed request. A strict
//! Content-Security-Policy allows only these files' scripts and styles and calls to this
//! origin.

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

use crate::http::{
    ResponseBody, bearer_token, constant_time_eq, full_body, json_response, response,
};
use crate::pipeline::Snapshot;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Every file of the page: URL name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("dashboard/index.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("dashboard/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/dom.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/charts.js"),
    ),
    (
        "targets.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/targets.js"),
    ),
    (
        "requests.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/requests.js"),
    ),
    (
        "usage.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/usage.js"),
    ),
    (
        "plugins.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/plugins.js"),
    ),
    (
        "keys.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/keys.js"),
    ),
];

/// The page or one of its files, for `path` under `/admin` (`/admin`, `/admin/dashboard`,
/// `/admin/dashboard/app.js`); `None` when `path` is not the dashboard's.
pub fn asset(path: &str) -> Option<Response<ResponseBody>> {
    let name = match path {
        "/admin" | "/admin/dashboard" => "index.html",
        other => other.strip_prefix("/admin/dashboard/")?,
    };
    let (_, content_type, text) = ASSETS.iter().find(|(file, _, _)| *file == name)?;
    let mut answer = response(
        StatusCode::OK,
        content_type,
        full_body(Bytes::from_static(text.as_bytes())),
    );
    let headers = answer.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Assets change with the binary; a restart must never leave a browser on old scripts.
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    Some(answer)
}

/// `GET /admin/session`: `{key_required, authorized}` for the key this request presents.
pub fn session(snapshot: &Snapshot, headers: &HeaderMap) -> Response<ResponseBody> {
    let required = snapshot.config.admin.key.is_some();
    let authorized = match &snapshot.config.admin.key {
        None => true,
        Some(key) => bearer_token(headers)
            .is_some_and(|p| constant_time_eq(p.as_bytes(), key.expose().as_bytes())),
    };
    json_response(
        StatusCode::OK,
        &json!({"key_required": required, "authorized": authorized}),
    )
}
