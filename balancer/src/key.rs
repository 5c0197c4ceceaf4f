//! nginx-style key expressions for `hash KEY`: literals and variables such as
//! `$request_uri`, `$remote_addr`, `$http_x_user`, `$cookie_session`.

/// A compiled key: literal text and variable names, evaluated per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExpr {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

impl KeyExpr {
    /// Parses `$request_uri`, `${http_x_user}-suffix`, `user:$cookie_session`.
    pub fn parse(source: &str) -> Result<KeyExpr, crate::conf::ValueError> {
        KeyExpr::read(source).map_err(crate::conf::ValueError)
    }

    fn read(source: &str) -> Result<KeyExpr, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(at) = rest.find('$') {
            text.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            let (name, after) = if let Some(braced) = rest.strip_prefix('{') {
                let end = braced
                    .find('}')
                    .ok_or_else(|| format!("'{source}': '${{' without its closing '}}'"))?;
                (&braced[..end], &braced[end + 1..])
            } else {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            };
            if name.is_empty() {
                return Err(format!(
                    "'{source}': '$' must be followed by a variable name"
                ));
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Var(name.to_ascii_lowercase()));
            rest = after;
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(KeyExpr {
            source: source.to_string(),
            parts,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables it reads, by name.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Whether it is plain text with no variable.
    pub fn is_literal(&self) -> bool {
        self.variables().next().is_none()
    }

    /// The key for one request; a variable `lookup` knows nothing of is empty,
    /// as an unset nginx variable is.
    pub fn eval(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&lookup(v).unwrap_or_default()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "request_uri" => Some("/chat?x=1".into()),
            "http_x_user" => Some("alice".into()),
            _ => None,
        }
    }

    #[test]
    fn literals_and_variables() {
        assert_eq!(
            KeyExpr::parse("$request_uri").unwrap().eval(vars),
            "/chat?x=1"
        );
        assert_eq!(
            KeyExpr::parse("u:${http_x_user}-x").unwrap().eval(vars),
            "u:alice-x"
        );
        assert_eq!(
            KeyExpr::parse("$HTTP_X_USER$cookie_none")
                .unwrap()
                .eval(vars),
            "alice"
        );
        assert_eq!(KeyExpr::parse("fixed").unwrap().eval(vars), "fixed");
    }

    #[test]
    fn bad_keys_say_why() {
        assert!(KeyExpr::parse("${oops").unwrap_err().0.contains("closing"));
        assert!(KeyExpr::parse("a$")
            .unwrap_err()
            .0
            .contains("variable name"));
        assert!(KeyExpr::parse("$-x")
            .unwrap_err()
            .0
            .contains("variable name"));
    }
}
