//! Escalation (`models.<m>.escalate_on`): a whole answer that is cut off by the token limit,
//! empty, or not the JSON a JSON response format asked for is worth another target's try.
//! The failover loop keeps the best such answer so far and moves on; the client gets the
//! first answer that is not worth escalating, or else the best one it had. Streams are
//! never escalated: their first bytes are already the client's.

use serde_json::Value;

use crate::config::EscalateOn;

/// Why an answer (a canonical chat.completion) is to be retried on the next target, when one
/// of `escalate_on` applies.
pub(super) fn reason(
    escalate_on: &[EscalateOn],
    wants_json: bool,
    answer: &str,
) -> Option<EscalateOn> {
    if escalate_on.is_empty() {
        return None;
    }
    let answer: Value = serde_json::from_str(answer).ok()?;
    let choice = answer.pointer("/choices/0")?;
    let message = choice.get("message");
    let content = message
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let has_tool_calls = message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .is_some_and(|calls| !calls.is_empty());
    let found = [
        (
            EscalateOn::Empty,
            content.trim().is_empty() && !has_tool_calls,
        ),
        (
            EscalateOn::Length,
            choice.get("finish_reason").and_then(Value::as_str) == Some("length"),
        ),
        (
            EscalateOn::InvalidJson,
            wants_json && !has_tool_calls && serde_json::from_str::<Value>(content.trim()).is_err(),
        ),
    ];
    found
        .into_iter()
        .find(|(why, applies)| *applies && escalate_on.contains(why))
        .map(|(why, _)| why)
}

/// How good an escalated answer still is: an empty one is worth least.
pub(super) fn worth(reason: EscalateOn) -> u8 {
    match reason {
        EscalateOn::Empty => 0,
        EscalateOn::Length | EscalateOn::InvalidJson => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [EscalateOn; 3] = [
        EscalateOn::Length,
        EscalateOn::Empty,
        EscalateOn::InvalidJson,
    ];

    fn answer(content: &str, finish: &str) -> String {
        serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant",
            "content": content}, "finish_reason": finish}]})
        .to_string()
    }

    #[test]
    fn finds_each_reason_only_when_configured() {
        assert_eq!(
            reason(&ALL, false, &answer("a long", "length")),
            Some(EscalateOn::Length)
        );
        assert_eq!(
            reason(&ALL, false, &answer("  ", "stop")),
            Some(EscalateOn::Empty)
        );
        assert_eq!(
            reason(&ALL, true, &answer("{\"a\": ", "stop")),
            Some(EscalateOn::InvalidJson)
        );
        assert_eq!(reason(&ALL, true, &answer("{\"a\": 1}", "stop")), None);
        assert_eq!(reason(&ALL, false, &answer("not json", "stop")), None);
        assert_eq!(
            reason(&[EscalateOn::Empty], false, &answer("cut", "length")),
            None
        );
        assert_eq!(reason(&[], false, &answer("", "stop")), None);
    }

    #[test]
    fn a_tool_call_is_not_empty() {
        let call = serde_json::json!({"choices": [{"message": {"role": "assistant",
            "content": null, "tool_calls": [{"id": "c", "type": "function",
            "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]});
        assert_eq!(reason(&ALL, true, &call.to_string()), None);
    }
}
