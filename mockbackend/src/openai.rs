//! OpenAI-compatible request parsing and response shapes: chat completions,
//! legacy completions, their SSE chunks, and `/v1/models`. Pure: the server
//! decides when each chunk goes out.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use primitives::tokens_for_chars;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions`
    Text,
}

/// What an answer will be: parsed from the request, sized by the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub kind: Kind,
    pub id: String,
    pub created: u64,
    pub model: String,
    pub stream: bool,
    pub prompt_tokens: u32,
    /// Tokens the answer has.
    pub tokens: u32,
    /// `length` when `max_tokens` cut the answer short, else `stop`.
    pub finish: &'static str,
    pub server: u16,
    /// `stream_options.include_usage`: as OpenAI, every chunk says
    /// `"usage": null` and a last chunk with `"choices": []` carries it.
    pub include_usage: bool,
    /// vLLM's `stream_options.continuous_usage_stats` (with include_usage):
    /// every chunk carries the usage counted so far.
    pub continuous_usage: bool,
    /// Prompt tokens the port's prefix cache already held, when it has one
    /// (`usage.prompt_tokens_details.cached_tokens`, as OpenAI reports it).
    pub cached_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct RequestBody {
    model: Option<String>,
    messages: Option<Vec<Message>>,
    prompt: Option<Value>,
    max_tokens: Option<Value>,
    max_completion_tokens: Option<Value>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
    #[serde(default)]
    continuous_usage_stats: bool,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    role: Value,
    #[serde(default)]
    content: Value,
}

/// Everything the server needs to fill in that is not in the request.
pub struct Context<'a> {
    pub id: String,
    pub created: u64,
    pub default_model: &'a str,
    pub output_tokens: u32,
    pub server: u16,
    /// Work out the prompt's prefixes (the port has a prefix cache).
    pub prefixes: bool,
}

/// A parsed request: the answer to give, and the prompt's prefixes for a
/// prefix cache: a hash of the prompt up to each boundary (the end of each
/// chat message; every 64 characters of a text prompt) and the prompt
/// tokens up to it.
pub struct Parsed {
    pub answer: Answer,
    pub prefixes: Vec<(u64, u32)>,
}

/// A text prompt's prefix boundary, in characters (16 tokens).
const TEXT_BLOCK: usize = 64;

/// Parses a request; `Err` is the message of a 400 `invalid_request_error`.
pub fn parse(kind: Kind, body: &[u8], cx: Context<'_>) -> Result<Parsed, String> {
    let req: RequestBody = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => format!("invalid request: {e}"),
        _ => "request body is not valid JSON".to_string(),
    })?;
    let mut prompt = Prompt {
        hash: cx.prefixes,
        ..Prompt::default()
    };
    match kind {
        Kind::Chat => {
            let messages = req
                .messages
                .ok_or_else(|| "'messages' is a required property".to_string())?;
            for m in &messages {
                prompt.message(&m.role, &m.content);
            }
        }
        Kind::Text => prompt.text(
            req.prompt
                .as_ref()
                .ok_or_else(|| "'prompt' is a required property".to_string())?,
        ),
    }
    let limit = match req.max_completion_tokens.or(req.max_tokens) {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    format!("max_tokens must be a whole number of at least 1, not {v}")
                })?,
        ),
    };
    let (tokens, finish) = match limit {
        Some(max) if max < cx.output_tokens => (max, "length"),
        _ => (cx.output_tokens, "stop"),
    };
    let options = req.stream_options.unwrap_or_default();
    let answer = Answer {
        kind,
        id: cx.id,
        created: cx.created,
        model: req.model.unwrap_or_else(|| cx.default_model.to_string()),
        stream: req.stream,
        prompt_tokens: prompt.tokens,
        tokens,
        finish,
        server: cx.server,
        include_usage: options.include_usage,
        continuous_usage: options.include_usage && options.continuous_usage_stats,
        cached_tokens: None,
    };
    Ok(Parsed {
        answer,
        prefixes: prompt.prefixes,
    })
}

/// A prompt read piece by piece: its tokens by the 4-characters rule
/// (`primitives::tokens_for_chars`, per message or batch prompt), and
/// a running hash of it with the tokens so far at each boundary.
#[derive(Default)]
struct Prompt {
    hash: bool,
    tokens: u32,
    hasher: std::collections::hash_map::DefaultHasher,
    prefixes: Vec<(u64, u32)>,
}

impl Prompt {
    fn message(&mut self, role: &Value, content: &Value) {
        use std::hash::Hasher;
        let mut chars = 0;
        if self.hash {
            self.hasher.write(role.as_str().unwrap_or("").as_bytes());
            self.hasher.write_u8(0);
        }
        each_text(content, &mut |t| {
            if self.hash {
                self.hasher.write(t.as_bytes());
            }
            chars += t.chars().count();
        });
        self.tokens = self.tokens.saturating_add(tokens_for_chars(chars));
        if self.hash {
            self.hasher.write_u8(0);
            self.prefixes.push((self.hasher.finish(), self.tokens));
        }
    }

    /// A text prompt, or a batch of them (an array), each counted apart.
    fn text(&mut self, prompt: &Value) {
        use std::hash::Hasher;
        let mut boundary = false;
        each_text(prompt, &mut |t| {
            let mut chars = 0usize;
            for c in t.chars() {
                chars += 1;
                if self.hash {
                    let mut utf8 = [0; 4];
                    self.hasher.write(c.encode_utf8(&mut utf8).as_bytes());
                    boundary = chars.is_multiple_of(TEXT_BLOCK);
                    if boundary {
                        let so_far = self.tokens.saturating_add(tokens_for_chars(chars));
                        self.prefixes.push((self.hasher.finish(), so_far));
                    }
                }
            }
            self.tokens = self.tokens.saturating_add(tokens_for_chars(chars));
        });
        if self.hash && !boundary {
            self.prefixes.push((self.hasher.finish(), self.tokens));
        }
    }
}

/// Every piece of text in a string, an array of strings, or chat content
/// parts (`[{"type":"text","text":...}]`).
fn each_text(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| each_text(i, f)),
        Value::Object(o) => {
            if let Some(t) = o.get("text") {
                each_text(t, f);
            }
        }
        _ => {}
    }
}

const WORDS: [&str; 16] = [
    " The",
    " balancer",
    " sent",
    " this",
    " request",
    " to",
    " a",
    " mock",
    " backend",
    " that",
    " answers",
    " one",
    " token",
    " at",
    " a",
    " time.",
];

/// The `i`-th token of every answer; each is one word, so chunks and tokens
/// count the same.
pub fn token(i: u32) -> &'static str {
    let word = WORDS[i as usize % WORDS.len()];
    if i == 0 {
        &word[1..]
    } else {
        word
    }
}

fn content(tokens: u32) -> String {
    (0..tokens).map(token).collect()
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<Details>,
}

#[derive(Serialize)]
struct Details {
    cached_tokens: u32,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<Delta<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

impl Choice<'_> {
    fn blank(finish_reason: Option<&'static str>) -> Self {
        Choice {
            index: 0,
            message: None,
            delta: None,
            text: None,
            logprobs: None,
            finish_reason,
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [Choice<'a>],
    /// Absent, `null` (a chunk before the usage one), or the usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<u16>,
}

impl Answer {
    /// The usage once `completion` tokens have gone out.
    fn usage(&self, completion: u32) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: completion,
            total_tokens: self.prompt_tokens.saturating_add(completion),
            prompt_tokens_details: self.cached_tokens.map(|n| Details { cached_tokens: n }),
        }
    }

    /// What a stream chunk says of usage after `completion` tokens.
    fn chunk_usage(&self, completion: u32) -> Option<Option<Usage>> {
        match (self.include_usage, self.continuous_usage) {
            (_, true) => Some(Some(self.usage(completion))),
            (true, false) => Some(None),
            (false, false) => None,
        }
    }

    fn envelope<'a>(&'a self, object: &'static str, choices: &'a [Choice<'a>]) -> Envelope<'a> {
        Envelope {
            id: &self.id,
            object,
            created: self.created,
            model: &self.model,
            choices,
            usage: None,
            server: None,
        }
    }

    fn choice<'a>(
        &self,
        text: Option<&'a str>,
        finish: Option<&'static str>,
        first: bool,
    ) -> Choice<'a> {
        let blank = Choice::blank(finish);
        match self.kind {
            Kind::Chat => Choice {
                delta: Some(Delta {
                    role: first.then_some("assistant"),
                    content: text,
                }),
                ..blank
            },
            Kind::Text => Choice {
                text: Some(text.unwrap_or("")),
                ..blank
            },
        }
    }

    fn chunk_object(&self) -> &'static str {
        match self.kind {
            Kind::Chat => "chat.completion.chunk",
            Kind::Text => "text_completion",
        }
    }

    /// The whole answer as one JSON document (`"stream": false`).
    pub fn full_body(&self) -> Vec<u8> {
        let text = content(self.tokens);
        let blank = Choice::blank(Some(self.finish));
        let (object, choice) = match self.kind {
            Kind::Chat => (
                "chat.completion",
                Choice {
                    message: Some(ChatMessage {
                        role: "assistant",
                        content: &text,
                    }),
                    ..blank
                },
            ),
            Kind::Text => (
                "text_completion",
                Choice {
                    text: Some(&text),
                    ..blank
                },
            ),
        };
        let choices = [choice];
        let mut e = self.envelope(object, &choices);
        e.usage = Some(Some(self.usage(self.tokens)));
        e.server = Some(self.server);
        serde_json::to_vec(&e).unwrap_or_default()
    }

    /// SSE event carrying token `i`; the first one also carries the role.
    pub fn chunk(&self, i: u32) -> Bytes {
        let choices = [self.choice(Some(token(i)), None, i == 0)];
        let mut e = self.envelope(self.chunk_object(), &choices);
        e.usage = self.chunk_usage(i + 1);
        sse(&e)
    }

    /// The closing events: the finish reason (an empty delta), the usage
    /// chunk when the request asked for it, then `[DONE]`.
    pub fn last_chunks(&self) -> Bytes {
        let mut finish = self.choice(None, Some(self.finish), self.tokens == 0);
        if self.kind == Kind::Chat {
            finish.delta = Some(Delta {
                role: (self.tokens == 0).then_some("assistant"),
                content: None,
            });
        }
        let choices = [finish];
        let mut e = self.envelope(self.chunk_object(), &choices);
        e.usage = self.chunk_usage(self.tokens);
        let mut out = sse(&e).to_vec();
        if self.include_usage {
            let mut e = self.envelope(self.chunk_object(), &[]);
            e.usage = Some(Some(self.usage(self.tokens)));
            out.extend_from_slice(&sse(&e));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        Bytes::from(out)
    }
}

fn sse<T: Serialize>(event: &T) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    let _ = serde_json::to_writer(&mut out, event);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn model_object(model: &str) -> Value {
    serde_json::json!({"id": model, "object": "model", "created": 0, "owned_by": "lbkit-mockbackend"})
}

/// `GET /v1/models`.
pub fn models(model: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"object": "list", "data": [model_object(model)]}))
        .unwrap_or_default()
}

/// `GET /v1/models/{id}`: the model, or OpenAI's 404 for another id.
pub fn model(model: &str, id: &str) -> Option<Vec<u8>> {
    (id == model).then(|| serde_json::to_vec(&model_object(model)).unwrap_or_default())
}

/// OpenAI's 404 for a model this port does not serve.
pub fn model_not_found(id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "error": {"message": format!("The model '{id}' does not exist"), "type": "invalid_request_error", "param": "model", "code": "model_not_found"}
    }))
    .unwrap_or_default()
}

/// OpenAI's error shape, for 4xx/5xx answers on `/v1/*`.
pub fn error(message: &str, kind: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "error": {"message": message, "type": kind, "param": null, "code": null}
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context {
            id: "chatcmpl-1".into(),
            created: 1700000000,
            default_model: "mock-model",
            output_tokens: 16,
            server: 8001,
            prefixes: true,
        }
    }

    fn answer(kind: Kind, body: &[u8]) -> Answer {
        parse(kind, body, cx()).unwrap().answer
    }

    fn events(bytes: &[u8]) -> Vec<String> {
        std::str::from_utf8(bytes)
            .unwrap()
            .split("\n\n")
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.strip_prefix("data: ")
                    .expect("every event is a data line")
                    .to_string()
            })
            .collect()
    }

    fn json(event: &str) -> Value {
        serde_json::from_str(event).unwrap()
    }

    #[test]
    fn chat_request_is_sized_by_max_tokens() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hello there world"}],"max_tokens":5,"stream":true}"#;
        let a = answer(Kind::Chat, body);
        // 17 characters at 4 per token.
        assert_eq!(
            (a.tokens, a.finish, a.prompt_tokens, a.stream),
            (5, "length", 5, true)
        );
        assert_eq!(a.model, "m");
        let a = answer(Kind::Chat, br#"{"messages":[]}"#);
        assert_eq!(
            (a.tokens, a.finish, a.model.as_str()),
            (16, "stop", "mock-model")
        );
    }

    #[test]
    fn prompt_tokens_follow_the_prompts_length() {
        let tokens = |kind, body: &str| answer(kind, body.as_bytes()).prompt_tokens;
        let chat = |content: &str| {
            let body = serde_json::json!({"messages": [{"role": "user", "content": content}]});
            tokens(Kind::Chat, &body.to_string())
        };
        assert_eq!(chat(""), 0);
        assert_eq!(chat("a"), 1, "any text is at least a token");
        assert_eq!(chat("abcd"), 1);
        assert_eq!(chat("abcde"), 2);
        assert_eq!(chat(&"x".repeat(4000)), 1000);
        assert_eq!(chat("éèêë"), 1, "characters, not bytes");
        // Per message, and content parts count.
        let body = r#"{"messages":[{"role":"system","content":"abcde"},{"role":"user","content":[{"type":"text","text":"abc"},{"type":"image_url"}]}]}"#;
        assert_eq!(tokens(Kind::Chat, body), 2 + 1);
        assert_eq!(tokens(Kind::Text, r#"{"prompt":["abcd","efgh1"]}"#), 3);
    }

    #[test]
    fn a_conversations_turns_share_their_prefixes() {
        let turn1 = r#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}"#;
        let turn2 = r#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"more"}]}"#;
        let p1 = parse(Kind::Chat, turn1.as_bytes(), cx()).unwrap().prefixes;
        let p2 = parse(Kind::Chat, turn2.as_bytes(), cx()).unwrap().prefixes;
        assert_eq!(p1.len(), 2);
        assert_eq!(&p2[..2], &p1[..], "turn 2 begins with turn 1");
        assert_eq!(p2[3].1, 2 + 1 + 2 + 1, "tokens up to each boundary");
        let other = r#"{"messages":[{"role":"user","content":"be brief"}]}"#;
        let p3 = parse(Kind::Chat, other.as_bytes(), cx()).unwrap().prefixes;
        assert_ne!(p3[0].0, p1[0].0, "the role is part of the prefix");
        // Text prompts: a boundary every 64 characters, and at the end.
        let long = format!(r#"{{"prompt":"{}"}}"#, "y".repeat(150));
        let p = parse(Kind::Text, long.as_bytes(), cx()).unwrap().prefixes;
        let tokens: Vec<u32> = p.iter().map(|(_, t)| *t).collect();
        assert_eq!(tokens, [16, 32, 38]);
        let no_cache = Context {
            prefixes: false,
            ..cx()
        };
        let parsed = parse(Kind::Text, long.as_bytes(), no_cache).unwrap();
        assert!(parsed.prefixes.is_empty());
        assert_eq!(parsed.answer.prompt_tokens, 38);
    }

    #[test]
    fn bad_requests_say_what_is_missing() {
        let err = |kind, body: &[u8]| parse(kind, body, cx()).err().unwrap();
        assert!(err(Kind::Chat, b"{}").contains("'messages'"));
        assert!(err(Kind::Text, b"{}").contains("'prompt'"));
        assert!(err(Kind::Chat, b"{").contains("not valid JSON"));
        assert!(err(Kind::Text, br#"{"prompt":"x","max_tokens":0}"#).contains("max_tokens"));
    }

    #[test]
    fn stream_chunks_add_up_to_the_full_answer() {
        let body = br#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}"#;
        let a = answer(Kind::Chat, body);
        let mut streamed = String::new();
        for i in 0..a.tokens {
            let e = events(&a.chunk(i));
            assert_eq!(e.len(), 1);
            let v = json(&e[0]);
            assert_eq!(v["object"], "chat.completion.chunk");
            assert_eq!(v["choices"][0]["delta"]["role"].is_string(), i == 0);
            assert!(v.get("usage").is_none(), "not asked for: no usage field");
            streamed += v["choices"][0]["delta"]["content"].as_str().unwrap();
        }
        let last = events(&a.last_chunks());
        assert_eq!(last.len(), 2, "the finish chunk and [DONE]: {last:?}");
        assert_eq!(last[1], "[DONE]");
        let v = json(&last[0]);
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["choices"][0]["delta"], serde_json::json!({}));
        assert!(v.get("usage").is_none(), "{v}");
        let full: Value = serde_json::from_slice(&a.full_body()).unwrap();
        assert_eq!(full["choices"][0]["message"]["content"], streamed.as_str());
        assert_eq!(streamed, "The balancer sent this");
        assert_eq!(
            full["usage"]["total_tokens"], 5,
            "a whole answer always has usage"
        );
        assert!(full["usage"].get("prompt_tokens_details").is_none());
    }

    /// OpenAI's shape with `stream_options.include_usage`: `"usage": null`
    /// on every chunk, then one with no choices that carries it.
    #[test]
    fn include_usage_adds_a_last_chunk_without_choices() {
        let body = br#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"stream":true,"stream_options":{"include_usage":true}}"#;
        let a = answer(Kind::Chat, body);
        let v = json(&events(&a.chunk(0))[0]);
        assert!(v["usage"].is_null() && v.get("usage").is_some(), "{v}");
        let last = events(&a.last_chunks());
        assert_eq!(last.len(), 3, "{last:?}");
        let finish = json(&last[0]);
        assert_eq!(finish["choices"][0]["finish_reason"], "length");
        assert!(finish["usage"].is_null());
        let usage = json(&last[1]);
        assert_eq!(usage["choices"], serde_json::json!([]));
        assert_eq!(
            usage["usage"],
            serde_json::json!({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})
        );
        assert_eq!(usage["object"], "chat.completion.chunk");
        assert_eq!(last[2], "[DONE]");
    }

    /// vLLM's `continuous_usage_stats`: the usage so far on every chunk.
    #[test]
    fn continuous_usage_counts_on_every_chunk() {
        let body = br#"{"prompt":"abcdefgh","max_tokens":3,"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}"#;
        let a = answer(Kind::Text, body);
        for i in 0..3 {
            let v = json(&events(&a.chunk(i))[0]);
            assert_eq!(v["usage"]["completion_tokens"], i + 1);
            assert_eq!(v["usage"]["prompt_tokens"], 2);
        }
        let last = events(&a.last_chunks());
        assert_eq!(json(&last[0])["usage"]["completion_tokens"], 3);
        assert_eq!(json(&last[1])["choices"], serde_json::json!([]));
        // Without include_usage, vLLM ignores continuous_usage_stats.
        let body =
            br#"{"prompt":"x","stream":true,"stream_options":{"continuous_usage_stats":true}}"#;
        let a = answer(Kind::Text, body);
        assert!(json(&events(&a.chunk(0))[0]).get("usage").is_none());
    }

    #[test]
    fn cached_tokens_are_reported_as_openai_does() {
        let mut a = answer(Kind::Chat, br#"{"messages":[]}"#);
        a.cached_tokens = Some(7);
        let full: Value = serde_json::from_slice(&a.full_body()).unwrap();
        assert_eq!(full["usage"]["prompt_tokens_details"]["cached_tokens"], 7);
    }

    #[test]
    fn text_completion_chunks_carry_text() {
        let a = answer(Kind::Text, br#"{"prompt":["a b","c"],"stream":true}"#);
        assert_eq!(a.prompt_tokens, 2);
        let v = json(&events(&a.chunk(1))[0]);
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["choices"][0]["text"], " balancer");
        let v = json(&events(&a.last_chunks())[0]);
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["choices"][0]["text"], "");
    }

    #[test]
    fn models_and_one_model() {
        let m: Value = serde_json::from_slice(&model("org/m", "org/m").unwrap()).unwrap();
        assert_eq!(
            (m["id"].as_str(), m["object"].as_str()),
            (Some("org/m"), Some("model"))
        );
        assert!(model("org/m", "other").is_none());
        let e: Value = serde_json::from_slice(&model_not_found("other")).unwrap();
        assert_eq!(e["error"]["code"], "model_not_found");
    }
}
