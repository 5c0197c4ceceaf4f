//! nginx's three ways of escaping variable values in access logs, and their
//! inverses for readers that want the original text.

use std::borrow::Cow;
use std::str::FromStr;

use crate::FormatError;

/// nginx's `log_format name escape=...` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escape {
    /// `"`, `\`, bytes below 0x20 and bytes from 0x7f up become `\xXX`
    /// (uppercase hex); an unset variable is written `-`.
    #[default]
    Default,
    /// JSON string escaping: `\"`, `\\`, `\n` `\r` `\t` `\b` `\f`, other
    /// control bytes `\u00XX`; UTF-8 passes through; an unset variable is
    /// written as nothing.
    Json,
    /// Values are copied as they are; an unset variable is written as nothing.
    None,
}

impl FromStr for Escape {
    type Err = FormatError;

    /// Reads the value after `escape=`, as nginx spells it.
    fn from_str(s: &str) -> Result<Escape, FormatError> {
        match s {
            "default" => Ok(Escape::Default),
            "json" => Ok(Escape::Json),
            "none" => Ok(Escape::None),
            _ => Err(FormatError::UnknownEscape {
                value: s.to_owned(),
            }),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn default_escapes(b: u8) -> bool {
    !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\'
}

fn json_escapes(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

impl Escape {
    /// Escapes `out[start..]` in place. Values almost never need escaping,
    /// so the scan is the whole cost; the copy happens only when a byte
    /// has to change.
    pub(crate) fn escape_tail(self, out: &mut String, start: usize) {
        let needs: fn(u8) -> bool = match self {
            Escape::None => return,
            Escape::Default => default_escapes,
            Escape::Json => json_escapes,
        };
        let Some(first) = out.as_bytes()[start..].iter().position(|&b| needs(b)) else {
            return;
        };
        let raw = out.split_off(start + first);
        match self {
            Escape::Default => {
                for &b in raw.as_bytes() {
                    if default_escapes(b) {
                        out.push('\\');
                        out.push('x');
                        out.push(HEX[usize::from(b >> 4)] as char);
                        out.push(HEX[usize::from(b & 0xf)] as char);
                    } else {
                        out.push(b as char);
                    }
                }
            }
            Escape::Json => {
                for c in raw.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        '\u{8}' => out.push_str("\\b"),
                        '\u{c}' => out.push_str("\\f"),
                        c if (c as u32) < 0x20 => {
                            let b = c as u8;
                            out.push_str("\\u00");
                            out.push(HEX[usize::from(b >> 4)] as char);
                            out.push(HEX[usize::from(b & 0xf)] as char);
                        }
                        c => out.push(c),
                    }
                }
            }
            Escape::None => {}
        }
    }

    /// Undoes this escaping on a value read back from a log line.
    ///
    /// Borrows when there is nothing to undo. With [`Escape::Default`] the
    /// `\xXX` bytes are reassembled and decoded as UTF-8, so an escaped
    /// `Mozilla/5.0 (中文)` user agent comes back whole; bytes that are not
    /// UTF-8 become U+FFFD.
    pub fn unescape(self, value: &str) -> Cow<'_, str> {
        match self {
            Escape::None => Cow::Borrowed(value),
            Escape::Default if !value.contains("\\x") => Cow::Borrowed(value),
            Escape::Json if !value.contains('\\') => Cow::Borrowed(value),
            Escape::Default => Cow::Owned(unescape_default(value)),
            Escape::Json => Cow::Owned(unescape_json(value)),
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unescape_default(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hi = bytes.get(i + 2).copied().and_then(hex_value);
            let lo = bytes.get(i + 3).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn unescape_json(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let rest = chars.as_str();
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('/') => out.push('/'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => match rest.get(1..5).and_then(|h| u32::from_str_radix(h, 16).ok()) {
                Some(code) => {
                    // nginx only writes \u00XX; anything else that is not a
                    // scalar value (a lone surrogate) becomes U+FFFD.
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    chars = rest[5..].chars();
                }
                None => out.push_str("\\u"),
            },
            // Not an escape nginx writes: keep the text as it was.
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(mode: Escape, value: &str) -> String {
        let mut out = String::from("prefix ");
        out.push_str(value);
        mode.escape_tail(&mut out, "prefix ".len());
        out.strip_prefix("prefix ").unwrap().to_owned()
    }

    #[test]
    fn default_escape_matches_nginx() {
        assert_eq!(escaped(Escape::Default, "plain text/1.0"), "plain text/1.0");
        assert_eq!(escaped(Escape::Default, r#"a"b\c"#), r"a\x22b\x5Cc");
        assert_eq!(
            escaped(Escape::Default, "\t\n\u{1b}\u{7f}"),
            r"\x09\x0A\x1B\x7F"
        );
        assert_eq!(escaped(Escape::Default, "é中"), r"\xC3\xA9\xE4\xB8\xAD");
    }

    #[test]
    fn json_escape_matches_nginx() {
        assert_eq!(escaped(Escape::Json, r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(
            escaped(Escape::Json, "\n\r\t\u{8}\u{c}\u{1}\u{1f}"),
            r"\n\r\t\b\f\u0001\u001F"
        );
        assert_eq!(escaped(Escape::Json, "é中\u{7f}"), "é中\u{7f}");
    }

    #[test]
    fn none_copies() {
        assert_eq!(escaped(Escape::None, "a\"\\\n中"), "a\"\\\n中");
    }

    #[test]
    fn unescape_inverts_each_mode() {
        let samples = [
            "",
            "plain",
            "q\"uote\\",
            "ctl\t\n\u{1}\u{7f}",
            "Mozilla/5.0 (中文; é)",
        ];
        for mode in [Escape::Default, Escape::Json, Escape::None] {
            for s in samples {
                assert_eq!(mode.unescape(&escaped(mode, s)), s, "{mode:?} {s:?}");
            }
        }
        assert!(matches!(
            Escape::Default.unescape("no escapes"),
            Cow::Borrowed(_)
        ));
        // Malformed or foreign escapes are kept rather than guessed at.
        assert_eq!(Escape::Default.unescape(r"\xZZ\x4"), r"\xZZ\x4");
        assert_eq!(Escape::Default.unescape(r"\xFF"), "\u{fffd}");
        assert_eq!(Escape::Json.unescape(r"\q\u12\u00e9"), "\\q\\u12é");
    }

    #[test]
    fn escape_parameter_parses() {
        assert_eq!("json".parse::<Escape>(), Ok(Escape::Json));
        assert_eq!("none".parse::<Escape>(), Ok(Escape::None));
        assert_eq!("default".parse::<Escape>(), Ok(Escape::Default));
        let err = "JSON".parse::<Escape>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown escape `JSON`: use default, json or none"
        );
    }
}
