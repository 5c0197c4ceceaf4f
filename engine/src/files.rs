//! Per-request files, written as requests complete (nothing kept in
//! memory): ab's `-g` gnuplot table and loadgen's `--log`, which the
//! analyzer reads (logformat's `loadgen` preset). And ab's `-e` CSV of
//! percentiles, written at the end from the merged histogram.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

/// Where per-request rows go; shared by the workers.
pub struct Rows {
    gnuplot: Option<Mutex<BufWriter<File>>>,
    log: Option<Mutex<BufWriter<File>>>,
}

/// One finished request, for the row writers.
pub struct Row<'a> {
    pub started: SystemTime,
    pub connect: Duration,
    pub total: Duration,
    pub waiting: Duration,
    /// 0 when no answer came.
    pub status: u16,
    pub body_bytes: u64,
    pub node: Option<&'a str>,
}

fn create(flag: &str, path: &Path) -> Result<BufWriter<File>, WriteError> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|source| WriteError::new(flag, path, source))
}

/// ab's `-g` time stamp: `Sat Nov 21 07:48:30 2026` (UTC here).
fn ctime(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let iso = humantime::format_rfc3339_seconds(t).to_string(); // 2026-11-21T07:48:30Z
    let month = iso[5..7].parse::<usize>().map_or(0, |m| m.clamp(1, 12) - 1);
    let day: u32 = iso[8..10].parse().unwrap_or(1);
    format!(
        "{} {} {day:2} {} {}",
        DAYS[((secs / 86400) % 7) as usize],
        MONTHS[month],
        &iso[11..19],
        &iso[0..4]
    )
}

impl Rows {
    pub fn open(gnuplot: Option<&PathBuf>, log: Option<&PathBuf>) -> Result<Rows, WriteError> {
        let gnuplot = match gnuplot {
            None => None,
            Some(p) => {
                let mut w = create("-g", p)?;
                let _ = writeln!(w, "starttime\tseconds\tctime\tdtime\tttime\twait");
                Some(Mutex::new(w))
            }
        };
        let log = log
            .map(|p| create("--log", p).map(Mutex::new))
            .transpose()?;
        Ok(Rows { gnuplot, log })
    }

    /// No per-request files.
    pub fn none() -> Rows {
        Rows {
            gnuplot: None,
            log: None,
        }
    }

    pub fn wanted(&self) -> bool {
        self.gnuplot.is_some() || self.log.is_some()
    }

    pub fn write(&self, r: &Row<'_>) {
        let ms = |d: Duration| (d.as_micros() as f64 / 1000.0).round() as u64;
        if let Some(g) = &self.gnuplot {
            let secs = r
                .started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let line = format!(
                "{}\t{secs}\t{}\t{}\t{}\t{}\n",
                ctime(r.started),
                ms(r.connect),
                ms(r.total.saturating_sub(r.connect)),
                ms(r.total),
                ms(r.waiting)
            );
            let _ = g
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(line.as_bytes());
        }
        if let Some(l) = &self.log {
            let end = (r.started + r.total)
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let line = format!(
                "{}.{:03} {} {}.{:03} {} {}\n",
                end.as_secs(),
                end.subsec_millis(),
                r.status,
                r.total.as_secs(),
                r.total.subsec_millis(),
                r.body_bytes,
                r.node.unwrap_or("-")
            );
            let _ = l
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(line.as_bytes());
        }
    }

    pub fn flush(&self) {
        for w in [&self.gnuplot, &self.log].into_iter().flatten() {
            let _ = w.lock().unwrap_or_else(|e| e.into_inner()).flush();
        }
    }
}

/// ab's `-e`: the time within which each percentage of requests was served.
pub fn write_csv(path: &Path, total: &Histogram<u64>) -> Result<(), WriteError> {
    let mut w = create("-e", path)?;
    let _ = writeln!(w, "Percentage served,Time in ms");
    for p in 0..100u32 {
        let us = if total.is_empty() {
            0
        } else {
            total.value_at_quantile(f64::from(p) / 100.0)
        };
        let _ = writeln!(w, "{p},{:.3}", us as f64 / 1000.0);
    }
    w.flush()
        .map_err(|source| WriteError::new("-e", path, source))
}

/// A file a flag asked for could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {}: {source}", .path.display())]
pub struct WriteError {
    pub flag: String,
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl WriteError {
    pub fn new(flag: &str, path: &Path, source: std::io::Error) -> WriteError {
        WriteError {
            flag: flag.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes a file a flag asked for; the error names the flag.
pub fn write_file(flag: &str, path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), WriteError> {
    std::fs::write(path, bytes).map_err(|source| WriteError::new(flag, path, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_like_ab() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_247_310); // 2026-11-21T07:48:30Z, a Saturday
        assert_eq!(ctime(t), "Sat Nov 21 07:48:30 2026");
        assert_eq!(ctime(UNIX_EPOCH), "Thu Jan  1 00:00:00 1970");
    }

    #[test]
    fn log_lines_parse_with_the_loadgen_preset() {
        let dir = std::env::temp_dir().join(format!("loadgen-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (g, l) = (dir.join("g.tsv"), dir.join("log"));
        let rows = Rows::open(Some(&g), Some(&l)).unwrap();
        rows.write(&Row {
            started: UNIX_EPOCH + Duration::from_secs(100),
            connect: Duration::from_micros(300),
            total: Duration::from_millis(12),
            waiting: Duration::from_millis(11),
            status: 200,
            body_bytes: 18,
            node: Some("127.0.0.1:8001"),
        });
        rows.flush();
        let log = std::fs::read_to_string(&l).unwrap();
        assert_eq!(log, "100.012 200 0.012 18 127.0.0.1:8001\n");
        let format = logformat::presets::preset("loadgen").unwrap();
        let record = format.parse(log.trim_end()).unwrap();
        assert_eq!(record.get("upstream_addr"), Some("127.0.0.1:8001"));
        assert_eq!(record.get("request_time"), Some("0.012"));
        let table = std::fs::read_to_string(&g).unwrap();
        assert_eq!(
            table.lines().nth(1).unwrap(),
            "Thu Jan  1 00:01:40 1970\t100\t0\t12\t12\t11"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
