//! `[load.conversations]` and `[load.dataset]`: LLM-shaped requests for a
//! scenario, built by the engine's dataset module (see scenarios/README.md).

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationSpec {
    /// Conversations going on at once; request i is a turn of
    /// conversation i % count. At least `[load] concurrency`, so each turn
    /// goes after the one before it was answered.
    pub count: u32,
    pub turns: u32,
    /// A system prompt of this many tokens, each conversation its own.
    #[serde(default)]
    pub system_tokens: u32,
    #[serde(default = "user_tokens")]
    pub user_tokens: u32,
    /// Each turn's max_tokens, and the length of the stand-in answers the
    /// history resends.
    #[serde(default = "answer_tokens")]
    pub answer_tokens: u32,
    /// The header that carries the conversation's id, for the balancer's
    /// `hash $http_x_session_id consistent`.
    #[serde(default = "session_header")]
    pub header: String,
    #[serde(default = "chat_path")]
    pub path: String,
    #[serde(default = "super::yes")]
    pub stream: bool,
    #[serde(default = "model")]
    pub model: String,
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// A JSON-lines or ShareGPT file, relative to the scenario; or
    /// `"random"` for vLLM's synthetic prompts.
    pub file: String,
    pub input_len: Option<u32>,
    pub output_len: Option<u32>,
    pub range_ratio: Option<f64>,
    pub prefix_len: Option<u32>,
    #[serde(default = "chat_path")]
    pub path: String,
    #[serde(default = "super::yes")]
    pub stream: bool,
    #[serde(default = "model")]
    pub model: String,
    #[serde(default)]
    pub seed: u64,
}

fn user_tokens() -> u32 {
    32
}

fn answer_tokens() -> u32 {
    16
}

fn session_header() -> String {
    "X-Session-Id".into()
}

fn chat_path() -> String {
    "/v1/chat/completions".into()
}

fn model() -> String {
    engine::DEFAULT_MODEL.into()
}
