//! `GET /v1/models`: the public model names and every enabled provider's `provider/model`,
//! in OpenAI's list shape.

use hyper::{Response, StatusCode};
use serde_json::json;

use crate::http::{ResponseBody, json_response};
use crate::pipeline::Gateway;
use crate::pipeline::resolve::model_ids;

pub fn list(gateway: &Gateway) -> Response<ResponseBody> {
    let snapshot = gateway.snapshot.load();
    let data: Vec<serde_json::Value> = model_ids(&snapshot.config)
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "freeway"}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}
