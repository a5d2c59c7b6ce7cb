//! Context fitting, as the bundled fitters (`middle-out`, `summarize`) do it: a conversation
//! over its prompt budget keeps every system message, the first user turn and the newest
//! turns; whole turns go from the middle (a turn is a user message and everything up to the
//! next one, so an assistant's tool call always stays with its tool results and user and
//! assistant keep alternating); when what must stay is still too big, the single largest
//! message is cut in its middle with a marker.
//!
//! Sizes are counted as the host counts them — text bytes plus each tool call's JSON, over
//! four — so a request this module fits is one the host agrees fits.
//!
//! Enabled by the SDK's `fitting` feature.

use serde_json::{Map, Value};

use crate::fitter::exports::freeway::plugin::fitting::{Fitted, Limits};
use crate::http::error;
use crate::types::{Error, ErrorKind};

/// What replaces the middle of a message that is cut; `{}` is the number of characters cut.
pub const CUT_MARKER: &str =
    "\n\n[... {} characters left out by the gateway to fit the context window ...]\n\n";

/// The fewest characters a cut message keeps (half at each end).
const MIN_KEPT_CHARS: usize = 200;

/// A request's conversation, measured and split into turns.
pub struct Conversation {
    request: Map<String, Value>,
    messages: Vec<Value>,
    /// Each message's size in the host's units (bytes of text and tool-call JSON).
    sizes: Vec<usize>,
    /// Message index ranges of the turns after the first and before the last, oldest first.
    middle: Vec<std::ops::Range<usize>>,
}

/// Which messages stay, and what happened to the rest.
pub struct Cut {
    /// Indexes (into the original messages) of the messages kept, in order.
    kept: Vec<usize>,
    /// Indexes of the messages left out, in order.
    pub dropped: Vec<usize>,
    /// A message cut in its middle: its index and its new content.
    truncated: Option<(usize, Value)>,
    /// Characters left out in all.
    dropped_chars: usize,
}

impl Conversation {
    /// Read an OpenAI chat-completions body.
    pub fn parse(request: &str) -> Result<Self, Error> {
        let Ok(Value::Object(mut request)) = serde_json::from_str::<Value>(request) else {
            return Err(error(
                ErrorKind::BadRequest,
                false,
                "the request is not a JSON object",
            ));
        };
        let Some(Value::Array(messages)) = request.remove("messages") else {
            return Err(error(
                ErrorKind::BadRequest,
                false,
                "the request has no `messages` array",
            ));
        };
        let sizes = messages.iter().map(size).collect();
        let starts: Vec<usize> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| role(m) == "user")
            .map(|(i, _)| i)
            .collect();
        let middle = if starts.len() > 2 {
            starts
                .windows(2)
                .skip(1)
                .map(|pair| pair[0]..pair[1])
                .collect()
        } else {
            Vec::new()
        };
        Ok(Conversation {
            request,
            messages,
            sizes,
            middle,
        })
    }

    /// The whole conversation's size in estimated tokens (as the host estimates it).
    pub fn tokens(&self) -> u32 {
        u32::try_from(self.sizes.iter().sum::<usize>() / 4).unwrap_or(u32::MAX)
    }

    /// Choose what stays within `budget_chars`: the newest middle turns that fit after what
    /// must stay, then, if still over, one message cut in its middle. `Err` when even that
    /// cannot fit.
    pub fn cut(&self, budget_chars: usize, limits: &Limits) -> Result<Cut, Error> {
        let in_middle = |i: usize| self.middle.iter().any(|turn| turn.contains(&i));
        // System messages stay wherever they are; so does everything outside the middle.
        let pinned = |i: usize| !in_middle(i) || is_system(&self.messages[i]);
        let mut keep: Vec<bool> = (0..self.messages.len()).map(pinned).collect();
        let mut used: usize = (0..self.messages.len())
            .filter(|&i| keep[i])
            .map(|i| self.sizes[i])
            .sum();
        for turn in self.middle.iter().rev() {
            let extra: usize = turn
                .clone()
                .filter(|&i| !keep[i])
                .map(|i| self.sizes[i])
                .sum();
            if used + extra > budget_chars {
                break;
            }
            used += extra;
            for i in turn.clone() {
                keep[i] = true;
            }
        }
        let mut cut = Cut {
            kept: (0..self.messages.len()).filter(|&i| keep[i]).collect(),
            dropped: (0..self.messages.len()).filter(|&i| !keep[i]).collect(),
            truncated: None,
            dropped_chars: (0..self.messages.len())
                .filter(|&i| !keep[i])
                .map(|i| self.sizes[i])
                .sum(),
        };
        if used > budget_chars {
            let over = used - budget_chars;
            let largest = cut
                .kept
                .iter()
                .copied()
                .filter(|&i| text_len(&self.messages[i]) > 0)
                .max_by_key(|&i| text_len(&self.messages[i]));
            let shortened = largest.and_then(|i| {
                cut_middle(&self.messages[i], over).map(|(message, removed)| (i, message, removed))
            });
            let Some((i, message, removed)) = shortened else {
                return Err(error(
                    ErrorKind::ContextLength,
                    true,
                    format!(
                        "the messages that must stay (system messages, the first and the newest \
                         turn) need about {} tokens, over the {} this target leaves for the \
                         prompt ({})",
                        used / 4,
                        budget_chars / 4,
                        limits.target
                    ),
                ));
            };
            cut.dropped_chars += removed;
            cut.truncated = Some((i, message));
        }
        Ok(cut)
    }

    /// The fitted request: the kept messages, with `insert` (a summary) in place of the first
    /// dropped message.
    pub fn fitted(&self, cut: &Cut, insert: Option<Value>) -> Fitted {
        let first_dropped = cut.dropped.first().copied();
        let mut messages = Vec::with_capacity(cut.kept.len() + 1);
        let mut insert = insert;
        let inserting = insert.is_some() && first_dropped.is_some();
        for &i in &cut.kept {
            if first_dropped.is_some_and(|d| d < i)
                && let Some(summary) = insert.take()
            {
                messages.push(summary);
            }
            match &cut.truncated {
                Some((at, message)) if *at == i => messages.push(message.clone()),
                _ => messages.push(self.messages[i].clone()),
            }
        }
        let added = u32::from(inserting && insert.is_none());
        let mut request = self.request.clone();
        request.insert("messages".into(), Value::Array(messages));
        Fitted {
            body: Value::Object(request).to_string(),
            dropped_messages: cut.dropped.len() as u32,
            dropped_tokens: u32::try_from(cut.dropped_chars / 4).unwrap_or(u32::MAX),
            truncated_messages: u32::from(cut.truncated.is_some()),
            added_messages: added,
        }
    }

    /// The dropped messages as a plain transcript (`role: text` per message, tool calls
    /// named), at most `max_chars` long (its middle cut, as any message).
    pub fn transcript(&self, cut: &Cut, max_chars: usize) -> String {
        let mut text = String::new();
        for &i in &cut.dropped {
            let message = &self.messages[i];
            text.push_str(role(message));
            text.push_str(": ");
            text.push_str(&message_text(message));
            if let Some(Value::Array(calls)) = message.get("tool_calls") {
                for call in calls {
                    let name = call.pointer("/function/name").and_then(Value::as_str);
                    let args = call.pointer("/function/arguments").and_then(Value::as_str);
                    text.push_str(&format!(
                        " [called {}({})]",
                        name.unwrap_or("?"),
                        args.unwrap_or("")
                    ));
                }
            }
            text.push('\n');
        }
        if text.len() > max_chars {
            let half = max_chars / 2;
            let head = floor_boundary(&text, half);
            let tail = ceil_boundary(&text, text.len() - half);
            text = format!("{}\n[...]\n{}", &text[..head], &text[tail..]);
        }
        text
    }
}

/// The prompt budget in the host's units (bytes of text): four per estimated token.
pub fn budget_chars(limits: &Limits) -> usize {
    limits.budget as usize * 4
}

fn role(message: &Value) -> &str {
    message.get("role").and_then(Value::as_str).unwrap_or("")
}

fn is_system(message: &Value) -> bool {
    matches!(role(message), "system" | "developer")
}

/// A message's size as the host counts it: text bytes plus each tool call's JSON.
fn size(message: &Value) -> usize {
    let calls: usize = match message.get("tool_calls") {
        Some(Value::Array(calls)) => calls.iter().map(|c| c.to_string().len()).sum(),
        _ => 0,
    };
    text_len(message) + calls
}

fn text_len(message: &Value) -> usize {
    match message.get("content") {
        Some(Value::String(text)) => text.len(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(str::len)
            .sum(),
        _ => 0,
    }
}

fn message_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// `message` with `over` more characters (plus the marker's) cut from the middle of its text
/// (its largest text part), and how many characters went; `None` when too little would stay.
fn cut_middle(message: &Value, over: usize) -> Option<(Value, usize)> {
    let mut message = message.clone();
    let text: &mut Value = match message.get_mut("content")? {
        Value::String(_) => message.get_mut("content")?,
        Value::Array(parts) => parts
            .iter_mut()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .max_by_key(|p| p.get("text").and_then(Value::as_str).map_or(0, str::len))?
            .get_mut("text")?,
        _ => return None,
    };
    let original = text.as_str()?;
    let len = original.len();
    // The marker's own length depends on the number in it; allow for its widest form.
    let marker_len = CUT_MARKER.len() + len.to_string().len();
    let keep = len.checked_sub(over + marker_len)?;
    if keep < MIN_KEPT_CHARS {
        return None;
    }
    let head = floor_boundary(original, keep / 2);
    let tail = ceil_boundary(original, len - (keep - keep / 2));
    let removed = tail - head;
    let marker = CUT_MARKER.replace("{}", &removed.to_string());
    let shortened = format!("{}{marker}{}", &original[..head], &original[tail..]);
    let removed_net = len.saturating_sub(shortened.len());
    *text = Value::String(shortened);
    Some((message, removed_net))
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits(budget: u32) -> Limits {
        Limits {
            target: "p/m".into(),
            context_window: Some(budget + 100),
            max_input_tokens: None,
            reserved_output: 100,
            budget,
        }
    }

    fn text(role: &str, chars: usize) -> Value {
        json!({"role": role, "content": "x".repeat(chars)})
    }

    fn conversation(messages: Vec<Value>) -> Conversation {
        Conversation::parse(&json!({"model": "m", "messages": messages}).to_string())
            .expect("valid")
    }

    fn roles(fitted: &Fitted) -> Vec<String> {
        let body: Value = serde_json::from_str(&fitted.body).expect("json");
        body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["role"].as_str().unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn drops_whole_middle_turns_and_keeps_the_ends() {
        let mut messages = vec![text("system", 40), text("user", 40), text("assistant", 40)];
        for _ in 0..10 {
            messages.push(text("user", 400));
            messages.push(text("assistant", 400));
        }
        messages.push(text("user", 40));
        let c = conversation(messages);
        // Room for the pinned 160 characters plus two middle turns of 800.
        let cut = c.cut(1800, &limits(450)).expect("fits");
        let fitted = c.fitted(&cut, None);
        assert_eq!(fitted.dropped_messages, 16);
        assert_eq!(fitted.dropped_tokens, 16 * 100);
        assert_eq!(fitted.truncated_messages, 0);
        assert_eq!(
            roles(&fitted),
            [
                "system",
                "user",
                "assistant",
                "user",
                "assistant",
                "user",
                "assistant",
                "user"
            ]
        );
    }

    #[test]
    fn a_tool_call_stays_with_its_results() {
        let call = json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1",
            "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
        let result = json!({"role": "tool", "tool_call_id": "c1", "content": "y".repeat(300)});
        let c = conversation(vec![
            text("user", 40),
            text("assistant", 40),
            text("user", 40),
            call,
            result,
            text("assistant", 40),
            text("user", 40),
        ]);
        // The middle turn (user, call, result, answer) does not fit whole: it goes whole.
        let cut = c.cut(300, &limits(75)).expect("fits");
        assert_eq!(cut.dropped, [2, 3, 4, 5]);
        let fitted = c.fitted(&cut, None);
        assert_eq!(roles(&fitted), ["user", "assistant", "user"]);
    }

    #[test]
    fn one_oversized_message_is_cut_in_its_middle() {
        let long = format!("{}{}", "a".repeat(5000), "b".repeat(5000));
        let c = conversation(vec![
            json!({"role": "system", "content": "be brief"}),
            json!({"role": "user", "content": long}),
        ]);
        let cut = c.cut(2000, &limits(500)).expect("fits");
        let fitted = c.fitted(&cut, None);
        assert_eq!(fitted.truncated_messages, 1);
        assert_eq!(fitted.dropped_messages, 0);
        let body: Value = serde_json::from_str(&fitted.body).expect("json");
        let content = body["messages"][1]["content"].as_str().expect("text");
        assert!(content.starts_with("aaaa") && content.ends_with("bbbb"));
        assert!(content.contains("characters left out by the gateway"));
        let total: usize = 8 + content.len();
        assert!(total <= 2000, "{total}");
    }

    #[test]
    fn refuses_what_cannot_fit() {
        let c = conversation(vec![text("system", 3000), text("user", 3000)]);
        let error = c.cut(400, &limits(100)).err().expect("cannot fit");
        assert_eq!(error.kind, ErrorKind::ContextLength);
    }

    #[test]
    fn cuts_respect_utf8() {
        let long = "é".repeat(3000);
        let c = conversation(vec![json!({"role": "user", "content": long})]);
        let cut = c.cut(1000, &limits(250)).expect("fits");
        let fitted = c.fitted(&cut, None);
        assert!(serde_json::from_str::<Value>(&fitted.body).is_ok());
    }

    #[test]
    fn a_summary_takes_the_place_of_the_span() {
        let mut messages = vec![text("user", 40), text("assistant", 40)];
        for _ in 0..4 {
            messages.push(text("user", 400));
            messages.push(text("assistant", 400));
        }
        messages.push(text("user", 40));
        let c = conversation(messages);
        let cut = c.cut(200, &limits(50)).expect("fits");
        let summary = json!({"role": "system", "content": "summary"});
        let fitted = c.fitted(&cut, Some(summary));
        assert_eq!(fitted.added_messages, 1);
        assert_eq!(roles(&fitted), ["user", "assistant", "system", "user"]);
        assert!(c.transcript(&cut, 10_000).starts_with("user: xxx"));
        assert!(c.transcript(&cut, 100).len() < 120);
    }
}
