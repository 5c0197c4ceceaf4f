//! How lbkit counts LLM tokens where no tokenizer is at hand: about 4
//! characters to a token (OpenAI's rule of thumb for English), at least one
//! for any text. mockbackend counts prompts by it, and loadgen sizes its
//! synthetic prompts and ShareGPT answer lengths by it, so the two agree.

pub const CHARS_PER_TOKEN: usize = 4;

/// Tokens in a text of `chars` characters (not bytes).
pub fn tokens_for_chars(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(CHARS_PER_TOKEN)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_characters_to_a_token_at_least_one_for_any_text() {
        assert_eq!(tokens_for_chars(0), 0);
        assert_eq!(tokens_for_chars(1), 1);
        assert_eq!(tokens_for_chars(4), 1);
        assert_eq!(tokens_for_chars(5), 2);
        assert_eq!(tokens_for_chars(4000), 1000);
    }
}
