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

/// The longest line read as a line. A longer one is kept to this length
/// plus a byte (so it is seen to be too long) and counted as malformed;
/// the rest of it is skipped unread, so a 2 GB line or `/dev/zero` costs
/// no more memory than a short one.
pub const MAX_LINE: usize = 64 << 10;

/// Whole lines from `reader`, starting with `carry` (bytes already read).
pub struct Blocks<'r> {
    reader: &'r mut dyn BufRead,
    carry: Vec<u8>,
    done: bool,
    /// In a line past MAX_LINE: its bytes are dropped up to its end.
    skipping: bool,
    /// Blocks the workers are done with, to fill again: fresh memory for
    /// every block would cost a page fault per 4 KiB read.
    spare: Vec<Vec<u8>>,
}

impl<'r> Blocks<'r> {
    pub fn new(reader: &'r mut dyn BufRead) -> Blocks<'r> {
        Blocks {
            reader,
            carry: Vec::new(),
            done: false,
            skipping: false,
            spare: Vec::new(),
        }
    }

    /// The next block: whole lines (the last one may lack its `\n` at the
    /// end of the input), or `None` at the end.
    pub fn next_block(&mut self) -> io::Result<Option<Vec<u8>>> {
        // The carry is the start of a line: it holds no line end.
        let mut block = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK + (512 << 10)));
        block.clear();
        block.extend_from_slice(&self.carry);
        self.carry.clear();
        // Where the block's unfinished last line starts.
        let mut partial = 0;
        loop {
            // A line is at most MAX_LINE + 1 < BLOCK here, so a full block
            // always holds a line end to cut at.
            if block.len() >= BLOCK && partial > 0 {
                self.carry.extend_from_slice(&block[partial..]);
                block.truncate(partial);
                return Ok(Some(block));
            }
            if self.done {
                return Ok((!block.is_empty()).then_some(block));
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
            if self.skipping {
                // Up to the long line's end; its `\n` is read as usual.
                let n = match memchr::memchr(b'\n', buf) {
                    Some(i) => {
                        self.skipping = false;
                        i
                    }
                    None => buf.len(),
                };
                self.reader.consume(n);
                continue;
            }
            let old = block.len();
            block.extend_from_slice(buf);
            let n = buf.len();
            self.reader.consume(n);
            if let Some(i) = memchr::memrchr(b'\n', &block[old..]) {
                partial = old + i + 1;
            }
            if block.len() - partial > MAX_LINE + 1 {
                block.truncate(partial + MAX_LINE + 1);
                self.skipping = true;
            }
        }
    }
}

/// Calls `each` with every line of `block` (without its line end; bytes
/// that are not UTF-8 replaced) and its number, `first` being the first's.
pub fn each_line<'b>(block: &'b [u8], first: u64, mut each: impl FnMut(u64, Cow<'b, str>)) {
    // memchr finds line ends many bytes at a time; a split on a closure
    // would look at every byte. Like that split, a block ending in `\n`
    // ends with an empty line. A block that is valid UTF-8 as a whole (as
    // logs nearly always are) is checked once, not line by line: a line
    // end is always a character boundary.
    let whole = std::str::from_utf8(block).ok();
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', block).chain([block.len()]);
    for (number, end) in (first..).zip(ends) {
        let range = start
            ..block[start..end]
                .strip_suffix(b"\r")
                .map_or(end, |l| start + l.len());
        start = end + 1;
        match whole {
            Some(text) => each(number, Cow::Borrowed(&text[range])),
            None => {
                let line = &block[range];
                // Valid UTF-8 is the rule; checking for it first is much
                // faster than the lossy conversion's chunking.
                match std::str::from_utf8(line) {
                    Ok(text) => each(number, Cow::Borrowed(text)),
                    Err(_) => each(number, String::from_utf8_lossy(line)),
                }
            }
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
        if line.len() > MAX_LINE {
            let why = || format!("{name}:{number}: a line longer than 64 KiB, not read");
            summary.add_malformed(order + number, why);
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
    returned: &Receiver<Vec<u8>>,
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
        blocks.spare.extend(returned.try_iter());
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
    let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
    let work = |receive: &Mutex<Receiver<(u64, Vec<u8>)>>,
                give_back: std::sync::mpsc::Sender<Vec<u8>>| {
        let mut summary = Summary::default();
        loop {
            // The lock is held only to take the next block.
            let next = receive.lock().map(|r| r.recv());
            let Ok(Ok((line, block))) = next else { break };
            add_block(&mut summary, reader, name, &block, line, order);
            // The reader may have finished; then the block is just freed.
            let _ = give_back.send(block);
        }
        summary
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let give_back = give_back.clone();
                let receive = &receive;
                scope.spawn(move || work(receive, give_back))
            })
            .collect();
        drop(give_back);
        let fed = feed(first, blocks, &send, &returned);
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
    fn a_line_past_the_cap_is_cut_and_the_rest_skipped() {
        for long in [MAX_LINE, MAX_LINE + 1, MAX_LINE + 2, BLOCK * 3] {
            let text = format!("a\n{}\nb\n{}", "y".repeat(long), "z".repeat(long));
            let blocks = blocks_of(&text);
            let mut lines = Vec::new();
            for b in &blocks {
                each_line(b.strip_suffix(b"\n").unwrap_or(b), 0, |_, l| {
                    lines.push(l.len())
                });
            }
            assert_eq!(
                (lines.len(), lines[0], lines[2]),
                (4, 1, 1),
                "a line of {long}"
            );
            for kept in [lines[1], lines[3]] {
                // Whole when it fits, else seen to be longer than the cap.
                let ok = if long <= MAX_LINE {
                    kept == long
                } else {
                    kept > MAX_LINE && kept <= long
                };
                assert!(ok, "a line of {long} read as {kept}");
            }
            if long == BLOCK * 3 {
                assert_eq!(lines[1], MAX_LINE + 1, "cut, the rest skipped");
            }
            assert!(blocks.iter().all(|b| b.len() <= BLOCK + MAX_LINE + 1));
        }
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
