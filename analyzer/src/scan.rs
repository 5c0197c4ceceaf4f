//! A log read on every core: one thread cuts the input into blocks of whole
//! lines, workers parse them into summaries of their own, and the summaries
//! are merged at the end. Memory is a few blocks in flight, whatever the
//! size of the log.

use std::borrow::Cow;
use std::io::{self, BufRead};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;

use crate::entry::Scratch;
use crate::formats::Reader;
use crate::summary::Summary;

/// Bytes per block: large enough that handing one over costs nothing next
/// to parsing it, small enough that a few in flight stay well under a MB
/// or so each.
const BLOCK: usize = 1 << 20;

/// Whole lines from `reader`, starting with `carry` (bytes already read).
pub struct Blocks<'r> {
    reader: &'r mut dyn BufRead,
    carry: Vec<u8>,
    done: bool,
}

impl<'r> Blocks<'r> {
    pub fn new(reader: &'r mut dyn BufRead) -> Blocks<'r> {
        Blocks {
            reader,
            carry: Vec::new(),
            done: false,
        }
    }

    /// The next block: whole lines (the last one may lack its `\n` at the
    /// end of the input), or `None` at the end.
    pub fn next_block(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut block = std::mem::take(&mut self.carry);
        // Bytes of `block` known to hold no line end (a very long line).
        let mut searched = 0;
        loop {
            if self.done {
                return Ok((!block.is_empty()).then_some(block));
            }
            if block.len() >= BLOCK {
                if let Some(i) = memchr::memrchr(b'\n', &block[searched..]) {
                    // Keep the partial last line for the next block.
                    self.carry = block.split_off(searched + i + 1);
                    return Ok(Some(block));
                }
                searched = block.len();
            }
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                self.done = true;
                continue;
            }
            block.extend_from_slice(buf);
            let n = buf.len();
            self.reader.consume(n);
        }
    }
}

/// Calls `each` with every line of `block` (without its line end; bytes
/// that are not UTF-8 replaced) and its number, `first` being the first's.
pub fn each_line<'b>(block: &'b [u8], first: u64, mut each: impl FnMut(u64, Cow<'b, str>)) {
    // memchr finds line ends many bytes at a time; a split on a closure
    // would look at every byte. Like that split, a block ending in `\n`
    // ends with an empty line.
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', block).chain([block.len()]);
    for (number, end) in (first..).zip(ends) {
        let line = &block[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Valid UTF-8 is the rule; checking for it first is much faster
        // than the lossy conversion's chunking.
        match std::str::from_utf8(line) {
            Ok(text) => each(number, Cow::Borrowed(text)),
            Err(_) => each(number, String::from_utf8_lossy(line)),
        }
    }
}

/// Lines in a block, as numbering needs: a final line without `\n` counts.
fn line_count(block: &[u8]) -> u64 {
    let ends = memchr::memchr_iter(b'\n', block).count() as u64;
    ends + u64::from(!block.ends_with(b"\n"))
}

/// Folds one block into `summary`.
fn add_block(
    summary: &mut Summary,
    reader: &Reader,
    name: &str,
    block: &[u8],
    first: u64,
    order: u64,
) {
    let mut scratch = Scratch::default();
    each_line(block, first, |number, line| {
        if line.trim().is_empty() {
            return;
        }
        let entry = match &line {
            Cow::Borrowed(line) => reader.read(line, &mut scratch),
            Cow::Owned(repaired) => reader.entry(repaired),
        };
        match entry {
            Ok(entry) => summary.add(&entry),
            Err(e) => summary.add_malformed(order + number, || format!("{name}:{number}: {e}")),
        }
    });
}

/// Sends `first` and every block after it to the workers, each with the
/// number of its first line; returns the lines sent.
fn feed(
    first: Vec<u8>,
    blocks: &mut Blocks<'_>,
    send: &std::sync::mpsc::SyncSender<(u64, Vec<u8>)>,
) -> io::Result<u64> {
    let mut line = 1;
    let mut block = Some(first);
    while let Some(b) = block {
        let lines = line_count(&b);
        // Workers only stop early by panicking; join reports that.
        if send.send((line, b)).is_err() {
            break;
        }
        line += lines;
        block = blocks.next_block()?;
    }
    Ok(line - 1)
}

/// Reads the rest of an input (`first` is the block already read) into one
/// summary with `workers` threads. `order` numbers lines across inputs, so
/// the earliest malformed lines are the ones kept as examples.
pub fn scan(
    first: Vec<u8>,
    blocks: &mut Blocks<'_>,
    reader: &Reader,
    name: &str,
    workers: usize,
    order: u64,
) -> io::Result<(Summary, u64)> {
    let workers = workers.max(1);
    // Two blocks waiting per worker keeps them busy without piling up.
    let (send, receive) = sync_channel::<(u64, Vec<u8>)>(workers * 2);
    let receive = Mutex::new(receive);
    let work = |receive: &Mutex<Receiver<(u64, Vec<u8>)>>| {
        let mut summary = Summary::default();
        loop {
            // The lock is held only to take the next block.
            let next = receive.lock().map(|r| r.recv());
            let Ok(Ok((line, block))) = next else { break };
            add_block(&mut summary, reader, name, &block, line, order);
        }
        summary
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| work(&receive)))
            .collect();
        let fed = feed(first, blocks, &send);
        // Closing the channel is what tells the workers the input ended.
        drop(send);
        let mut summary = Summary::default();
        for h in handles {
            // A worker only panics on a bug; say so rather than lose the run.
            let part = h
                .join()
                .map_err(|_| io::Error::other("a worker thread panicked"))?;
            summary.merge(&part);
        }
        Ok((summary, fed?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn blocks_of(text: &str) -> Vec<Vec<u8>> {
        // Reading 64 KiB at a time, as from a file.
        let mut r =
            std::io::BufReader::with_capacity(1 << 16, Cursor::new(text.as_bytes().to_vec()));
        let mut b = Blocks::new(&mut r);
        let mut out = Vec::new();
        while let Some(block) = b.next_block().unwrap() {
            out.push(block);
        }
        out
    }

    #[test]
    fn blocks_hold_whole_lines() {
        let line = "x".repeat(999) + "\n";
        let text = line.repeat(3000) + "tail without newline";
        let blocks = blocks_of(&text);
        assert!(blocks.len() > 2);
        assert!(blocks[..blocks.len() - 1]
            .iter()
            .all(|b| b.ends_with(b"\n")));
        assert_eq!(blocks.concat(), text.as_bytes());
        assert_eq!(blocks.iter().map(|b| line_count(b)).sum::<u64>(), 3001);
    }

    #[test]
    fn a_line_longer_than_a_block_stays_whole() {
        let long = "y".repeat(BLOCK * 3);
        let text = format!("a\n{long}\nb\n");
        let blocks = blocks_of(&text);
        assert_eq!(blocks.concat(), text.as_bytes());
        let mut lines = Vec::new();
        for b in &blocks {
            each_line(b.strip_suffix(b"\n").unwrap(), 0, |_, l| {
                lines.push(l.len())
            });
        }
        assert_eq!(lines, [1, BLOCK * 3, 1]);
    }

    #[test]
    fn many_workers_count_like_one() {
        let reader = crate::formats::named("loadgen").unwrap().unwrap().reader;
        let mut text = String::new();
        for i in 0..50_000 {
            let node = ["127.0.0.1:8001", "127.0.0.1:8002"][i % 2];
            text.push_str(&format!(
                "1763712000.{:03} 200 0.0{:02} 18 {node}\n",
                i % 1000,
                i % 100
            ));
            if i % 10_000 == 7 {
                text.push_str("garbage\n");
            }
        }
        let run = |workers| {
            let mut r = Cursor::new(text.as_bytes().to_vec());
            let mut blocks = Blocks::new(&mut r);
            let first = blocks.next_block().unwrap().unwrap();
            scan(first, &mut blocks, &reader, "t.log", workers, 0).unwrap()
        };
        let (one, lines) = run(1);
        let (four, _) = run(4);
        assert_eq!(lines, 50_005);
        assert_eq!(one.all.requests, 50_000);
        assert_eq!(four.all.requests, one.all.requests);
        assert_eq!(four.nodes["127.0.0.1:8002"].requests, 25_000);
        assert_eq!(four.all.request_time, one.all.request_time);
        assert_eq!(four.malformed, 5);
        assert_eq!(four.malformed_examples, one.malformed_examples);
        assert!(
            four.malformed_examples[0].1.starts_with("t.log:9: "),
            "{:?}",
            four.malformed_examples
        );
    }
}
