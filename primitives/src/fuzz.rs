//! Hostile inputs for the parsers' random tests: real samples with bytes
//! replaced, inserted, deleted or repeated, and text drawn from the
//! characters parsers split on. A parser must answer each with a value or
//! an error, never a panic or a hang.

use proptest::prelude::*;

/// The characters log formats, configs and HTTP give meaning to, and a few
/// they never expect.
const ALPHABET: &[u8] =
    b" \t\r\n\"'[]{}()<>;:,=.-_/\\$%#?&@*+|~`^0123456789aZ\x00\x7f\xff\xe2\x80\x9c";

/// An edit of a sample: where (taken modulo its length), what, and a byte.
#[derive(Debug, Clone, Copy)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    /// The sample's bytes from here repeated: long values, many fields.
    Repeat(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![proptest::sample::select(ALPHABET.to_vec()), any::<u8>()];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), 1..64usize).prop_map(|(i, n)| Edit::Repeat(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match *e {
            Edit::Replace(i, b) if !bytes.is_empty() => {
                let i = at(i, bytes.len());
                bytes[i] = b;
            }
            Edit::Insert(i, b) => {
                let i = at(i, bytes.len() + 1);
                bytes.insert(i, b);
            }
            Edit::Delete(i) if !bytes.is_empty() => {
                let i = at(i, bytes.len());
                bytes.remove(i);
            }
            Edit::Repeat(i, n) if !bytes.is_empty() => {
                let i = at(i, bytes.len());
                let piece: Vec<u8> = bytes[i..].iter().take(16).copied().collect();
                for _ in 0..n {
                    bytes.splice(i..i, piece.iter().copied());
                }
            }
            Edit::Truncate(i) => {
                let i = at(i, bytes.len() + 1);
                bytes.truncate(i);
            }
            _ => {}
        }
    }
    bytes
}

/// Bytes: one of `samples` with up to 8 edits, or up to 300 bytes of the
/// alphabet and anything else.
pub fn bytes(samples: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        proptest::sample::select(samples.to_vec()),
        proptest::collection::vec(edit(), 0..8),
    )
        .prop_map(|(sample, edits)| apply(sample.as_bytes().to_vec(), &edits));
    let drawn = proptest::collection::vec(
        prop_oneof![
            3 => proptest::sample::select(ALPHABET.to_vec()),
            1 => any::<u8>()
        ],
        0..300,
    );
    prop_oneof![4 => mutated, 1 => drawn]
}

/// [`bytes`] as text, invalid UTF-8 replaced, as the parsers of text see it.
pub fn text(samples: &'static [&'static str]) -> impl Strategy<Value = String> {
    bytes(samples).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Cases each random test runs: enough to find the shallow panics, few
/// enough that CI on two cores spends seconds, not minutes.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_stay_within_the_sample() {
        let out = apply(
            b"abc".to_vec(),
            &[
                Edit::Replace(7, b'x'),
                Edit::Insert(99, b'y'),
                Edit::Delete(1000),
                Edit::Repeat(2, 2),
                Edit::Truncate(4),
            ],
        );
        assert_eq!(out, b"xcyy");
        assert_eq!(
            apply(Vec::new(), &[Edit::Delete(3), Edit::Replace(1, b'a')]),
            b""
        );
    }
}
