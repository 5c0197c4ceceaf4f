//! Random request bodies against the OpenAI request reader, with and
//! without the prefix cache's hashing: an answer or a 400's message, never
//! a panic, and every answer's chunks are JSON.

use proptest::prelude::*;

use crate::openai::{parse, Context, Kind};

const BODIES: &[&str] = &[
    "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],\"max_tokens\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}",
    "{\"prompt\":[\"once upon\",\"a time\"],\"max_completion_tokens\":2,\"stream\":false}",
];

proptest! {
    #![proptest_config(primitives::fuzz::config())]

    #[test]
    fn no_request_body_makes_the_reader_panic(
        body in primitives::fuzz::bytes(BODIES),
        chat in any::<bool>(),
        prefixes in any::<bool>(),
    ) {
        let kind = if chat { Kind::Chat } else { Kind::Text };
        let cx = Context {
            id: "x".into(),
            created: 0,
            default_model: "m",
            output_tokens: 4,
            server: 1,
            prefixes,
        };
        if let Ok(parsed) = parse(kind, &body, cx) {
            let a = parsed.answer;
            prop_assert!(a.tokens <= 4);
            // Hashed only when asked; tokens grow to the prompt's count.
            prop_assert!(prefixes || parsed.prefixes.is_empty());
            prop_assert!(parsed.prefixes.windows(2).all(|w| w[0].1 <= w[1].1));
            prop_assert!(parsed.prefixes.last().is_none_or(|p| p.1 <= a.prompt_tokens));
            for event in [a.chunk(0), a.last_chunks()] {
                for data in std::str::from_utf8(&event).unwrap().split("\n\n").filter(|e| !e.is_empty()) {
                    let data = data.strip_prefix("data: ").unwrap();
                    prop_assert!(data == "[DONE]" || serde_json::from_str::<serde_json::Value>(data).is_ok());
                }
            }
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&a.full_body()).is_ok());
        }
    }
}
