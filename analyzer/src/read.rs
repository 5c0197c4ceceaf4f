//! Logs in: files or standard input, gzip or plain, line by line in one
//! reused buffer, so memory stays flat however long the log is.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use flate2::read::MultiGzDecoder;

use crate::formats::{self, Chosen, FormatChoiceError, SAMPLE_LINES};
use crate::scan::{scan, Blocks};
use crate::summary::Summary;

/// Where a log comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    /// `-` is standard input, as for cat and awk.
    pub fn from_arg(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::File(arg.into())
        }
    }

    /// The name errors and the report use.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "(stdin)".to_string(),
            Input::File(p) => p.display().to_string(),
        }
    }

    /// Opens the log, unpacking gzip when its first bytes say so (rotated
    /// logs are `.gz` files, and several gzip members in a row, as
    /// `cat a.gz b.gz` makes, are read as one).
    pub fn open(&self) -> io::Result<Box<dyn BufRead>> {
        let raw: Box<dyn Read> = match self {
            Input::Stdin => Box::new(io::stdin().lock()),
            Input::File(p) if p.is_dir() => {
                return Err(io::Error::other(
                    "is a directory; give the log files in it (a quoted 'dir/*.log' works)",
                ))
            }
            Input::File(p) => Box::new(File::open(p)?),
        };
        let mut reader = BufReader::with_capacity(256 * 1024, raw);
        let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        Ok(if gzip {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                GzipNamed(MultiGzDecoder::new(reader)),
            ))
        } else {
            Box::new(reader)
        })
    }
}

/// A gzip stream whose read errors say it is the gzip that is broken.
struct GzipNamed<R>(MultiGzDecoder<R>);

impl<R: BufRead> Read for GzipNamed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("not a whole gzip file: {e}")))
    }
}

/// An input that could not be read as a whole, named.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{input}: {source}")]
    Io { input: String, source: io::Error },
    #[error("{input}: {source}")]
    Format {
        input: String,
        source: FormatChoiceError,
    },
}

/// What the inputs held: their summary, the format they were read in, and
/// the first lines of the first one (to say what they looked like).
#[derive(Debug)]
pub struct Summarized {
    pub summary: Summary,
    /// `None` only when there were no lines to recognise a format from.
    pub chosen: Option<Chosen>,
    pub first_lines: Vec<String>,
}

/// Reads every input into one summary, in the format given or the one the
/// first lines show. Errors are about an input as a whole (unreadable,
/// unrecognisable); bad lines are counted.
pub fn summarize(inputs: &[Input], format: Option<Chosen>) -> Result<Summarized, ReadError> {
    let mut chosen = format;
    let mut summary = Summary::default();
    let mut first_lines = Vec::new();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Lines before this input, so the earliest malformed lines of all
    // inputs are the examples kept.
    let mut before = 0;
    for input in inputs {
        let name = input.name();
        let io = |source| ReadError::Io {
            input: name.clone(),
            source,
        };
        let mut reader = input.open().map_err(io)?;
        let mut blocks = Blocks::new(&mut *reader);
        let Some(first) = blocks.next_block().map_err(io)? else {
            continue;
        };
        if first_lines.is_empty() {
            first_lines = first
                .split(|b| *b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty())
                .take(SAMPLE_LINES)
                .map(|l| {
                    String::from_utf8_lossy(l)
                        .trim_end_matches('\r')
                        .to_string()
                })
                .collect();
        }
        let format = match &chosen {
            Some(c) => c,
            // Only blank lines so far: nothing to recognise a format from.
            None if first_lines.is_empty() => continue,
            None => {
                let sample: Vec<&str> = first_lines.iter().map(String::as_str).collect();
                let detected = formats::detect(&sample).map_err(|source| ReadError::Format {
                    input: name.clone(),
                    source,
                })?;
                chosen.insert(detected)
            }
        };
        let (part, lines) =
            scan(first, &mut blocks, &format.reader, &name, workers, before).map_err(io)?;
        before += lines;
        summary.merge(&part);
    }
    Ok(Summarized {
        summary,
        chosen,
        first_lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{each_line, Blocks};
    use flate2::write::GzEncoder;
    use std::io::{BufRead, Cursor, Write};

    fn collect(reader: &mut dyn BufRead) -> Vec<(u64, String)> {
        let mut blocks = Blocks::new(reader);
        let mut out = Vec::new();
        while let Some(block) = blocks.next_block().unwrap() {
            let block = block.strip_suffix(b"\n").unwrap_or(&block);
            each_line(block, out.len() as u64 + 1, |n, l| {
                out.push((n, l.to_string()))
            });
        }
        out
    }

    #[test]
    fn line_ends_and_bad_bytes() {
        let mut r = Cursor::new(b"a\r\nb\n\xffc".to_vec());
        let got = collect(&mut r);
        assert_eq!(
            got,
            [(1, "a".into()), (2, "b".into()), (3, "\u{fffd}c".into())]
        );
    }

    #[test]
    fn gzip_members_in_a_row_read_as_one_log() {
        let dir = std::env::temp_dir().join(format!("analyzer-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log.gz");
        let mut bytes = Vec::new();
        for part in ["one\ntwo\n", "three\n"] {
            let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part.as_bytes()).unwrap();
            bytes.extend(gz.finish().unwrap());
        }
        std::fs::write(&path, bytes).unwrap();
        let got = collect(&mut *Input::File(path).open().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        let text: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(text, ["one", "two", "three"]);
    }
}
