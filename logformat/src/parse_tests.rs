use super::*;
use crate::{presets, Escape};

fn compile(format: &str) -> LogFormat {
    LogFormat::compile(format, Escape::Default).unwrap()
}

#[test]
fn reads_values_by_name_index_and_order() {
    let f = compile(r#"$remote_addr - $remote_user [$time_local] "$request" $status"#);
    let line = "10.0.0.1 - - [21/Nov/2025:06:44:01 +0000] \"GET /a b HTTP/1.1\" 404\r\n";
    let r = f.parse(line).unwrap();
    assert_eq!(r.get("remote_user"), Some("-"));
    assert_eq!(r.get("request"), Some("GET /a b HTTP/1.1"));
    assert_eq!(r.get("status"), Some("404"));
    assert_eq!(r.get("upstream_addr"), None);
    assert_eq!(
        r.value(f.var_index("time_local").unwrap()),
        Some("21/Nov/2025:06:44:01 +0000")
    );
    assert_eq!(r.value(9), None);
    assert_eq!(r.values().len(), 5);
    let pairs: Vec<_> = r.iter().collect();
    assert_eq!(pairs[0], ("remote_addr", "10.0.0.1"));
    assert_eq!(pairs[4], ("status", "404"));
}

#[test]
fn leading_and_trailing_literals_must_match() {
    let f = compile("<$a|$b>");
    let r = f.parse("<x|y>").unwrap();
    assert_eq!((r.get("a"), r.get("b")), (Some("x"), Some("y")));
    assert_eq!(f.parse("<|>").unwrap().values(), ["", ""]);
    let err = f.parse("x|y>").unwrap_err();
    assert_eq!(err.to_string(), "column 1: expected `<`, found `x|y>`");
    let err = f.parse("<x|y").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 4: $b starts here but no `>` follows it anywhere in the rest of the line"
    );
}

#[test]
fn request_with_escaped_quotes_and_spaces() {
    let f = presets::preset("combined").unwrap();
    let line = r#"1.2.3.4 - - [t] "GET /?q=\x22a b\x22 HTTP/1.1" 200 5 "-" "Mozilla/5.0 (X11; Linux) \xE4\xB8\xAD""#;
    let r = f.parse(line).unwrap();
    assert_eq!(r.get("request"), Some(r"GET /?q=\x22a b\x22 HTTP/1.1"));
    assert_eq!(
        Escape::Default.unescape(r.get("request").unwrap()),
        r#"GET /?q="a b" HTTP/1.1"#
    );
    assert_eq!(
        Escape::Default.unescape(r.get("http_user_agent").unwrap()),
        "Mozilla/5.0 (X11; Linux) 中"
    );
}

#[test]
fn errors_on_combined_lines_name_the_column() {
    let f = presets::preset("combined").unwrap();
    // The column counts characters, so the UTF-8 user name does not shift it.
    let line = r#"1.2.3.4 - 中文 (21/Nov/2025:06:44:01 +0000] "GET / HTTP/1.1" 200 5 "-" "ua""#;
    let err = f.parse(line).unwrap_err();
    assert_eq!(
        err,
        ParseError::MissingLiteral {
            column: 11,
            variable: "remote_user".into(),
            expected: " [".into(),
        }
    );

    let line = r#"1.2.3.4 - - [t] "GET / HTTP/1.1" OK 5 "-" "ua""#;
    let err = f.parse(line).unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 34: $status should be a number or `-`, found `OK`"
    );

    let line = r#"1.2.3.4 - - [t] "GET / HTTP/1.1" 200 5 "-" "ua" extra"#;
    let err = f.parse(line).unwrap_err();
    assert_eq!(
        err,
        ParseError::TrailingText {
            column: 48,
            found: " extra".into()
        }
    );
}

#[test]
fn errors_say_what_was_expected_where() {
    let err = compile("$a:$b").parse("no colon").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 1: $a starts here but no `:` follows it anywhere in the rest of the line"
    );

    let err = compile("[$a] $b").parse("[x]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 2: $a starts here but no `] ` follows it anywhere in the rest of the line"
    );
    let err = compile("[$a]").parse("[x] ").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 4: the format ends here but the line goes on: ` `"
    );
    let err = compile("$a=").parse("x").unwrap_err();
    assert!(err.to_string().contains("no `=` follows"), "{err}");
    let err = compile(r#""$a" $b"#).parse(r#""x"y" z"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"column 2: $a would have to contain a raw `"`, which nginx's default escaping writes as \x22 (was the log written with escape=none?)"#
    );
    // The same line is fine when the log says it was not escaped.
    let f = LogFormat::compile(r#""$a" $b"#, Escape::None).unwrap();
    assert_eq!(f.parse(r#""x"y" z"#).unwrap().get("a"), Some(r#"x"y"#));
    let err = compile("[$a]").parse("").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 1: expected `[`, found the end of the line"
    );
}

#[test]
fn adjacent_variables_cannot_be_read() {
    let f = compile("$a $b$c");
    let want = ParseError::AdjacentVariables {
        first: "b".into(),
        second: "c".into(),
    };
    assert_eq!(f.check_parseable(), Err(want.clone()));
    assert_eq!(f.parse("x yz"), Err(want));
    assert!(f
        .check_parseable()
        .unwrap_err()
        .to_string()
        .starts_with("$b$c: two variables"));
    // Writing them is still fine.
    assert_eq!(
        f.render_to_string(&[("a", "1"), ("b", "2"), ("c", "3")]),
        "1 23"
    );
}

#[test]
fn backs_up_when_the_first_split_leads_nowhere() {
    // $status must be a number, so $b has to take "y - z".
    let f = compile("$a - $b $status");
    let r = f.parse("x - y - z 200").unwrap();
    assert_eq!(
        (r.get("a"), r.get("b"), r.get("status")),
        (Some("x"), Some("y - z"), Some("200"))
    );
    // Overlapping occurrences of the delimiter are candidates too: the
    // second `==` starts inside the first.
    let f = compile("$a==$status");
    let r = f.parse("k===7").unwrap();
    assert_eq!((r.get("a"), r.get("status")), (Some("k="), Some("7")));
}

#[test]
fn ambiguous_bad_lines_end_with_an_error() {
    let f = compile("$a $b $c $d $e $f $g $h $i $j $status");
    let line = "x ".repeat(2000);
    let err = f.parse(&line).unwrap_err();
    assert!(matches!(err, ParseError::NotANumber { .. }), "{err}");
}

#[test]
fn json_lines_read_back() {
    let f = LogFormat::compile(
        r#"{"addr":"$remote_addr","ua":"$http_user_agent","up":"$upstream_addr"}"#,
        Escape::Json,
    )
    .unwrap();
    let ua = "Mozilla \"x\",\"ua\":\"y\" 中";
    let line = f.render_to_string(&[("remote_addr", "::1"), ("http_user_agent", ua)]);
    let r = f.parse(&line).unwrap();
    assert_eq!(r.get("remote_addr"), Some("::1"));
    assert_eq!(Escape::Json.unescape(r.get("http_user_agent").unwrap()), ua);
    assert_eq!(r.get("upstream_addr"), Some(""));
}

/// xorshift64*: deterministic "random" values without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn value(&mut self, numeric: bool) -> String {
        const CHARS: &[char] = &[
            'a', 'Z', '0', '9', ' ', ' ', '"', '\\', '[', ']', '-', ':', ',', '=', '/', '\t', '\n',
            '\u{1}', '\u{7f}', 'é', '中', '😀',
        ];
        let len = self.below(10);
        if numeric {
            return (0..len.max(1))
                .map(|_| char::from(b'0' + self.below(10) as u8))
                .collect();
        }
        (0..len).map(|_| CHARS[self.below(CHARS.len())]).collect()
    }
}

fn rendered(escape: Escape, value: Option<&str>) -> String {
    let f = LogFormat::compile("$v", escape).unwrap();
    f.render_to_string(&|_: &str| value)
}

/// Renders random values, skipping any whose rendered form would contain
/// (or run into) the literal after it — the one thing the format cannot
/// disambiguate — and checks that parsing and unescaping gives them back.
fn round_trip(format: &str, escape: Escape, seed: u64) {
    let f = LogFormat::compile(format, escape).unwrap();
    let mut rng = Rng(seed);
    let mut line = String::new();
    for _ in 0..300 {
        let mut values: Vec<Option<String>> = Vec::new();
        for (i, seg) in f.segments().iter().enumerate() {
            let Segment::Var(_) = seg else { continue };
            let after = match f.segments().get(i + 1) {
                Some(Segment::Literal(text)) => Some(text.as_str()),
                _ => None,
            };
            let numeric = f.shapes[values.len()] == Shape::Number;
            let value = loop {
                let mut v = (numeric || rng.below(8) != 0).then(|| rng.value(numeric));
                if escape == Escape::None {
                    // escape=none writes line breaks raw; a reader that goes
                    // line by line cannot get them back.
                    if let Some(v) = &mut v {
                        v.retain(|c| c != '\n' && c != '\r');
                    }
                }
                // Values in the shape nginx gives these variables.
                if let Some(v) = &mut v {
                    match f.shapes[values.len()] {
                        Shape::List => *v = v.replace(' ', "").trim_matches([',', ':']).to_string(),
                        Shape::Word => v.retain(|c| c != ' '),
                        Shape::Any | Shape::Number => {}
                    }
                }
                let Some(after) = after else { break v };
                let shown = rendered(escape, v.as_deref());
                if (shown.clone() + after).find(after) == Some(shown.len()) {
                    break v;
                }
            };
            values.push(value);
        }
        let names = f.variables();
        let lookup = |name: &str| {
            let i = names.iter().position(|n| n == name)?;
            values[i].as_deref()
        };
        line.clear();
        f.render(&lookup, &mut line);
        let record = f.parse(&line).unwrap_or_else(|e| panic!("{e}\n{line}"));
        for (i, want) in values.iter().enumerate() {
            let got = record.value(i).unwrap();
            match want {
                Some(want) => assert_eq!(escape.unescape(got), *want, "{line}"),
                None if escape == Escape::Default => assert_eq!(got, "-"),
                None => assert_eq!(got, ""),
            }
        }
    }
}

#[test]
fn round_trips_random_values_in_every_escape_mode() {
    for escape in [Escape::Default, Escape::Json, Escape::None] {
        round_trip(presets::LBKIT, escape, 0x9c53_c269_ef7a_634e);
        round_trip(presets::UPSTREAM_LOG_PORT, escape, 42);
        round_trip(
            r#"{"t":"$time_iso8601","s":$status,"ua":"$http_user_agent"}"#,
            escape,
            7,
        );
    }
}

#[test]
fn an_address_is_one_word() {
    // A vhost-prefixed line (Apache's vhost_combined, or nginx with
    // `$host $remote_addr ...`) is not combined: read as combined, its
    // address would be "lessons.example.com 192.168.0.1".
    let f = presets::preset("combined").unwrap();
    let line = r#"lessons.example.com 192.168.0.1 - - [21/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.0""#;
    let e = f.parse(line).unwrap_err().to_string();
    assert!(e.contains("$remote_addr has no spaces"), "{e}");
    let ok = f.parse(&line["lessons.example.com ".len()..]).unwrap();
    assert_eq!(ok.get("remote_addr"), Some("192.168.0.1"));
}
