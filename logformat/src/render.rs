//! Writing one access-log line per request.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use crate::{Escape, LogFormat, Segment};

/// Where a request's variable values come from when a line is rendered.
///
/// Values are written straight into the line, so numbers and addresses can
/// be formatted with `write!` without a temporary string. Implemented for
/// closures `Fn(&str) -> Option<&str>`, for `HashMap`s of names to values
/// and for slices/arrays of `(name, value)` pairs.
pub trait Vars {
    /// Appends the raw, unescaped value of variable `name` (no `$`) to `out`
    /// and returns `true`; returns `false` when the request has no such
    /// value — nginx's "not found", written `-` under [`Escape::Default`].
    /// Whatever was appended before returning `false` is discarded.
    fn write_value(&self, name: &str, out: &mut String) -> bool;
}

impl<'v, F> Vars for F
where
    F: Fn(&str) -> Option<&'v str>,
{
    fn write_value(&self, name: &str, out: &mut String) -> bool {
        match self(name) {
            Some(value) => {
                out.push_str(value);
                true
            }
            None => false,
        }
    }
}

impl<K, V, S> Vars for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn write_value(&self, name: &str, out: &mut String) -> bool {
        match self.get(name) {
            Some(value) => {
                out.push_str(value.as_ref());
                true
            }
            None => false,
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Vars for [(K, V)] {
    fn write_value(&self, name: &str, out: &mut String) -> bool {
        match self.iter().find(|(k, _)| k.as_ref() == name) {
            Some((_, value)) => {
                out.push_str(value.as_ref());
                true
            }
            None => false,
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Vars for [(K, V); N] {
    fn write_value(&self, name: &str, out: &mut String) -> bool {
        self.as_slice().write_value(name, out)
    }
}

impl LogFormat {
    /// Appends one log line for a request to `out`, without the newline.
    ///
    /// As nginx does: each value is escaped by this format's [`Escape`]; a
    /// variable that is not set is written `-` under [`Escape::Default`] and
    /// as nothing under [`Escape::Json`] and [`Escape::None`]; a variable set
    /// to the empty string is written as nothing in every mode (so an empty
    /// `Referer:` header gives `""`, an absent one `"-"`).
    ///
    /// Allocates nothing beyond growing `out`, except when a value needs
    /// escaping; reuse `out` across requests.
    pub fn render<V: Vars + ?Sized>(&self, vars: &V, out: &mut String) {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Var(name) => {
                    let start = out.len();
                    if vars.write_value(name, out) {
                        self.escape.escape_tail(out, start);
                    } else {
                        out.truncate(start);
                        if self.escape == Escape::Default {
                            out.push('-');
                        }
                    }
                }
            }
        }
    }

    /// [`render`](Self::render) into a new string; for tests and one-offs.
    pub fn render_to_string<V: Vars + ?Sized>(&self, vars: &V) -> String {
        let mut out = String::new();
        self.render(vars, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;

    const UA_FORMAT: &str = r#"$remote_addr "$request" $status "$http_referer" "$http_user_agent""#;

    fn vars() -> [(&'static str, &'static str); 4] {
        [
            ("remote_addr", "10.0.0.7"),
            ("request", "GET /q?a=\"b\" HTTP/1.1"),
            ("status", "200"),
            ("http_user_agent", "Mozilla/5.0 (中文) \"quoted\"\\"),
        ]
    }

    #[test]
    fn default_escape_writes_dash_for_missing_and_hex_for_the_rest() {
        let f = LogFormat::compile(UA_FORMAT, Escape::Default).unwrap();
        assert_eq!(
            f.render_to_string(&vars()),
            r#"10.0.0.7 "GET /q?a=\x22b\x22 HTTP/1.1" 200 "-" "Mozilla/5.0 (\xE4\xB8\xAD\xE6\x96\x87) \x22quoted\x22\x5C""#
        );
    }

    #[test]
    fn json_escape_writes_nothing_for_missing() {
        let f = LogFormat::compile(
            r#"{"addr":"$remote_addr","ref":"$http_referer","ua":"$http_user_agent"}"#,
            Escape::Json,
        )
        .unwrap();
        assert_eq!(
            f.render_to_string(&vars()),
            r#"{"addr":"10.0.0.7","ref":"","ua":"Mozilla/5.0 (中文) \"quoted\"\\"}"#
        );
    }

    #[test]
    fn none_escape_copies_and_writes_nothing_for_missing() {
        let f = LogFormat::compile(UA_FORMAT, Escape::None).unwrap();
        assert_eq!(
            f.render_to_string(&vars()),
            "10.0.0.7 \"GET /q?a=\"b\" HTTP/1.1\" 200 \"\" \"Mozilla/5.0 (中文) \"quoted\"\\\""
        );
    }

    #[test]
    fn empty_value_is_not_a_missing_one() {
        let f = LogFormat::compile(r#""$http_referer" $remote_user"#, Escape::Default).unwrap();
        assert_eq!(f.render_to_string(&[("http_referer", "")]), r#""" -"#);
    }

    #[test]
    fn closures_maps_and_custom_sources_all_render() {
        let f = LogFormat::compile("$a $b $missing", Escape::Default).unwrap();
        let owned = String::from("one");
        let lookup = |name: &str| match name {
            "a" => Some(owned.as_str()),
            "b" => Some("two"),
            _ => None,
        };
        assert_eq!(f.render_to_string(&lookup), "one two -");

        let map: HashMap<String, String> =
            [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        assert_eq!(f.render_to_string(&map), "1 2 -");

        // A request-shaped source that formats numbers in place.
        struct Req {
            status: u16,
        }
        impl Vars for Req {
            fn write_value(&self, name: &str, out: &mut String) -> bool {
                match name {
                    "a" => write!(out, "{}", self.status).is_ok(),
                    "b" => {
                        out.push_str("half-written");
                        false
                    }
                    _ => false,
                }
            }
        }
        assert_eq!(f.render_to_string(&Req { status: 404 }), "404 - -");
    }

    #[test]
    fn render_appends_to_existing_text() {
        let f = LogFormat::compile("[$a]", Escape::Default).unwrap();
        let mut line = String::from("x");
        f.render(&[("a", "\"")], &mut line);
        assert_eq!(line, r"x[\x22]");
    }
}
