//! The access log: one line per request, rendered by `logformat` with the
//! variables nginx would give it, buffered and flushed a few times a second.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::Request;
use logformat::{LogFormat, Vars};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::vars::RequestView;
use crate::conf::{AccessLog, ProxyConfig};

/// What one request leaves for its log line. The request's details are
/// copied only when there is a log to write them to.
pub(crate) struct Record {
    pub started: Instant,
    request: Option<Box<RequestInfo>>,
    pub status: u16,
    pub body_bytes_sent: u64,
    /// `$sent_http_content_length`: the length the answer promised. A body
    /// cut short keeps its status, as in nginx; this against
    /// `$body_bytes_sent` is what shows the cut in the log.
    pub sent_content_length: Option<u64>,
    /// The upstream broke off the body (nginx's "upstream prematurely
    /// closed connection while reading upstream").
    pub cut: bool,
    pub request_time: Duration,
    /// `$upstream_addr`, `$upstream_status`, `$upstream_response_time`:
    /// one entry per attempt, comma-separated as nginx writes them.
    upstream_addr: String,
    upstream_status: String,
    upstream_times: Vec<Duration>,
    /// The attempts that start a new upstream (an error page's), which
    /// nginx writes after " : " instead of ", ".
    groups_at: Vec<usize>,
}

struct RequestInfo {
    remote: SocketAddr,
    server_name: Arc<str>,
    method: String,
    request_uri: String,
    protocol: &'static str,
    headers: HeaderMap,
}

impl Record {
    /// Whether this request is logged (its location does not say
    /// `access_log off`).
    pub fn logged(&self) -> bool {
        self.request.is_some()
    }

    pub fn new(
        req: &Request<Incoming>,
        remote: SocketAddr,
        server_name: &Arc<str>,
        logging: bool,
    ) -> Record {
        let request = logging.then(|| {
            let protocol = match req.version() {
                hyper::Version::HTTP_10 => "HTTP/1.0",
                hyper::Version::HTTP_2 => "HTTP/2.0",
                _ => "HTTP/1.1",
            };
            Box::new(RequestInfo {
                remote,
                server_name: server_name.clone(),
                method: req.method().to_string(),
                request_uri: req
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string(),
                protocol,
                headers: req.headers().clone(),
            })
        });
        Record::with(request)
    }

    /// A request that never reached a handler: refused unread (400, 431)
    /// or timed out mid-head (408). Only the client is known.
    pub fn unread(remote: SocketAddr, status: u16) -> Record {
        let mut record = Record::with(Some(Box::new(RequestInfo {
            remote,
            server_name: Arc::from(""),
            method: String::new(),
            request_uri: String::new(),
            protocol: "",
            headers: HeaderMap::new(),
        })));
        record.status = status;
        record
    }

    fn with(request: Option<Box<RequestInfo>>) -> Record {
        Record {
            started: Instant::now(),
            request,
            status: 0,
            body_bytes_sent: 0,
            sent_content_length: None,
            cut: false,
            request_time: Duration::ZERO,
            upstream_addr: String::new(),
            upstream_status: String::new(),
            upstream_times: Vec::new(),
            groups_at: Vec::new(),
        }
    }

    pub fn push_attempt(&mut self, addr: &str, status: &str, time: Duration) {
        if !self.upstream_addr.is_empty() {
            let sep = if self.groups_at.last() == Some(&self.upstream_times.len()) {
                " : "
            } else {
                ", "
            };
            self.upstream_addr.push_str(sep);
            self.upstream_status.push_str(sep);
        }
        self.upstream_addr.push_str(addr);
        self.upstream_status.push_str(status);
        self.upstream_times.push(time);
    }

    /// nginx's error-log line for a body the upstream broke off.
    pub fn cut_line(&self) -> String {
        // The values the log itself writes for these variables.
        let var = |name: &str| {
            let mut v = String::new();
            if !self.write_value(name, &mut v) {
                v.push('-');
            }
            v
        };
        let (client, request) = (var("remote_addr"), var("request"));
        let upstream = self.last_upstream_addr().unwrap_or("-");
        format!(
            "upstream prematurely closed connection while reading upstream, client: {client}, request: \"{request}\", upstream: \"http://{upstream}\", {} of {} bytes sent",
            self.body_bytes_sent,
            self.sent_content_length.map_or("?".to_string(), |n| n.to_string())
        )
    }

    /// The attempts that follow are to another upstream (an error page's).
    pub fn new_upstream_group(&mut self) {
        if !self.upstream_times.is_empty() {
            self.groups_at.push(self.upstream_times.len());
        }
    }

    /// `$upstream_addr`, when an upstream was tried.
    pub fn upstream_addrs(&self) -> Option<&str> {
        Some(self.upstream_addr.as_str()).filter(|a| !a.is_empty())
    }

    /// The address of the last attempt.
    pub fn last_upstream_addr(&self) -> Option<&str> {
        let addrs = &self.upstream_addr;
        let start = [
            addrs.rfind(", ").map(|i| i + 2),
            addrs.rfind(" : ").map(|i| i + 3),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
        Some(&addrs[start..]).filter(|entry| !entry.is_empty())
    }

    pub fn set_last_upstream_time(&mut self, time: Duration) {
        if let Some(last) = self.upstream_times.last_mut() {
            *last = time;
        }
    }
}

/// nginx's `$time_local`: `21/Nov/2026:06:31:16 +0000` (this proxy logs in UTC).
pub fn time_local(at: SystemTime) -> String {
    let iso = humantime::format_rfc3339_seconds(at).to_string(); // 2026-11-21T06:31:16Z
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = iso[5..7]
        .parse::<usize>()
        .map_or("Jan", |m| MONTHS[(m.clamp(1, 12)) - 1]);
    format!(
        "{}/{}/{}:{} +0000",
        &iso[8..10],
        month,
        &iso[0..4],
        &iso[11..19]
    )
}

/// Seconds with milliseconds, as nginx prints times.
fn seconds(d: Duration, out: &mut String) {
    let _ = write!(out, "{}.{:03}", d.as_secs(), d.subsec_millis());
}

impl Vars for Record {
    fn write_value(&self, name: &str, out: &mut String) -> bool {
        let text = |out: &mut String, s: &str| {
            out.push_str(s);
            true
        };
        // Values that do not need the request's details.
        match name {
            "status" => return text(out, &self.status.to_string()),
            "body_bytes_sent" => return text(out, &self.body_bytes_sent.to_string()),
            "sent_http_content_length" => {
                return self
                    .sent_content_length
                    .is_some_and(|n| text(out, &n.to_string()))
            }
            "request_time" => {
                seconds(self.request_time, out);
                return true;
            }
            // nginx's $time_local is the time the line is written.
            "time_local" => return text(out, &time_local(SystemTime::now())),
            "upstream_addr" => {
                return !self.upstream_addr.is_empty() && text(out, &self.upstream_addr)
            }
            "upstream_status" => {
                return !self.upstream_status.is_empty() && text(out, &self.upstream_status)
            }
            "upstream_response_time" => {
                for (i, t) in self.upstream_times.iter().enumerate() {
                    if self.groups_at.contains(&i) {
                        out.push_str(" : ");
                    } else if i > 0 {
                        out.push_str(", ");
                    }
                    seconds(*t, out);
                }
                return !self.upstream_times.is_empty();
            }
            _ => {}
        }
        let Some(r) = &self.request else { return false };
        let view = RequestView {
            method: &r.method,
            request_uri: &r.request_uri,
            protocol: r.protocol,
            remote: r.remote,
            headers: &r.headers,
            server_name: &r.server_name,
        };
        match view.variable(name) {
            Some(v) => text(out, &v),
            None => false,
        }
    }
}

/// Appends rendered lines to a file.
pub struct AccessLogWriter {
    format: LogFormat,
    out: Mutex<BufWriter<File>>,
}

impl AccessLogWriter {
    /// Opens `spec.path` for appending with the named format (`combined`,
    /// a `log_format` of the configuration, or an lbkit preset).
    pub fn open(config: &ProxyConfig, spec: &AccessLog) -> Result<AccessLogWriter, String> {
        let format = match config.log_formats.iter().find(|f| f.name == spec.format) {
            Some(def) => LogFormat::compile(&def.format, def.escape)
                .map_err(|e| format!("log_format {}: {e}", def.name))?,
            None => logformat::presets::preset(&spec.format)
                .ok_or_else(|| format!("unknown log format \"{}\"", spec.format))?,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.path)
            .map_err(|e| e.to_string())?;
        Ok(AccessLogWriter {
            format,
            out: Mutex::new(BufWriter::with_capacity(64 << 10, file)),
        })
    }

    pub(crate) fn write(&self, record: &Record) {
        let mut line = String::with_capacity(256);
        self.format.render(record, &mut line);
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(line.as_bytes());
    }

    pub fn flush(&self) {
        let _ = self.out.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }

    /// Flushes every 200 ms until shutdown, so a log read during a run is
    /// at most that far behind.
    pub(crate) fn start_flusher(self: &Arc<Self>, tasks: &TaskTracker, stop: CancellationToken) {
        let log = self.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(200)) => log.flush(),
                }
            }
            log.flush();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_local_looks_like_nginx() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_740_921_011); // 2025-03-02T13:10:11Z
        assert_eq!(time_local(t), "02/Mar/2025:13:10:11 +0000");
    }
}
