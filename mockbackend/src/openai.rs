//! OpenAI-compatible request parsing and response shapes: chat completions,
//! legacy completions, their SSE chunks, and `/v1/models`. Pure: the server
//! decides when each chunk goes out.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

#[derive(Deserialize)]
struct Message {
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
}

/// Parses a request; `Err` is the message of a 400 `invalid_request_error`.
pub fn parse(kind: Kind, body: &[u8], cx: Context<'_>) -> Result<Answer, String> {
    let req: RequestBody = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => format!("invalid request: {e}"),
        _ => "request body is not valid JSON".to_string(),
    })?;
    let prompt_tokens = match kind {
        Kind::Chat => {
            let messages = req
                .messages
                .ok_or_else(|| "'messages' is a required property".to_string())?;
            messages.iter().map(|m| words_in(&m.content)).sum()
        }
        Kind::Text => words_in(
            req.prompt
                .as_ref()
                .ok_or_else(|| "'prompt' is a required property".to_string())?,
        ),
    };
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
    Ok(Answer {
        kind,
        id: cx.id,
        created: cx.created,
        model: req.model.unwrap_or_else(|| cx.default_model.to_string()),
        stream: req.stream,
        prompt_tokens,
        tokens,
        finish,
        server: cx.server,
    })
}

/// Whitespace-separated words in a string, an array of strings, or chat
/// content parts (`[{"type":"text","text":...}]`): a stand-in for a tokenizer.
fn words_in(v: &Value) -> u32 {
    let n = match v {
        Value::String(s) => s.split_whitespace().count(),
        Value::Array(items) => items.iter().map(|i| words_in(i) as usize).sum(),
        Value::Object(o) => o.get("text").map_or(0, |t| words_in(t) as usize),
        _ => 0,
    };
    u32::try_from(n).unwrap_or(u32::MAX)
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
    finish_reason: Option<&'static str>,
}

impl Choice<'_> {
    fn blank(finish_reason: Option<&'static str>) -> Self {
        Choice {
            index: 0,
            message: None,
            delta: None,
            text: None,
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
    choices: [Choice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<u16>,
}

impl Answer {
    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.tokens,
            total_tokens: self.prompt_tokens.saturating_add(self.tokens),
        }
    }

    fn envelope<'a>(&'a self, object: &'static str, choice: Choice<'a>) -> Envelope<'a> {
        Envelope {
            id: &self.id,
            object,
            created: self.created,
            model: &self.model,
            choices: [choice],
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
        let mut e = self.envelope(object, choice);
        e.usage = Some(self.usage());
        e.server = Some(self.server);
        serde_json::to_vec(&e).unwrap_or_default()
    }

    /// SSE event carrying token `i`; the first one also carries the role.
    pub fn chunk(&self, i: u32) -> Bytes {
        let e = self.envelope(
            self.chunk_object(),
            self.choice(Some(token(i)), None, i == 0),
        );
        sse(&e)
    }

    /// The closing events: the finish reason with `usage`, then `[DONE]`.
    pub fn last_chunks(&self) -> Bytes {
        let mut e = self.envelope(
            self.chunk_object(),
            self.choice(None, Some(self.finish), self.tokens == 0),
        );
        if self.kind == Kind::Chat {
            e.choices[0].delta = Some(Delta {
                role: None,
                content: None,
            });
        }
        e.usage = Some(self.usage());
        let mut out = sse(&e).to_vec();
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

/// `GET /v1/models`.
pub fn models(model: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "object": "list",
        "data": [{"id": model, "object": "model", "created": 0, "owned_by": "lbkit-mockbackend"}],
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
        }
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

    #[test]
    fn chat_request_is_sized_by_max_tokens() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hello there world"}],"max_tokens":5,"stream":true}"#;
        let a = parse(Kind::Chat, body, cx()).unwrap();
        assert_eq!(
            (a.tokens, a.finish, a.prompt_tokens, a.stream),
            (5, "length", 3, true)
        );
        assert_eq!(a.model, "m");
        let a = parse(Kind::Chat, br#"{"messages":[]}"#, cx()).unwrap();
        assert_eq!(
            (a.tokens, a.finish, a.model.as_str()),
            (16, "stop", "mock-model")
        );
    }

    #[test]
    fn bad_requests_say_what_is_missing() {
        assert!(parse(Kind::Chat, b"{}", cx())
            .unwrap_err()
            .contains("'messages'"));
        assert!(parse(Kind::Text, b"{}", cx())
            .unwrap_err()
            .contains("'prompt'"));
        assert!(parse(Kind::Chat, b"{", cx())
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(parse(Kind::Text, br#"{"prompt":"x","max_tokens":0}"#, cx())
            .unwrap_err()
            .contains("max_tokens"));
    }

    #[test]
    fn stream_chunks_add_up_to_the_full_answer() {
        let body = br#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}"#;
        let a = parse(Kind::Chat, body, cx()).unwrap();
        let mut streamed = String::new();
        for i in 0..a.tokens {
            let e = events(&a.chunk(i));
            assert_eq!(e.len(), 1);
            let v: Value = serde_json::from_str(&e[0]).unwrap();
            assert_eq!(v["object"], "chat.completion.chunk");
            assert_eq!(v["choices"][0]["delta"]["role"].is_string(), i == 0);
            streamed += v["choices"][0]["delta"]["content"].as_str().unwrap();
        }
        let last = events(&a.last_chunks());
        assert_eq!(last.len(), 2);
        assert_eq!(last[1], "[DONE]");
        let v: Value = serde_json::from_str(&last[0]).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], 4);
        assert_eq!(v["usage"]["prompt_tokens"], 1);
        let full: Value = serde_json::from_slice(&a.full_body()).unwrap();
        assert_eq!(full["choices"][0]["message"]["content"], streamed.as_str());
        assert_eq!(streamed, "The balancer sent this");
        assert_eq!(full["usage"]["total_tokens"], 5);
    }

    #[test]
    fn text_completion_chunks_carry_text() {
        let a = parse(Kind::Text, br#"{"prompt":["a b","c"],"stream":true}"#, cx()).unwrap();
        assert_eq!(a.prompt_tokens, 3);
        let v: Value = serde_json::from_str(&events(&a.chunk(1))[0]).unwrap();
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["choices"][0]["text"], " balancer");
        let v: Value = serde_json::from_str(&events(&a.last_chunks())[0]).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["completion_tokens"], 16);
    }
}
