//! Request templates for scenario files: `{{seq}}`, `{{uuid}}`,
//! `{{random_int(1,100)}}` and `{{line("messages.txt")}}` in a path, header
//! or body, filled in per request. Pure: files named by `line(...)` are read
//! by the caller and handed in.
//!
//! Every value is a function of the request's number, so a run is
//! repeatable: request 17 gets the same uuid, random number and line every
//! time.

use std::sync::Arc;

/// Text with placeholders, split once.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    /// The request's number, from 0.
    Seq,
    Uuid,
    RandomInt(i64, i64),
    /// Lines of a file, taken in turn.
    Line(Arc<Vec<String>>),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{{` without a closing `}}}}`")]
    Unclosed,
    #[error(
        "unknown placeholder {{{{{0}}}}}; use seq, uuid, random_int(MIN,MAX) or line(\"FILE\")"
    )]
    Unknown(String),
    #[error("{{{{{0}}}}}: {1}")]
    Bad(String, String),
}

impl Text {
    /// Splits `text`; `read_lines` gets the file a `line("...")` names.
    pub fn parse(
        text: &str,
        read_lines: &mut dyn FnMut(&str) -> Result<Vec<String>, String>,
    ) -> Result<Text, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed)?;
            pieces.push(placeholder(after[..close].trim(), read_lines)?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_string()));
        }
        Ok(Text { pieces })
    }

    /// Text with no placeholders.
    pub fn literal(text: &str) -> Text {
        Text {
            pieces: vec![Piece::Literal(text.to_string())],
        }
    }

    /// Whether every request gets the same text.
    pub fn is_fixed(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Literal(_)))
    }

    /// Appends the text for request `seq`.
    pub fn render(&self, seq: u64, out: &mut Vec<u8>) {
        for (n, piece) in self.pieces.iter().enumerate() {
            match piece {
                Piece::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Piece::Seq => out.extend_from_slice(seq.to_string().as_bytes()),
                Piece::Uuid => {
                    let (a, b) = (mix(seq, n as u64), mix(seq, n as u64 + 1000));
                    // Version 4, variant 10xx, as random uuids are written.
                    let a = (a & !0xf000) | 0x4000;
                    let b = (b & !(0xc << 60)) | (0x8 << 60);
                    let uuid = format!(
                        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                        a >> 32,
                        (a >> 16) & 0xffff,
                        a & 0xffff,
                        b >> 48,
                        b & 0xffff_ffff_ffff
                    );
                    out.extend_from_slice(uuid.as_bytes());
                }
                Piece::RandomInt(lo, hi) => {
                    let span = (hi - lo) as u64 + 1;
                    let v = lo + (mix(seq, n as u64) % span) as i64;
                    out.extend_from_slice(v.to_string().as_bytes());
                }
                Piece::Line(lines) => {
                    let line = &lines[(seq % lines.len() as u64) as usize];
                    out.extend_from_slice(line.as_bytes());
                }
            }
        }
    }
}

fn placeholder(
    inner: &str,
    read_lines: &mut dyn FnMut(&str) -> Result<Vec<String>, String>,
) -> Result<Piece, TemplateError> {
    let bad = |why: &str| TemplateError::Bad(inner.to_string(), why.to_string());
    if inner == "seq" {
        return Ok(Piece::Seq);
    }
    if inner == "uuid" {
        return Ok(Piece::Uuid);
    }
    let call = |name: &str| {
        inner
            .strip_prefix(name)
            .and_then(|r| r.trim_start().strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
    };
    if let Some(args) = call("random_int") {
        let (lo, hi) = args
            .split_once(',')
            .ok_or_else(|| bad("write random_int(MIN,MAX)"))?;
        let lo: i64 = lo
            .trim()
            .parse()
            .map_err(|_| bad("MIN is not a whole number"))?;
        let hi: i64 = hi
            .trim()
            .parse()
            .map_err(|_| bad("MAX is not a whole number"))?;
        if lo > hi {
            return Err(bad("MIN is above MAX"));
        }
        return Ok(Piece::RandomInt(lo, hi));
    }
    if let Some(arg) = call("line") {
        // Inside a `json` table the quotes arrive escaped, as `\"`.
        let arg = arg.replace("\\\"", "\"");
        let file = arg
            .trim()
            .strip_prefix('"')
            .and_then(|f| f.strip_suffix('"'))
            .ok_or_else(|| bad("write line(\"FILE\")"))?;
        let lines = read_lines(file).map_err(|e| bad(&e))?;
        if lines.is_empty() {
            return Err(bad(&format!("{file} has no lines")));
        }
        return Ok(Piece::Line(Arc::new(lines)));
    }
    Err(TemplateError::Unknown(inner.to_string()))
}

/// A well-mixed 64-bit value from a request number and a placeholder's
/// place (splitmix64's finaliser).
fn mix(seq: u64, salt: u64) -> u64 {
    let mut z = seq
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(salt.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(_: &str) -> Result<Vec<String>, String> {
        Err("no files here".into())
    }

    fn render(t: &Text, seq: u64) -> String {
        let mut out = Vec::new();
        t.render(seq, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn placeholders_are_filled_per_request_and_repeatably() {
        let t = Text::parse(
            r#"{"id": {{seq}}, "n": {{ random_int(1, 3) }}, "u": "{{uuid}}"}"#,
            &mut no_files,
        )
        .unwrap();
        assert!(!t.is_fixed());
        let first = render(&t, 7);
        assert!(first.starts_with(r#"{"id": 7, "n": "#), "{first}");
        assert_eq!(render(&t, 7), first, "the same request renders the same");
        let v: serde_json::Value = serde_json::from_str(&first).unwrap();
        let u = v["u"].as_str().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4", "version 4: {u}");
        let ns: std::collections::BTreeSet<String> = (0..200)
            .map(|i| {
                let v: serde_json::Value = serde_json::from_str(&render(&t, i)).unwrap();
                v["n"].to_string()
            })
            .collect();
        assert_eq!(ns.into_iter().collect::<Vec<_>>(), ["1", "2", "3"]);
    }

    #[test]
    fn lines_are_taken_in_turn() {
        let mut files = |f: &str| {
            assert_eq!(f, "messages.txt");
            Ok(vec!["hello".to_string(), "world".to_string()])
        };
        let t = Text::parse(r#"{"message": "{{line("messages.txt")}}"}"#, &mut files).unwrap();
        assert_eq!(render(&t, 0), r#"{"message": "hello"}"#);
        assert_eq!(render(&t, 1), r#"{"message": "world"}"#);
        assert_eq!(render(&t, 2), r#"{"message": "hello"}"#);
        assert!(Text::parse("/plain", &mut no_files).unwrap().is_fixed());
    }

    #[test]
    fn mistakes_say_what_to_write() {
        let e = |s: &str| Text::parse(s, &mut no_files).unwrap_err().to_string();
        assert!(e("{{seq").contains("without a closing"));
        assert!(e("{{nope}}").contains("unknown placeholder {{nope}}"));
        assert!(e("{{random_int(5,1)}}").contains("MIN is above MAX"));
        assert!(e(r#"{{line("x.txt")}}"#).contains("no files here"));
    }
}
