//! OpenAI's `chat.completion` and `chat.completion.chunk` objects, shared with the other
//! translating adapters through the SDK (typed, so fields come out in OpenAI's order).

pub(crate) use freeway_plugin_sdk::openai::*;
