//! Turning `log_format` text into segments, with nginx's own rules for what a
//! variable name is (`ngx_http_log_compile_format`).

use std::sync::Arc;

use crate::Escape;

/// One piece of a compiled format: text copied as is, or a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text written verbatim and matched exactly when reading.
    Literal(String),
    /// A variable, by name without the `$` or braces (`remote_addr`).
    Var(String),
}

/// Why a `log_format` string does not compile. Offsets are bytes into the
/// format text, counted from 0, pointing at the offending `$`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A `$` with no name after it: at the end, before a space, `${}`.
    #[error(
        "byte {offset}: `$` is not followed by a variable name \
         (write `$name` or `${{name}}` with letters, digits and `_`, or drop the `$`)"
    )]
    MissingName { offset: usize },
    /// `${name` without its `}`.
    #[error("byte {offset}: `${{{name}` has no closing `}}`")]
    UnclosedBrace { offset: usize, name: String },
    /// An `escape=` value nginx does not know.
    #[error("unknown escape `{value}`: use default, json or none")]
    UnknownEscape { value: String },
}

/// Which variable values are known to be numbers. Only used when reading:
/// it lets the parser tell `::1:48878` apart as address `::1` and port
/// `48878` instead of stopping at the first `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Any,
    Number,
    /// nginx's per-attempt `$upstream_*` lists (`a, b : c`): entries joined
    /// by `, ` and ` : `, so a value never starts or ends with a separator.
    /// Knowing that lets two lists side by side, as ingress-nginx logs
    /// them, split where nginx joined them.
    List,
    /// Values nginx writes without spaces (`$request_id` is 32 hex digits,
    /// an address is one token), so one last in a line cannot swallow the
    /// end of a list before it, and a line with a host name in front of
    /// the address (a vhost-prefixed log) is refused, not misread.
    Word,
}

impl Shape {
    fn of(name: &str) -> Shape {
        // Variables nginx always prints with digits (and at most a dot):
        // counters, ports, times. Lists such as $upstream_status are not here
        // because they carry `, ` and ` : ` separators.
        const NUMBERS: &[&str] = &[
            "status",
            "body_bytes_sent",
            "bytes_sent",
            "request_length",
            "request_time",
            "remote_port",
            "server_port",
            "realip_remote_port",
            "proxy_protocol_port",
            "connection",
            "connection_requests",
            "msec",
            "pid",
        ];
        const LISTS: &[&str] = &[
            "upstream_addr",
            "upstream_status",
            "upstream_response_time",
            "upstream_connect_time",
            "upstream_header_time",
            "upstream_response_length",
            "upstream_bytes_received",
            "upstream_bytes_sent",
        ];
        const WORDS: &[&str] = &[
            "request_id",
            "req_id",
            "remote_addr",
            "realip_remote_addr",
            "server_addr",
        ];
        if NUMBERS.contains(&name) {
            Shape::Number
        } else if LISTS.contains(&name) {
            Shape::List
        } else if WORDS.contains(&name) {
            Shape::Word
        } else {
            Shape::Any
        }
    }
}

/// A compiled `log_format`: render a line per request, or read lines back.
///
/// Built once with [`LogFormat::compile`]; rendering ([`LogFormat::render`])
/// and parsing ([`LogFormat::parse`]) only walk the segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    pub(crate) source: String,
    pub(crate) escape: Escape,
    pub(crate) segments: Vec<Segment>,
    /// Variable names in order of appearance; a parsed record's values use
    /// the same order.
    /// Shared with every parsed [`Record`](crate::Record), so records borrow
    /// only their line, not the format.
    pub(crate) names: Arc<[String]>,
    pub(crate) shapes: Vec<Shape>,
    /// `"` in the literals: a line with no more than these has none in its
    /// values, and the per-value check for a raw quote can be skipped.
    pub(crate) literal_quotes: usize,
    /// The first `$a$b` pair, which can be written but never read back.
    pub(crate) adjacent: Option<(String, String)>,
}

impl LogFormat {
    /// Compiles `format`, the `log_format` text after nginx has joined its
    /// quoted pieces, e.g.
    /// `$remote_addr - $remote_user [$time_local] "$request" $status`.
    ///
    /// Variables are `$name` or `${name}` with `name` made of ASCII letters,
    /// digits and `_`; everything else is literal text. Names are not
    /// checked against nginx's list: any name the caller can supply works.
    pub fn compile(format: &str, escape: Escape) -> Result<LogFormat, FormatError> {
        let bytes = format.as_bytes();
        let mut segments = Vec::new();
        let mut literal_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'$' {
                i += 1;
                continue;
            }
            if literal_start < i {
                segments.push(Segment::Literal(format[literal_start..i].to_owned()));
            }
            let dollar = i;
            i += 1;
            let braced = bytes.get(i) == Some(&b'{');
            if braced {
                i += 1;
            }
            let name_start = i;
            while i < bytes.len() && is_name_byte(bytes[i]) {
                i += 1;
            }
            let name = &format[name_start..i];
            if braced {
                // nginx reports the missing bracket before an empty name, so
                // `${` at the end is an unclosed brace, `${}` a missing name.
                if bytes.get(i) != Some(&b'}') {
                    return Err(FormatError::UnclosedBrace {
                        offset: dollar,
                        name: name.to_owned(),
                    });
                }
                i += 1;
            }
            if name.is_empty() {
                return Err(FormatError::MissingName { offset: dollar });
            }
            segments.push(Segment::Var(name.to_owned()));
            literal_start = i;
        }
        if literal_start < bytes.len() {
            segments.push(Segment::Literal(format[literal_start..].to_owned()));
        }

        let names: Vec<String> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Var(name) => Some(name.clone()),
                Segment::Literal(_) => None,
            })
            .collect();
        let shapes = names.iter().map(|n| Shape::of(n)).collect();
        let adjacent = segments.windows(2).find_map(|pair| match pair {
            [Segment::Var(a), Segment::Var(b)] => Some((a.clone(), b.clone())),
            _ => None,
        });
        let literal_quotes = segments
            .iter()
            .map(|s| match s {
                Segment::Literal(text) => text.bytes().filter(|b| *b == b'"').count(),
                Segment::Var(_) => 0,
            })
            .sum();
        Ok(LogFormat {
            source: format.to_owned(),
            escape,
            segments,
            names: names.into(),
            shapes,
            literal_quotes,
            adjacent,
        })
    }

    /// The format text this was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The escaping applied to variable values (nginx's `escape=`).
    pub fn escape(&self) -> Escape {
        self.escape
    }

    /// The compiled pieces, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Variable names in order of appearance (a name used twice appears
    /// twice). A [`Record`](crate::Record)'s values follow this order.
    pub fn variables(&self) -> &[String] {
        &self.names
    }

    /// Position of the first use of variable `name` among
    /// [`variables`](Self::variables), for reading many records with
    /// [`Record::value`](crate::Record::value) without comparing names each line.
    pub fn var_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Segment {
        Segment::Literal(s.to_owned())
    }
    fn var(s: &str) -> Segment {
        Segment::Var(s.to_owned())
    }

    #[test]
    fn splits_variables_and_literals() {
        let f = LogFormat::compile(
            r#"$remote_addr - [${time_local}]x"$request""#,
            Escape::Default,
        )
        .unwrap();
        assert_eq!(
            f.segments(),
            &[
                var("remote_addr"),
                lit(" - ["),
                var("time_local"),
                lit("]x\""),
                var("request"),
                lit("\""),
            ]
        );
        assert_eq!(f.variables(), ["remote_addr", "time_local", "request"]);
        assert_eq!(f.var_index("request"), Some(2));
        assert_eq!(f.var_index("status"), None);
    }

    #[test]
    fn name_stops_at_first_non_name_byte() {
        // `$remote_addr:` ends the name at `:`; `${a}b` keeps `b` literal.
        let f = LogFormat::compile("$a:$b-${c}d", Escape::None).unwrap();
        assert_eq!(
            f.segments(),
            &[var("a"), lit(":"), var("b"), lit("-"), var("c"), lit("d")]
        );
    }

    #[test]
    fn literal_only_and_empty_formats_compile() {
        assert_eq!(
            LogFormat::compile("", Escape::Default).unwrap().segments(),
            &[]
        );
        let f = LogFormat::compile("}{ 100% }", Escape::Default).unwrap();
        assert_eq!(f.segments(), &[lit("}{ 100% }")]);
    }

    #[test]
    fn errors_name_the_problem_and_offset() {
        let cases = [
            ("abc $", FormatError::MissingName { offset: 4 }),
            ("$ x", FormatError::MissingName { offset: 0 }),
            ("a ${}", FormatError::MissingName { offset: 2 }),
            ("$-", FormatError::MissingName { offset: 0 }),
            (
                "x ${status",
                FormatError::UnclosedBrace {
                    offset: 2,
                    name: "status".into(),
                },
            ),
            (
                "${",
                FormatError::UnclosedBrace {
                    offset: 0,
                    name: String::new(),
                },
            ),
            (
                "${time local}",
                FormatError::UnclosedBrace {
                    offset: 0,
                    name: "time".into(),
                },
            ),
        ];
        for (format, want) in cases {
            assert_eq!(
                LogFormat::compile(format, Escape::Default),
                Err(want),
                "{format}"
            );
        }
        let msg = LogFormat::compile("ok $", Escape::Default)
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("byte 3: `$` is not followed by a variable name"),
            "{msg}"
        );
        let msg = LogFormat::compile("${status", Escape::Default)
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "byte 0: `${status` has no closing `}`");
    }

    #[test]
    fn remembers_adjacent_variables() {
        let f = LogFormat::compile("$a $b$c", Escape::Default).unwrap();
        assert_eq!(f.adjacent, Some(("b".into(), "c".into())));
    }
}
