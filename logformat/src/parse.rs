//! Reading a rendered line back into its variable values.
//!
//! Each variable's value runs up to the next occurrence of the whole literal
//! that follows it; the last variable, if nothing follows it, takes the rest
//! of the line; literals must match exactly. That first choice is right for
//! every line nginx writes with the usual formats, because the escaping keeps
//! `"` out of values. When it leads to a mismatch further on, the parser
//! backs up and tries the literal's next occurrence, which is what makes
//! `$remote_addr:$remote_port` read `::1:48878` as `::1` and `48878` (ports
//! and other counters must be numbers), and under `escape=default` a split
//! that would put a raw `"` inside a value is never taken (nginx writes it as
//! `\x22`). Dead ends are remembered, so a bad line costs at most a bounded
//! number of attempts. A line that matches no way is reported where the
//! first, left-to-right reading went wrong.

use std::sync::Arc;

use crate::{Escape, LogFormat, Segment, Shape};

/// The values of one parsed line, borrowed from it. `-` stays `-`: whether
/// it means "not set" is the caller's call (`$body_bytes_sent` is never `-`,
/// `$http_referer` often is). Values are still escaped; see
/// [`Escape::unescape`](crate::Escape::unescape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    names: Arc<[String]>,
    values: Vec<&'a str>,
}

impl<'a> Record<'a> {
    /// The value of the first variable called `name` (no `$`).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let i = self.names.iter().position(|n| n == name)?;
        self.values.get(i).copied()
    }

    /// The value at `index` in [`LogFormat::variables`] order; look the
    /// index up once with [`LogFormat::var_index`].
    pub fn value(&self, index: usize) -> Option<&'a str> {
        self.values.get(index).copied()
    }

    /// All values, in [`LogFormat::variables`] order.
    pub fn values(&self) -> &[&'a str] {
        &self.values
    }

    /// `(name, value)` pairs in the order of the format.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a str)> + '_ {
        let names = self.names.iter().map(String::as_str);
        names.zip(self.values.iter().copied())
    }
}

/// Why a line does not match the format. Columns count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A literal of the format is not where it should be.
    #[error("column {column}: expected `{expected}`, found {}", found_text(.found))]
    ExpectedLiteral {
        column: usize,
        expected: String,
        found: String,
    },
    /// The literal after a variable occurs nowhere in the rest of the line.
    #[error(
        "column {column}: ${variable} starts here but no `{expected}` follows it \
         anywhere in the rest of the line"
    )]
    MissingLiteral {
        column: usize,
        variable: String,
        expected: String,
    },
    /// A variable that nginx always writes as a number holds something else.
    #[error("column {column}: ${variable} should be a number or `-`, found `{found}`")]
    NotANumber {
        column: usize,
        variable: String,
        found: String,
    },
    /// A variable nginx writes without spaces would hold one.
    #[error("column {column}: ${variable} has no spaces, found `{found}`")]
    NotAWord {
        column: usize,
        variable: String,
        found: String,
    },
    /// A `$upstream_*` list would start or end with a separator.
    #[error("column {column}: ${variable} should be a list such as `a, b : c`, found `{found}`")]
    NotAList {
        column: usize,
        variable: String,
        found: String,
    },
    /// Only a value with a `"` in it would make the line match, and
    /// escape=default never writes one.
    #[error(
        "column {column}: ${variable} would have to contain a raw `\"`, which nginx's default \
         escaping writes as \\x22 (was the log written with escape=none?)"
    )]
    RawQuote { column: usize, variable: String },
    /// The format ended but the line goes on.
    #[error("column {column}: the format ends here but the line goes on: {}", found_text(.found))]
    TrailingText { column: usize, found: String },
    /// The format has `$a$b`: the line cannot say where one value ends.
    #[error(
        "${first}${second}: two variables with no text between them cannot be read back; \
         put a separator between them in the log_format"
    )]
    AdjacentVariables { first: String, second: String },
}

fn found_text(found: &str) -> String {
    if found.is_empty() {
        "the end of the line".to_owned()
    } else {
        format!("`{found}`")
    }
}

/// Candidate splits tried per line before giving up; only pathological
/// lines against very ambiguous formats get near it.
const ATTEMPTS: u32 = 10_000;

impl LogFormat {
    /// Fails when lines of this format cannot be read back at all (two
    /// variables with nothing between them). Check once before reading a
    /// file rather than per line.
    pub fn check_parseable(&self) -> Result<(), ParseError> {
        match &self.adjacent {
            Some((first, second)) => Err(ParseError::AdjacentVariables {
                first: first.clone(),
                second: second.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Reads one line (a trailing `\n` or `\r\n` is ignored) back into the
    /// values of this format's variables.
    pub fn parse<'a>(&self, line: &'a str) -> Result<Record<'a>, ParseError> {
        let mut values = Vec::new();
        self.parse_into(line, &mut values)?;
        Ok(Record {
            names: Arc::clone(&self.names),
            values,
        })
    }

    /// [`LogFormat::parse`] into a buffer the caller reuses: the values in
    /// [`LogFormat::variables`] order. For readers of many lines, it saves
    /// an allocation and a shared reference count per line.
    pub fn parse_into<'a>(
        &self,
        line: &'a str,
        values: &mut Vec<&'a str>,
    ) -> Result<(), ParseError> {
        self.check_parseable()?;
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        values.clear();
        values.resize(self.names.len(), "");
        // Nearly every line splits at the first occurrence of every
        // literal: try that straight, and search only when it fails.
        if self.greedy(line, values) {
            return Ok(());
        }
        self.search(line, values)
    }

    /// The full search over the ways a line can split.
    pub(crate) fn search<'a>(
        &self,
        line: &'a str,
        values: &mut Vec<&'a str>,
    ) -> Result<(), ParseError> {
        values.clear();
        values.resize(self.names.len(), "");
        let mut search = Search {
            format: self,
            line,
            values,
            dead: Vec::new(),
            attempts: ATTEMPTS,
            first_miss: None,
        };
        if search.run(0, 0, 0) {
            Ok(())
        } else {
            Err(search.error())
        }
    }
}

impl LogFormat {
    /// The split at the first occurrence of each literal, checked as the
    /// search checks a split: the first path the search would try, so when
    /// it fits, its values are the search's, without the search's upkeep.
    fn greedy<'a>(&self, line: &'a str, values: &mut [&'a str]) -> bool {
        let bytes = line.as_bytes();
        // Each `"` of the literals takes one of the line's: when the line
        // has no others, no value holds one.
        let quotes_in_values = self.escape == Escape::Default
            && memchr::memchr_iter(b'"', bytes).count() > self.literal_quotes;
        let (mut pos, mut slot) = (0, 0);
        let mut segments = self.segments.iter().peekable();
        while let Some(segment) = segments.next() {
            match segment {
                Segment::Literal(text) => {
                    if !starts_with(&bytes[pos..], text.as_bytes()) {
                        return false;
                    }
                    pos += text.len();
                }
                Segment::Var(_) => {
                    let rest = &line[pos..];
                    let end = match segments.peek() {
                        Some(Segment::Literal(next)) => match find(rest, next) {
                            Some(at) => at,
                            None => return false,
                        },
                        None => rest.len(),
                        Some(Segment::Var(_)) => return false,
                    };
                    let value = &rest[..end];
                    let raw_quote = quotes_in_values && value.bytes().any(|b| b == b'"');
                    if raw_quote || !fits(self, slot, value) {
                        return false;
                    }
                    values[slot] = value;
                    slot += 1;
                    pos += end;
                }
            }
        }
        pos == line.len()
    }
}

#[derive(Debug, Clone, Copy)]
enum Miss {
    /// The literal segment at this index did not match.
    Literal(usize),
    /// The var segment at this index has no following literal in the rest.
    NoDelimiter(usize),
    /// The value for this var slot, ending at this byte, does not have its
    /// variable's shape (a number, a list).
    Misshapen {
        slot: usize,
        end: usize,
    },
    /// The value for this var slot would hold a `"`.
    RawQuote {
        slot: usize,
    },
    Trailing,
}

struct Search<'f, 'l, 'v> {
    format: &'f LogFormat,
    line: &'l str,
    values: &'v mut Vec<&'l str>,
    /// Bitset over (segment, byte offset) states known to fail; allocated on
    /// the first dead end, so lines that parse first time allocate nothing.
    dead: Vec<u64>,
    attempts: u32,
    /// The first failure met, which is the one the plain left-to-right
    /// reading (first occurrence of every literal) runs into. Failures met
    /// while backing up are guesses about a split nginx never wrote, and
    /// reporting them points users at the wrong column.
    first_miss: Option<(usize, Miss)>,
}

impl<'l> Search<'_, 'l, '_> {
    fn run(&mut self, seg: usize, pos: usize, slot: usize) -> bool {
        let segments = &self.format.segments;
        let Some(segment) = segments.get(seg) else {
            if pos == self.line.len() {
                return true;
            }
            self.miss(pos, Miss::Trailing);
            return false;
        };
        let rest = &self.line[pos..];
        if let Segment::Literal(text) = segment {
            if starts_with(rest.as_bytes(), text.as_bytes()) {
                return self.run(seg + 1, pos + text.len(), slot);
            }
            self.miss(pos, Miss::Literal(seg));
            return false;
        }
        let delimiter = match segments.get(seg + 1) {
            Some(Segment::Literal(text)) => text.as_str(),
            // check_parseable() rules this out before the search starts.
            Some(Segment::Var(_)) => return false,
            None => {
                if fits(self.format, slot, rest) {
                    self.values[slot] = rest;
                    return true;
                }
                self.miss(
                    pos,
                    Miss::Misshapen {
                        slot,
                        end: self.line.len(),
                    },
                );
                return false;
            }
        };
        if self.is_dead(seg, pos) {
            return false;
        }
        let mut from = 0;
        let mut found = false;
        // nginx writes `"` in a value as \x22, so a split whose value holds
        // one cannot be the one nginx wrote: one search for the first `"`
        // rules out every split past it.
        let quote = match self.format.escape {
            Escape::Default => memchr::memchr(b'"', rest.as_bytes()),
            _ => None,
        };
        while let Some(at) = find(&rest[from..], delimiter).map(|i| from + i) {
            found = true;
            if self.attempts == 0 {
                return false;
            }
            self.attempts -= 1;
            let value = &rest[..at];
            if quote.is_some_and(|q| q < at) {
                self.miss(pos, Miss::RawQuote { slot });
                break;
            } else if !fits(self.format, slot, value) {
                self.miss(
                    pos,
                    Miss::Misshapen {
                        slot,
                        end: pos + at,
                    },
                );
            } else {
                self.values[slot] = value;
                if self.run(seg + 2, pos + at + delimiter.len(), slot + 1) {
                    return true;
                }
            }
            // Overlapping occurrences count: step one character, not past
            // the whole delimiter.
            from = at + rest[at..].chars().next().map_or(1, char::len_utf8);
        }
        if !found {
            self.miss(pos, Miss::NoDelimiter(seg));
        }
        self.mark_dead(seg, pos);
        false
    }

    fn miss(&mut self, pos: usize, miss: Miss) {
        if self.first_miss.is_none() {
            self.first_miss = Some((pos, miss));
        }
    }

    fn state(&self, seg: usize, pos: usize) -> usize {
        seg * (self.line.len() + 1) + pos
    }

    fn is_dead(&self, seg: usize, pos: usize) -> bool {
        let bit = self.state(seg, pos);
        self.dead
            .get(bit / 64)
            .is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }

    fn mark_dead(&mut self, seg: usize, pos: usize) {
        let bit = self.state(seg, pos);
        if self.dead.is_empty() {
            let states = (self.format.segments.len() + 1) * (self.line.len() + 1);
            self.dead = vec![0; states.div_ceil(64)];
        }
        self.dead[bit / 64] |= 1 << (bit % 64);
    }

    fn error(&self) -> ParseError {
        let (pos, miss) = self.first_miss.unwrap_or((0, Miss::Trailing));
        let column = self.line[..pos].chars().count() + 1;
        let segments = &self.format.segments;
        let text = |seg: usize| match &segments[seg] {
            Segment::Literal(s) | Segment::Var(s) => s.clone(),
        };
        let rest = &self.line[pos..];
        match miss {
            Miss::Literal(seg) => {
                let expected = text(seg);
                let shown = expected.chars().count().max(12);
                ParseError::ExpectedLiteral {
                    column,
                    found: rest.chars().take(shown).collect(),
                    expected,
                }
            }
            Miss::NoDelimiter(seg) => ParseError::MissingLiteral {
                column,
                variable: text(seg),
                expected: text(seg + 1),
            },
            Miss::Misshapen { slot, end } => {
                let variable = self.format.names[slot].clone();
                let found = self.line[pos..end].chars().take(40).collect();
                match self.format.shapes[slot] {
                    Shape::List => ParseError::NotAList {
                        column,
                        variable,
                        found,
                    },
                    Shape::Word => ParseError::NotAWord {
                        column,
                        variable,
                        found,
                    },
                    _ => ParseError::NotANumber {
                        column,
                        variable,
                        found,
                    },
                }
            }
            Miss::RawQuote { slot } => ParseError::RawQuote {
                column,
                variable: self.format.names[slot].clone(),
            },
            Miss::Trailing => ParseError::TrailingText {
                column,
                found: rest.chars().take(40).collect(),
            },
        }
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;

/// Whether `value` has the shape of the variable in `slot` (a number, a
/// list, a word): the checks that tell one split of a line from another.
fn fits(format: &LogFormat, slot: usize, value: &str) -> bool {
    match format.shapes[slot] {
        Shape::Any => true,
        // escape=json/none write an unset port as nothing; default as `-`.
        Shape::Number => {
            if value.is_empty() {
                return format.escape != Escape::Default;
            }
            // Digits and dots with a digit among them, or `-`: one pass.
            let mut digit = false;
            for b in value.bytes() {
                match b {
                    b'0'..=b'9' => digit = true,
                    b'.' => {}
                    _ => return value == "-",
                }
            }
            digit
        }
        // Entries never hold a space, so every space in a list is part
        // of a separator: `a, b : c` fits, `a rt=0.1` does not (that is
        // the next field of another format).
        Shape::List => {
            let edge = |b: Option<&u8>| matches!(b, Some(b',' | b':' | b' '));
            !edge(value.as_bytes().first())
                && !edge(value.as_bytes().last())
                && (!has_space(value)
                    || value
                        .split(" : ")
                        .flat_map(|group| group.split(", "))
                        .all(|entry| !entry.is_empty() && !has_space(entry)))
        }
        Shape::Word => !has_space(value),
    }
}

/// A space in a short value, by a plain loop: a char searcher's setup costs
/// more than the scan.
#[inline]
fn has_space(value: &str) -> bool {
    value.bytes().any(|b| b == b' ')
}

/// `hay.find(needle)` for the short literals of a log format: memchr to the
/// literal's first byte, then compare. `str::find` builds a two-way searcher
/// on every call, which cost more than the search on log lines.
fn find(hay: &str, needle: &str) -> Option<usize> {
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(i) = memchr::memchr(first, &hay[from..]) {
        let at = from + i;
        // `needle` is a whole str, so its first byte starts a character
        // and `at` falls on a character boundary of `hay`.
        if starts_with(&hay[at..], needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// `hay.starts_with(needle)` for the short literals of log formats, compared
/// in place: the library call `starts_with` makes costs more than the
/// comparison itself, once or twice per field of every line.
#[inline]
fn starts_with(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay.iter().zip(needle).all(|(a, b)| a == b)
}
