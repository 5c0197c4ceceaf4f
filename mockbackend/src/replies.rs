//! The seed's stand-in endpoints as pure functions from request bytes to
//! response bytes: seed 003's text reply, `/chat`, `/completions`, and the JSON
//! error shape every non-OpenAI error shares.

use serde::{Deserialize, Serialize};

/// Seed 003's `GET` reply: "response from: <port>", byte for byte.
pub fn text_reply(port: u16) -> String {
    format!("响应来自:{port}")
}

/// An ISO-8601 timestamp with microseconds, as the seed's `datetime.isoformat()`,
/// in UTC with its `Z` so it parses the same everywhere.
pub fn timestamp() -> String {
    let mut out = Vec::with_capacity(27);
    write_timestamp(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `timestamp()` to `out`. Formatting a date is most of the cost of
/// a small JSON answer, so each thread keeps the current second's text and
/// only appends the microseconds.
pub fn write_timestamp(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    use std::io::Write as _;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != since.as_secs() {
            let text = humantime::format_rfc3339_seconds(now).to_string();
            *cached = (since.as_secs(), text.trim_end_matches('Z').to_string());
        }
        out.extend_from_slice(cached.1.as_bytes());
    });
    let _ = write!(out, ".{:06}Z", since.subsec_micros());
}

/// Appends `s` as a JSON string, quotes and escapes included.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    server: u16,
    timestamp: &'a str,
}

pub fn error_json(message: &str, server: u16) -> Vec<u8> {
    let ts = timestamp();
    serde_json::to_vec(&ErrorBody {
        error: message,
        server,
        timestamp: &ts,
    })
    .unwrap_or_default()
}

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(default, borrow)]
    message: Option<std::borrow::Cow<'a, str>>,
}

const CHAT_PREFIX: &str = "Processed by chat API: ";

/// Seed 003's `POST /chat`: `{"message": s}` in, s echoed and upper-cased out.
/// `Err` carries the message for a 400.
pub fn chat(body: &[u8], server: u16) -> Result<Vec<u8>, String> {
    let request: ChatRequest = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            "'message' must be a string in a JSON object".to_string()
        }
        _ => "Invalid JSON format".to_string(),
    })?;
    let message = request.message.unwrap_or_default();
    let mut response = String::with_capacity(CHAT_PREFIX.len() + message.len());
    response.push_str(CHAT_PREFIX);
    if message.is_ascii() {
        response.push_str(&message);
        response[CHAT_PREFIX.len()..].make_ascii_uppercase();
    } else {
        response.push_str(&message.to_uppercase());
    }
    // Written by hand in the seed's key order; serde's struct path costs
    // more than the rest of the request.
    let mut out = Vec::with_capacity(96 + message.len() + response.len());
    out.extend_from_slice(b"{\"original\":");
    write_json_str(&mut out, &message);
    out.extend_from_slice(b",\"response\":");
    write_json_str(&mut out, &response);
    write_server_and_timestamp(&mut out, server);
    Ok(out)
}

fn write_server_and_timestamp(out: &mut Vec<u8>, server: u16) {
    use std::io::Write as _;
    let _ = write!(out, ",\"server\":{server},\"timestamp\":\"");
    write_timestamp(out);
    out.extend_from_slice(b"\"}");
}

/// Seed 003's `POST /completions`: the raw body's first and last five characters.
pub fn completions(body: &[u8], server: u16) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not valid UTF-8".to_string())?;
    let head_end = text.char_indices().nth(5).map_or(text.len(), |(i, _)| i);
    let tail_start = text.char_indices().rev().nth(4).map_or(0, |(i, _)| i);
    let mut out = Vec::with_capacity(128 + head_end + text.len() - tail_start);
    out.extend_from_slice(b"{\"completions\":[{\"text\":");
    write_json_str(&mut out, &format!("Completion 1: {}...", &text[..head_end]));
    out.extend_from_slice(b",\"index\":0},{\"text\":");
    write_json_str(
        &mut out,
        &format!("Completion 2: {}...", &text[tail_start..]),
    );
    out.extend_from_slice(b",\"index\":1}]");
    write_server_and_timestamp(&mut out, server);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn chat_echoes_and_upper_cases_like_the_seed() {
        let v = json(&chat(br#"{"message": "Hello, sync chat!"}"#, 8001).unwrap());
        assert_eq!(v["original"], "Hello, sync chat!");
        assert_eq!(v["response"], "Processed by chat API: HELLO, SYNC CHAT!");
        assert_eq!(v["server"], 8001);
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["original", "response", "server", "timestamp"]);
    }

    #[test]
    fn chat_without_message_answers_empty_like_the_seed() {
        let v = json(&chat(b"{}", 8002).unwrap());
        assert_eq!(v["response"], "Processed by chat API: ");
    }

    #[test]
    fn chat_refuses_bad_json() {
        assert_eq!(chat(b"{nope", 8001), Err("Invalid JSON format".to_string()));
        assert_eq!(chat(b"", 8001), Err("Invalid JSON format".to_string()));
        assert!(chat(br#"{"message": 5}"#, 8001)
            .unwrap_err()
            .contains("must be a string"));
        assert!(chat(b"[1,2]", 8001).unwrap_err().contains("JSON object"));
    }

    #[test]
    fn completions_quote_first_and_last_five_characters() {
        let v = json(&completions("test text".as_bytes(), 8002).unwrap());
        assert_eq!(v["completions"][0]["text"], "Completion 1: test ...");
        // data[-5:] of "test text" is " text": two spaces, as the seed's Python
        // really prints (the article's HTML collapsed them).
        assert_eq!(v["completions"][1]["text"], "Completion 2:  text...");
        assert_eq!(v["completions"][1]["index"], 1);
        let v = json(&completions("你好,我是Michael".as_bytes(), 8002).unwrap());
        assert_eq!(v["completions"][0]["text"], "Completion 1: 你好,我是...");
        assert_eq!(v["completions"][1]["text"], "Completion 2: chael...");
        assert!(completions(&[0xff, 0xfe], 8002).is_err());
        let v = json(&completions(b"abc", 8002).unwrap());
        assert_eq!(v["completions"][0]["text"], "Completion 1: abc...");
        assert_eq!(v["completions"][1]["text"], "Completion 2: abc...");
        let v = json(&completions(b"", 8002).unwrap());
        assert_eq!(v["completions"][1]["text"], "Completion 2: ...");
    }

    #[test]
    fn timestamps_look_like_isoformat_and_move_forward() {
        let a = timestamp();
        assert_eq!(a.len(), "2026-11-21T06:31:16.721614Z".len(), "{a}");
        assert!(humantime::parse_rfc3339(&a).is_ok(), "{a}");
        let b = timestamp();
        assert!(b >= a, "{a} then {b}");
    }

    #[test]
    fn chat_upper_cases_beyond_ascii_and_escapes() {
        let v = json(&chat("{\"message\": \"straße \\\"q\\\"\"}".as_bytes(), 8001).unwrap());
        assert_eq!(v["original"], "straße \"q\"");
        assert_eq!(v["response"], "Processed by chat API: STRASSE \"Q\"");
    }

    #[test]
    fn error_shape() {
        let v = json(&error_json("API not found", 8001));
        assert_eq!(v["error"], "API not found");
        assert_eq!(v["server"], 8001);
    }
}
