//! A port's prefix cache, as an LLM server's KV cache behaves to a client:
//! a prompt whose beginning the port saw recently needs less prefill, so its
//! first token comes sooner. Pure: the server asks and records.
//!
//! A prompt is known by its prefixes (a running hash up to each chat
//! message's end, or every 64 characters of a text prompt). The cache holds
//! the most recently used prefixes, up to its size, and a prompt is credited
//! with the tokens of its longest prefix found there.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

#[derive(Debug)]
pub struct PrefixCache {
    size: usize,
    tick: u64,
    /// Prefix hash -> when it was last used.
    used: HashMap<u64, u64>,
    /// When -> prefix hash: the oldest goes first when the cache is full.
    by_age: BTreeMap<u64, u64>,
}

impl PrefixCache {
    /// A cache of `size` prefixes (at least one).
    pub fn new(size: usize) -> PrefixCache {
        PrefixCache {
            size: size.max(1),
            tick: 0,
            used: HashMap::new(),
            by_age: BTreeMap::new(),
        }
    }

    /// The prompt tokens already cached for a prompt with these prefixes
    /// (`(hash, tokens up to it)`, shortest first); then all of them are
    /// remembered as just used.
    pub fn admit(&mut self, prefixes: &[(u64, u32)]) -> u32 {
        let cached = prefixes
            .iter()
            .rev()
            .find(|(h, _)| self.used.contains_key(h))
            .map_or(0, |(_, tokens)| *tokens);
        for (hash, _) in prefixes {
            self.touch(*hash);
        }
        cached
    }

    fn touch(&mut self, hash: u64) {
        self.tick += 1;
        if let Some(old) = self.used.insert(hash, self.tick) {
            self.by_age.remove(&old);
        } else if self.used.len() > self.size {
            if let Some((_, oldest)) = self.by_age.pop_first() {
                self.used.remove(&oldest);
            }
        }
        self.by_age.insert(self.tick, hash);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.used.len()
    }
}

/// Time to first token when `cached` of `prompt` tokens were in the cache:
/// prefill is paid for the uncached part only, from `full` (nothing cached)
/// down to `hit` (everything cached).
pub fn ttft(full: Duration, hit: Duration, prompt: u32, cached: u32) -> Duration {
    let hit = hit.min(full);
    if prompt == 0 {
        return full;
    }
    let uncached = f64::from(prompt.saturating_sub(cached)) / f64::from(prompt);
    hit + (full - hit).mul_f64(uncached)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_cached_prefix_counts_and_the_oldest_goes_first() {
        let mut c = PrefixCache::new(3);
        // A conversation: turn 1 is [a], turn 2 resends a and adds b.
        assert_eq!(c.admit(&[(1, 10)]), 0, "nothing seen yet");
        assert_eq!(c.admit(&[(1, 10), (2, 25)]), 10, "turn 1 was cached");
        assert_eq!(c.admit(&[(1, 10), (2, 25), (3, 40)]), 25);
        assert_eq!(c.len(), 3);
        // Another prompt pushes out the least recently used prefix (1).
        assert_eq!(c.admit(&[(9, 5)]), 0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.admit(&[(1, 10)]), 0, "1 was the oldest and went");
        assert_eq!(c.admit(&[(9, 5)]), 5, "9 stayed");
    }

    #[test]
    fn ttft_pays_for_the_uncached_part() {
        let (full, hit) = (Duration::from_millis(200), Duration::from_millis(20));
        assert_eq!(ttft(full, hit, 100, 0), full);
        assert_eq!(ttft(full, hit, 100, 100), hit);
        assert_eq!(ttft(full, hit, 100, 50), Duration::from_millis(110));
        assert_eq!(ttft(full, hit, 0, 0), full);
        assert_eq!(ttft(hit, full, 10, 10), hit, "a hit is never slower");
    }
}
