//! nginx.conf's syntax: directives (`name args;`) and blocks (`name args { ... }`),
//! `#` comments, single and double quotes with backslash escapes. Only the
//! shape; what the directives mean is `conf::interpret`'s business.

use super::ConfError;

/// A directive with its arguments, the file and line it starts on, and its
/// block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    /// The file it is written in (an included one, perhaps).
    pub file: std::sync::Arc<str>,
    pub line: usize,
    pub block: Option<Vec<Directive>>,
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Semicolon,
    Open,
    Close,
}

struct Lexer<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

impl Lexer<'_> {
    fn next(&mut self) -> Result<Option<(Token, usize)>, (usize, String)> {
        // Skip blanks and comments.
        while let Some(&c) = self.text.get(self.at) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.at += 1;
                }
                b' ' | b'\t' | b'\r' => self.at += 1,
                b'#' => {
                    while self.text.get(self.at).is_some_and(|c| *c != b'\n') {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
        let line = self.line;
        let Some(&c) = self.text.get(self.at) else {
            return Ok(None);
        };
        let single = |t| Ok(Some((t, line)));
        match c {
            b';' => {
                self.at += 1;
                single(Token::Semicolon)
            }
            b'{' => {
                self.at += 1;
                single(Token::Open)
            }
            b'}' => {
                self.at += 1;
                single(Token::Close)
            }
            b'"' | b'\'' => {
                self.at += 1;
                let mut word = Vec::new();
                loop {
                    let Some(&d) = self.text.get(self.at) else {
                        return Err((line, "a quoted string is not closed".to_string()));
                    };
                    self.at += 1;
                    match d {
                        _ if d == c => break,
                        // nginx unescapes these inside quotes, and no others.
                        b'\\'
                            if matches!(
                                self.text.get(self.at),
                                Some(b'"' | b'\'' | b'\\' | b't' | b'r' | b'n')
                            ) =>
                        {
                            word.push(match self.text[self.at] {
                                b't' => b'\t',
                                b'r' => b'\r',
                                b'n' => b'\n',
                                other => other,
                            });
                            self.at += 1;
                        }
                        b'\n' => {
                            self.line += 1;
                            word.push(d);
                        }
                        _ => word.push(d),
                    }
                }
                Ok(Some((
                    Token::Word(String::from_utf8_lossy(&word).into_owned()),
                    line,
                )))
            }
            _ => {
                let start = self.at;
                while let Some(&d) = self.text.get(self.at) {
                    if matches!(
                        d,
                        b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b'}' | b'"' | b'\''
                    ) {
                        break;
                    }
                    // `${var}` keeps its braces inside one word.
                    if d == b'$' && self.text.get(self.at + 1) == Some(&b'{') {
                        while self.text.get(self.at).is_some_and(|c| *c != b'}') {
                            self.at += 1;
                        }
                    }
                    self.at += 1;
                }
                let word = String::from_utf8_lossy(&self.text[start..self.at.min(self.text.len())])
                    .into_owned();
                Ok(Some((Token::Word(word), line)))
            }
        }
    }
}

/// Parses a whole file into its top-level directives.
pub fn parse(file: &str, text: &str) -> Result<Vec<Directive>, ConfError> {
    let mut lexer = Lexer {
        text: text.as_bytes(),
        at: 0,
        line: 1,
    };
    let name: std::sync::Arc<str> = file.into();
    let err =
        |line, directive: &str, message: String| ConfError::new(file, line, directive, message);
    // A stack of open blocks: the directives gathered so far, and the
    // directive that opened each.
    let mut stack: Vec<(Vec<Directive>, Option<Directive>)> = vec![(Vec::new(), None)];
    let mut words: Vec<String> = Vec::new();
    let mut first_line = 1;
    loop {
        let token = lexer
            .next()
            .map_err(|(line, m)| err(line, words.first().map_or("", |w| w), m))?;
        let Some((token, line)) = token else { break };
        match token {
            Token::Word(w) => {
                if words.is_empty() {
                    first_line = line;
                }
                words.push(w);
            }
            Token::Semicolon | Token::Open => {
                if words.is_empty() {
                    let what = if token == Token::Open { "'{'" } else { "';'" };
                    return Err(err(line, "", format!("unexpected {what}")));
                }
                let directive = Directive {
                    name: words.remove(0),
                    args: std::mem::take(&mut words),
                    file: name.clone(),
                    line: first_line,
                    block: None,
                };
                if token == Token::Open {
                    stack.push((Vec::new(), Some(directive)));
                } else if let Some(top) = stack.last_mut() {
                    top.0.push(directive);
                }
            }
            Token::Close => {
                if !words.is_empty() {
                    return Err(err(first_line, &words[0], "is missing its ';'".to_string()));
                }
                if stack.len() == 1 {
                    return Err(err(line, "", "unexpected '}'".to_string()));
                }
                let (children, opener) = stack.pop().expect("checked above");
                if let (Some(mut opener), Some(parent)) = (opener, stack.last_mut()) {
                    opener.block = Some(children);
                    parent.0.push(opener);
                }
            }
        }
    }
    if let Some(w) = words.first() {
        return Err(err(first_line, w, "is missing its ';'".to_string()));
    }
    if stack.len() > 1 {
        let open = stack.last().and_then(|(_, d)| d.as_ref());
        let (line, name) = open.map_or((lexer.line, ""), |d| (d.line, d.name.as_str()));
        return Err(err(
            line,
            name,
            "block is not closed: a '}' is missing".to_string(),
        ));
    }
    Ok(stack.pop().map(|(d, _)| d).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_blocks_quotes_and_comments() {
        let text = r#"
# a comment
http {
    log_format upstream_log '$remote_addr - [$time_local] "$request" '
                            'to: $upstream_addr';
    upstream backend {
        least_conn;   # trailing comment
        server 127.0.0.1:8001 weight=3;
    }
    add_header X-Upstream $upstream_addr always;
    hash ${http_x_user}x;
}
"#;
        let top = parse("nginx.conf", text).unwrap();
        assert_eq!(top.len(), 1);
        let http = &top[0];
        assert_eq!((http.name.as_str(), http.line), ("http", 3));
        let inner = http.block.as_ref().unwrap();
        assert_eq!(inner[0].name, "log_format");
        assert_eq!(
            inner[0].args,
            [
                "upstream_log",
                "$remote_addr - [$time_local] \"$request\" ",
                "to: $upstream_addr"
            ]
        );
        assert_eq!(inner[1].name, "upstream");
        let up = inner[1].block.as_ref().unwrap();
        assert_eq!(up[1].args, ["127.0.0.1:8001", "weight=3"]);
        assert_eq!(up[1].line, 8);
        assert_eq!(inner[3].args, ["${http_x_user}x"]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("x.conf", "http {\n  upstream a {\n    server b\n  }\n}\n").unwrap_err();
        assert_eq!(e.to_string(), "x.conf:3: server: is missing its ';'");
        let e = parse("x.conf", "http {\n upstream a {\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.conf:2: upstream: block is not closed"),
            "{e}"
        );
        let e = parse("x.conf", "}\n").unwrap_err();
        assert_eq!(e.to_string(), "x.conf:1: unexpected '}'");
        let e = parse("x.conf", "log_format a 'open\n").unwrap_err();
        assert!(e.to_string().contains("quoted string is not closed"), "{e}");
    }
}
