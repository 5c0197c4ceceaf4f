//! OpenAI-style server-sent events, read as the bytes arrive: `data:` lines
//! carrying chunks (`choices[0].delta.content` for chat,
//! `choices[0].text` for completions; a reasoning model's
//! `delta.reasoning_content` and a tool call's `delta.tool_calls` are output
//! too), a `usage` object (on a last chunk with no choices, as OpenAI sends
//! it with `stream_options.include_usage`), and `data: [DONE]`. Pure: the
//! caller says when each piece of body arrived.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;

/// One stream's progress.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stream {
    /// An unfinished line carried over from the last piece.
    line: Vec<u8>,
    /// Chunks that carried output: text, reasoning or a tool call.
    pub chunks: u64,
    /// Of them, those with reasoning or a tool call and no text.
    pub reasoning_chunks: u64,
    /// `usage.completion_tokens` and `usage.prompt_tokens`, when the
    /// server sent them (the last count wins: vLLM's continuous usage).
    pub usage_tokens: Option<u64>,
    pub prompt_tokens: Option<u64>,
    /// `data: [DONE]` arrived.
    pub done: bool,
    /// An error event arrived (`data: {"error": ...}`, as OpenAI-compatible
    /// servers report a failure mid-stream): its message or the object.
    pub error: Option<String>,
    /// When the first token arrived (of any output), from the request's start.
    pub first_token: Option<Duration>,
    /// When the first content token arrived: later than `first_token` for a
    /// reasoning model, which thinks aloud first.
    pub first_content: Option<Duration>,
    pub last_token: Option<Duration>,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    /// DeepSeek's and vLLM's reasoning field; newer vLLM names it `reasoning`.
    #[serde(borrow, alias = "reasoning")]
    reasoning_content: Option<Cow<'a, str>>,
    tool_calls: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct Usage {
    completion_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
}

/// Longest line kept while waiting for its end; a server that never ends
/// a line cannot make the reader grow without bound.
const MAX_LINE: usize = 1 << 20;

impl Stream {
    /// Reads body bytes that arrived `at` after the request started;
    /// `gap` gets each inter-token gap.
    pub fn feed(&mut self, data: &[u8], at: Duration, gap: &mut dyn FnMut(Duration)) {
        let mut rest = data;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let piece = &rest[..end];
            rest = &rest[end + 1..];
            if self.line.is_empty() {
                self.event_line(piece, at, gap);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(piece);
                self.event_line(&line, at, gap);
            }
        }
        if self.line.len() + rest.len() <= MAX_LINE {
            self.line.extend_from_slice(rest);
        }
    }

    fn event_line(&mut self, line: &[u8], at: Duration, gap: &mut dyn FnMut(Duration)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return; // comments, `event:`, `id:`, blank separators
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Chunk<'_>>(data) else {
            return;
        };
        if let Some(e) = chunk.error.filter(|e| !e.is_null()) {
            if self.error.is_none() {
                let message = e.get("message").and_then(|m| m.as_str());
                self.error = Some(message.map_or_else(|| e.to_string(), str::to_string));
            }
            return;
        }
        if let Some(usage) = chunk.usage {
            self.usage_tokens = usage.completion_tokens.or(self.usage_tokens);
            self.prompt_tokens = usage.prompt_tokens.or(self.prompt_tokens);
        }
        let Some(choice) = chunk.choices.first() else {
            return; // the usage chunk
        };
        let nonempty = |t: &Option<Cow<'_, str>>| t.as_deref().is_some_and(|t| !t.is_empty());
        let (content, other) = match &choice.delta {
            Some(d) => (
                nonempty(&d.content),
                nonempty(&d.reasoning_content)
                    || d.tool_calls.as_ref().is_some_and(|t| !t.is_empty()),
            ),
            None => (nonempty(&choice.text), false),
        };
        if !(content || other) {
            return;
        }
        self.chunks += 1;
        if !content {
            self.reasoning_chunks += 1;
        }
        match self.last_token {
            None => self.first_token = Some(at),
            Some(last) => gap(at.saturating_sub(last)),
        }
        self.last_token = Some(at);
        if content && self.first_content.is_none() {
            self.first_content = Some(at);
        }
    }

    /// Output tokens: the server's own count when it gave one, else the
    /// chunks that carried text; and whether it came from `usage`.
    pub fn tokens(&self) -> (u64, bool) {
        match self.usage_tokens {
            Some(n) => (n, true),
            None => (self.chunks, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" wor\\\"ld\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn tokens_gaps_usage_and_done_in_pieces_of_any_size() {
        for size in [1, 3, 7, 64, CHAT.len()] {
            let mut s = Stream::default();
            let mut gaps = Vec::new();
            for (i, piece) in CHAT.as_bytes().chunks(size).enumerate() {
                let at = Duration::from_millis(100 + 10 * i as u64);
                s.feed(piece, at, &mut |g| gaps.push(g));
            }
            assert_eq!(s.chunks, 2, "piece size {size}");
            assert_eq!(s.tokens(), (2, true));
            assert!(s.done);
            assert_eq!(gaps.len(), 1);
            assert!(s.first_token.unwrap() >= Duration::from_millis(100));
        }
    }

    #[test]
    fn an_error_event_is_kept_even_when_done_follows() {
        let mut s = Stream::default();
        let body = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}\n\n",
            "data: [DONE]\n\n",
        );
        s.feed(body.as_bytes(), Duration::from_millis(5), &mut |_| {});
        assert!(s.done);
        assert_eq!(s.error.as_deref(), Some("model overloaded"));
        assert_eq!(s.chunks, 1);
    }

    /// OpenAI with include_usage: the usage comes on a chunk whose choices
    /// are empty; a reasoning model's thoughts and tool calls are output,
    /// and its first content token comes after its first token.
    #[test]
    fn usage_chunk_reasoning_and_tool_calls() {
        let body = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Let me think\"}}],\"usage\":null}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\" more\"}}],\"usage\":null}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}],\"usage\":null}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4,\"total_tokens\":13}}\n\n",
            "data: [DONE]\n\n",
        );
        let mut s = Stream::default();
        for (i, line) in body.split_inclusive("\n\n").enumerate() {
            s.feed(
                line.as_bytes(),
                Duration::from_millis(10 * i as u64),
                &mut |_| {},
            );
        }
        assert_eq!((s.chunks, s.reasoning_chunks), (4, 3));
        assert_eq!(s.tokens(), (4, true));
        assert_eq!(s.prompt_tokens, Some(9));
        assert_eq!(s.first_token, Some(Duration::from_millis(10)));
        assert_eq!(s.first_content, Some(Duration::from_millis(30)));
        assert!(s.done);
    }

    #[test]
    fn completions_text_counts_and_a_cut_stream_is_not_done() {
        let mut s = Stream::default();
        let body = "data: {\"choices\":[{\"text\":\"a\"}]}\r\n\r\ndata: {\"choices\":[{\"text\":\"b\"}]}\n\ndata: {\"choi";
        s.feed(body.as_bytes(), Duration::from_millis(5), &mut |_| {});
        assert_eq!(s.tokens(), (2, false), "no usage: chunks counted");
        assert!(!s.done);
    }
}
