//! Prompts to send, one record per request, as LLM serving benchmarks take
//! them: a JSON-lines file (`{"prompt": ..., "output_tokens": ...}` or chat
//! `{"messages": [...]}`), a ShareGPT file (a JSON array of
//! `{"conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}`), or
//! synthetic prompts like vLLM's `random` dataset, which need no tokenizer.
//! Pure: the caller reads the file and hands its bytes in.
//!
//! Token counts follow mockbackend's rule (about 4 characters to a token),
//! so a synthetic prompt of N tokens is N four-character words.

use hyper::header::{HeaderName, HeaderValue};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::Value;

use crate::plan::Variant;
use crate::template::Text;

/// Characters to a token: the rule mockbackend counts prompts by.
pub use primitives::CHARS_PER_TOKEN;

/// The most synthetic prompts made; a longer run takes them again in turn.
pub const MAX_SYNTHETIC: u64 = 10_000;

/// One request's prompt and how long its answer should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub prompt: Prompt,
    /// Sent as `max_tokens`; `None`: the server decides.
    pub output_tokens: Option<u32>,
}

/// Chat messages, `(role, content)`.
pub type Messages = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Text(String),
    Messages(Messages),
}

/// The synthetic dataset's defaults, as vLLM's: prompt and answer lengths,
/// and the prompts sent when the run does not say (its `--num-prompts`).
pub const DEFAULT_INPUT_LEN: u32 = 1024;
pub const DEFAULT_OUTPUT_LEN: u32 = 128;
pub const DEFAULT_PROMPTS: u64 = 1000;

/// A synthetic dataset setting out of range: which (`input_len`,
/// `output_len`, `range_ratio`), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticError {
    pub key: &'static str,
    pub why: String,
}

/// vLLM's `random` dataset: lengths drawn uniformly within `range_ratio`
/// of the means, after a shared prefix of `prefix_len` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Synthetic {
    pub input_len: u32,
    pub output_len: u32,
    pub range_ratio: f64,
    pub prefix_len: u32,
    pub seed: u64,
}

impl Synthetic {
    /// The settings as given (`None`: the default), checked.
    pub fn checked(
        input_len: Option<u32>,
        output_len: Option<u32>,
        range_ratio: Option<f64>,
        prefix_len: Option<u32>,
        seed: u64,
    ) -> Result<Synthetic, SyntheticError> {
        let positive = |key, v: Option<u32>, default| match v {
            Some(0) => Err(SyntheticError {
                key,
                why: "must be at least 1".into(),
            }),
            v => Ok(v.unwrap_or(default)),
        };
        let range_ratio = range_ratio.unwrap_or(0.0);
        if !(0.0..1.0).contains(&range_ratio) {
            return Err(SyntheticError {
                key: "range_ratio",
                why: format!("{range_ratio} is not from 0 up to 1"),
            });
        }
        Ok(Synthetic {
            input_len: positive("input_len", input_len, DEFAULT_INPUT_LEN)?,
            output_len: positive("output_len", output_len, DEFAULT_OUTPUT_LEN)?,
            range_ratio,
            prefix_len: prefix_len.unwrap_or(0),
            seed,
        })
    }

    pub fn records(&self, count: u64) -> Vec<Record> {
        let mut rng = SmallRng::seed_from_u64(self.seed);
        let prefix = words(&mut rng, self.prefix_len);
        let draw = |rng: &mut SmallRng, mean: u32| -> u32 {
            let low = (f64::from(mean) * (1.0 - self.range_ratio)).round() as u32;
            let high = (f64::from(mean) * (1.0 + self.range_ratio)).round() as u32;
            rng.random_range(low.max(1)..=high.max(1))
        };
        (0..count.min(MAX_SYNTHETIC))
            .map(|_| {
                let input = draw(&mut rng, self.input_len);
                let output = draw(&mut rng, self.output_len);
                let mut text = prefix.clone();
                text.push_str(&words(&mut rng, input));
                Record {
                    prompt: Prompt::Text(text),
                    output_tokens: Some(output),
                }
            })
            .collect()
    }
}

/// Multi-turn chat conversations, as a chat client holds them: each
/// conversation has its own session id and (optional) system prompt, and
/// every turn resends the history so far with one more user message.
/// The history's assistant turns are stand-ins of `answer_tokens` (loadgen
/// does not wait for one turn's answer to write the next), so a turn's
/// beginning is exactly the bytes the previous turn sent: what a server's
/// prefix cache sees of a real conversation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversations {
    pub count: u32,
    pub turns: u32,
    pub system_tokens: u32,
    pub user_tokens: u32,
    pub answer_tokens: u32,
    pub seed: u64,
}

impl Conversations {
    /// Every turn of every conversation with its session id, ordered so
    /// that request `i` is turn `i / count` of conversation `i % count`:
    /// with at least as many conversations as clients, a turn goes out
    /// only after the one before it was answered.
    pub fn records(&self) -> Vec<(String, Record)> {
        let mut rng = SmallRng::seed_from_u64(self.seed);
        // Per conversation: its system prompt (if any), and every exchange.
        let talks: Vec<(Messages, Messages)> = (0..self.count)
            .map(|_| {
                let system = (self.system_tokens > 0)
                    .then(|| ("system".to_string(), words(&mut rng, self.system_tokens)));
                let exchanges = (0..self.turns)
                    .flat_map(|_| {
                        [
                            ("user".to_string(), words(&mut rng, self.user_tokens)),
                            ("assistant".to_string(), words(&mut rng, self.answer_tokens)),
                        ]
                    })
                    .collect();
                (system.into_iter().collect(), exchanges)
            })
            .collect();
        let mut out = Vec::with_capacity((self.count * self.turns) as usize);
        for turn in 0..self.turns as usize {
            for (c, (system, exchanges)) in talks.iter().enumerate() {
                // The history, then this turn's question (its answer is to come).
                let mut messages = system.clone();
                messages.extend_from_slice(&exchanges[..2 * turn + 1]);
                out.push((
                    format!("conversation-{c}"),
                    Record {
                        prompt: Prompt::Messages(messages),
                        output_tokens: Some(self.answer_tokens),
                    },
                ));
            }
        }
        out
    }
}

/// One request per record, in turn (a mix of weight 1 each is taken in
/// order), POSTed as JSON to `path`; with `session`, each record's id goes
/// in that header (for a balancer's `hash $http_x_session_id`).
pub fn variants<'a>(
    records: impl IntoIterator<Item = (Option<&'a str>, &'a Record)>,
    path: &str,
    model: &str,
    stream: bool,
    session: Option<&HeaderName>,
) -> Result<Vec<Variant>, DatasetError> {
    let endpoint = Endpoint::for_path(path);
    let json = HeaderValue::from_static("application/json");
    records
        .into_iter()
        .map(|(id, r)| {
            let mut headers = vec![(hyper::header::CONTENT_TYPE, json.clone())];
            if let (Some(name), Some(id)) = (session, id) {
                let value = HeaderValue::from_str(id)
                    .map_err(|_| DatasetError(format!("{id:?} is not a header value")))?;
                headers.push((name.clone(), value));
            }
            Ok(Variant {
                method: hyper::Method::POST,
                path: Text::literal(path),
                headers,
                body: Some(Text::literal(&r.body(endpoint, model, stream))),
                weight: 1,
            })
        })
        .collect()
}

/// `n` tokens of text: four-character words ("abc "), one token each.
fn words(rng: &mut SmallRng, n: u32) -> String {
    let mut s = String::with_capacity(n as usize * CHARS_PER_TOKEN);
    for _ in 0..n {
        for _ in 0..CHARS_PER_TOKEN - 1 {
            s.push(char::from(b'a' + rng.random_range(0..26u8)));
        }
        s.push(' ');
    }
    s
}

/// A dataset file that does not read: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DatasetError(pub String);

#[derive(Deserialize)]
struct Line {
    prompt: Option<Value>,
    messages: Option<Vec<Message>>,
    #[serde(alias = "max_tokens", alias = "output_len")]
    output_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: Value,
}

#[derive(Deserialize)]
struct ShareGpt {
    #[serde(default)]
    conversations: Vec<Turn>,
}

#[derive(Deserialize)]
struct Turn {
    value: String,
}

/// Reads a dataset file: a JSON array is ShareGPT, anything else JSON lines.
pub fn parse(bytes: &[u8]) -> Result<Vec<Record>, DatasetError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| DatasetError(format!("not UTF-8 text ({e})")))?;
    let records = if text.trim_start().starts_with('[') {
        sharegpt(text)?
    } else {
        json_lines(text)?
    };
    if records.is_empty() {
        return Err(DatasetError("holds no prompts".into()));
    }
    Ok(records)
}

fn json_lines(text: &str) -> Result<Vec<Record>, DatasetError> {
    let mut records = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |why: String| DatasetError(format!("line {}: {why}", n + 1));
        let l: Line = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let prompt = match (l.prompt, l.messages) {
            (Some(Value::String(p)), None) => Prompt::Text(p),
            (None, Some(m)) if !m.is_empty() => Prompt::Messages(
                m.into_iter()
                    .map(|m| (m.role, text_of(&m.content)))
                    .collect(),
            ),
            (Some(_), None) => return Err(at("\"prompt\" must be a string".into())),
            _ => {
                return Err(at(
                    "needs \"prompt\" (a string) or \"messages\" (a non-empty list), not both"
                        .into(),
                ))
            }
        };
        if l.output_tokens == Some(0) {
            return Err(at("\"output_tokens\" must be at least 1".into()));
        }
        records.push(Record {
            prompt,
            output_tokens: l.output_tokens,
        });
    }
    Ok(records)
}

/// As vLLM reads ShareGPT: the first turn is the prompt and the second (the
/// answer, whoever `from` says spoke it) gives the output length, here by
/// the 4-characters rule; conversations of fewer than two turns are skipped.
fn sharegpt(text: &str) -> Result<Vec<Record>, DatasetError> {
    let all: Vec<ShareGpt> = serde_json::from_str(text)
        .map_err(|e| DatasetError(format!("not a ShareGPT JSON array: {e}")))?;
    Ok(all
        .into_iter()
        .filter_map(|c| {
            let mut turns = c.conversations.into_iter();
            let (first, second) = (turns.next()?, turns.next()?);
            let answer = primitives::tokens_for_chars(second.value.chars().count());
            Some(Record {
                prompt: Prompt::Text(first.value),
                output_tokens: Some(answer.max(1)),
            })
        })
        .collect())
}

/// A message's content as text: a string, or its text parts joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Which OpenAI request a record becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`: `messages`.
    Chat,
    /// `/v1/completions`: `prompt`.
    Text,
}

impl Endpoint {
    /// A path ending in `/completions` that is not a chat one takes a
    /// prompt; every other path takes chat messages.
    pub fn for_path(path: &str) -> Endpoint {
        let path = path.split('?').next().unwrap_or(path);
        if path.ends_with("/completions") && !path.ends_with("/chat/completions") {
            Endpoint::Text
        } else {
            Endpoint::Chat
        }
    }
}

impl Record {
    /// The JSON request body for this record.
    pub fn body(&self, endpoint: Endpoint, model: &str, stream: bool) -> String {
        let mut body = serde_json::Map::new();
        body.insert("model".into(), model.into());
        match (endpoint, &self.prompt) {
            (Endpoint::Chat, Prompt::Text(p)) => {
                body.insert(
                    "messages".into(),
                    serde_json::json!([{"role": "user", "content": p}]),
                );
            }
            (Endpoint::Chat, Prompt::Messages(m)) => {
                let m: Vec<Value> = m
                    .iter()
                    .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
                    .collect();
                body.insert("messages".into(), m.into());
            }
            (Endpoint::Text, Prompt::Text(p)) => {
                body.insert("prompt".into(), p.as_str().into());
            }
            (Endpoint::Text, Prompt::Messages(m)) => {
                let joined: Vec<&str> = m.iter().map(|(_, c)| c.as_str()).collect();
                body.insert("prompt".into(), joined.join("\n").into());
            }
        }
        if let Some(n) = self.output_tokens {
            body.insert("max_tokens".into(), n.into());
        }
        if stream {
            body.insert("stream".into(), true.into());
            body.insert(
                "stream_options".into(),
                serde_json::json!({"include_usage": true}),
            );
        }
        Value::Object(body).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_of_prompts_and_messages() {
        let file = concat!(
            "{\"prompt\": \"Tell me a story\", \"output_tokens\": 12}\n",
            "\n",
            "{\"messages\": [{\"role\": \"system\", \"content\": \"brief\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"hi\"}]}], \"max_tokens\": 3}\n",
            "{\"prompt\": \"no length\"}\n",
        );
        let r = parse(file.as_bytes()).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].prompt, Prompt::Text("Tell me a story".into()));
        assert_eq!(r[0].output_tokens, Some(12));
        assert_eq!(
            r[1].prompt,
            Prompt::Messages(vec![
                ("system".into(), "brief".into()),
                ("user".into(), "hi".into())
            ])
        );
        assert_eq!(r[1].output_tokens, Some(3));
        assert_eq!(r[2].output_tokens, None);
    }

    #[test]
    fn mistakes_name_their_line() {
        let err = |t: &str| parse(t.as_bytes()).unwrap_err().0;
        assert!(err("{\"prompt\": \"a\"}\n{\"prompt\": 3}\n").starts_with("line 2: "));
        assert!(err("{\"text\": \"a\"}").contains("needs \"prompt\""));
        assert!(err("{\"prompt\": \"a\", \"output_tokens\": 0}").contains("at least 1"));
        assert!(err("not json").starts_with("line 1: "));
        assert!(err("").contains("no prompts"));
        assert!(err("[{\"conversations\": []}]").contains("no prompts"));
        assert!(err("[1]").contains("ShareGPT"));
    }

    #[test]
    fn sharegpt_takes_the_first_exchange() {
        let file = r#"[
            {"id": "a", "conversations": [{"from": "human", "value": "What is nginx?"}, {"from": "gpt", "value": "A web server and proxy."}, {"from": "human", "value": "more"}]},
            {"id": "b", "conversations": [{"from": "human", "value": "alone"}]}
        ]"#;
        let r = parse(file.as_bytes()).unwrap();
        assert_eq!(r.len(), 1, "a conversation of one turn is skipped");
        assert_eq!(r[0].prompt, Prompt::Text("What is nginx?".into()));
        assert_eq!(r[0].output_tokens, Some(6), "23 characters");
    }

    #[test]
    fn synthetic_prompts_have_the_lengths_asked_for() {
        let s = Synthetic {
            input_len: 100,
            output_len: 20,
            range_ratio: 0.25,
            prefix_len: 10,
            seed: 7,
        };
        let r = s.records(200);
        assert_eq!(r.len(), 200);
        let Prompt::Text(first) = &r[0].prompt else {
            panic!("a text prompt")
        };
        let shared = &first[..10 * CHARS_PER_TOKEN];
        for rec in &r {
            let Prompt::Text(t) = &rec.prompt else {
                panic!("a text prompt")
            };
            assert!(t.starts_with(shared), "the prefix is shared");
            let tokens = t.len() / CHARS_PER_TOKEN;
            assert!((10 + 75..=10 + 125).contains(&tokens), "{tokens}");
            assert!((15..=25).contains(&rec.output_tokens.unwrap()));
        }
        assert_eq!(s.records(200), r, "a seed repeats");
        assert_ne!(Synthetic { seed: 8, ..s }.records(1), s.records(1));
        assert_eq!(s.records(u64::MAX).len() as u64, MAX_SYNTHETIC);
    }

    #[test]
    fn conversation_turns_resend_their_history() {
        let c = Conversations {
            count: 3,
            turns: 4,
            system_tokens: 5,
            user_tokens: 2,
            answer_tokens: 3,
            seed: 1,
        };
        let r = c.records();
        assert_eq!(r.len(), 12);
        // Request i is turn i / 3 of conversation i % 3.
        let ids: Vec<&str> = r.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            &ids[..4],
            [
                "conversation-0",
                "conversation-1",
                "conversation-2",
                "conversation-0"
            ]
        );
        let messages = |i: usize| match &r[i].1.prompt {
            Prompt::Messages(m) => m.clone(),
            Prompt::Text(_) => panic!("chat messages"),
        };
        let (first, second, last) = (messages(0), messages(3), messages(9));
        assert_eq!(first.len(), 2, "system and the first question");
        assert_eq!(second.len(), 4);
        assert_eq!(&second[..2], &first[..], "turn 2 begins with turn 1");
        assert_eq!(second[2].0, "assistant");
        assert_eq!(second[2].1.len(), 3 * CHARS_PER_TOKEN);
        assert_eq!(&last[..4], &second[..], "and so on");
        assert_eq!(last.len(), 8);
        assert_ne!(
            messages(1)[0],
            first[0],
            "each conversation has its own system prompt"
        );
        assert!(r.iter().all(|(_, rec)| rec.output_tokens == Some(3)));
        let name = HeaderName::from_static("x-session-id");
        let v = variants(
            r.iter().map(|(id, rec)| (Some(id.as_str()), rec)),
            "/v1/chat/completions",
            "m",
            true,
            Some(&name),
        )
        .unwrap();
        assert_eq!(v.len(), 12);
        assert_eq!(
            v[4].headers[1],
            (name, HeaderValue::from_static("conversation-1"))
        );
    }

    #[test]
    fn bodies_fit_the_endpoint() {
        let rec = Record {
            prompt: Prompt::Text("hi".into()),
            output_tokens: Some(5),
        };
        let chat: Value = serde_json::from_str(&rec.body(Endpoint::Chat, "m", true)).unwrap();
        assert_eq!(
            chat,
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 5, "stream": true, "stream_options": {"include_usage": true}})
        );
        let text: Value = serde_json::from_str(&rec.body(Endpoint::Text, "m", false)).unwrap();
        assert_eq!(
            text,
            serde_json::json!({"model": "m", "prompt": "hi", "max_tokens": 5})
        );
        assert_eq!(Endpoint::for_path("/v1/completions"), Endpoint::Text);
        assert_eq!(
            Endpoint::for_path("/v1/chat/completions?x=1"),
            Endpoint::Chat
        );
        assert_eq!(Endpoint::for_path("/chat"), Endpoint::Chat);
    }
}
