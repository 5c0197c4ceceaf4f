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
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
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
struct ChatRequest {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Serialize)]
struct ChatResponse<'a> {
    original: &'a str,
    response: String,
    server: u16,
    timestamp: String,
}

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
    let response = ChatResponse {
        original: &message,
        response: format!("Processed by chat API: {}", message.to_uppercase()),
        server,
        timestamp: timestamp(),
    };
    Ok(serde_json::to_vec(&response).unwrap_or_default())
}

#[derive(Serialize)]
struct Completion {
    text: String,
    index: u32,
}

#[derive(Serialize)]
struct CompletionsResponse {
    completions: [Completion; 2],
    server: u16,
    timestamp: String,
}

/// Seed 003's `POST /completions`: the raw body's first and last five characters.
pub fn completions(body: &[u8], server: u16) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not valid UTF-8".to_string())?;
    let chars = text.chars().count();
    let head: String = text.chars().take(5).collect();
    let tail: String = text.chars().skip(chars.saturating_sub(5)).collect();
    let response = CompletionsResponse {
        completions: [
            Completion {
                text: format!("Completion 1: {head}..."),
                index: 0,
            },
            Completion {
                text: format!("Completion 2: {tail}..."),
                index: 1,
            },
        ],
        server,
        timestamp: timestamp(),
    };
    Ok(serde_json::to_vec(&response).unwrap_or_default())
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
    }

    #[test]
    fn error_shape() {
        let v = json(&error_json("API not found", 8001));
        assert_eq!(v["error"], "API not found");
        assert_eq!(v["server"], 8001);
    }
}
