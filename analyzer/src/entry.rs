//! One log line as the report needs it: which node finally answered, after
//! how many attempts, with what status, how fast, for which client, when.
//! Read from a line parsed by the `logformat` crate, whatever the format, by
//! the nginx variable names the format uses.

use logformat::{upstream_attempts, LogFormat};

/// What one request contributes to the report. Borrowed from the line.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'a> {
    /// The node that produced the response: the last `$upstream_addr`
    /// attempt. `None` when nginx answered without an upstream (`-`).
    pub node: Option<&'a str>,
    /// Upstream attempts, retries and internal redirects included.
    pub attempts: usize,
    /// `$status`; `None` when it is not a number (`0` and `-` included:
    /// no response reached the client).
    pub status: Option<u16>,
    /// `$request_time`, seconds.
    pub request_time: Option<f64>,
    /// The answering attempt's `$upstream_response_time`, seconds.
    pub upstream_time: Option<f64>,
    /// `$remote_addr`: the client as the balancer saw it.
    pub client: Option<&'a str>,
    /// When the request was logged, seconds since the Unix epoch, from
    /// `$msec`, `$time_iso8601` or `$time_local`.
    pub at: Option<f64>,
    /// The body was cut short: fewer `$body_bytes_sent` than the
    /// `$sent_http_content_length` promised. nginx keeps the status (200)
    /// of an answer whose upstream broke off mid-body; this is its mark.
    pub cut: bool,
}

/// What one reading thread reuses line after line: the buffer for a line's
/// values, and the last time field read with its value. Consecutive lines
/// mostly share their second, and parsing a date costs more than the rest
/// of the line's fields together.
#[derive(Debug, Default)]
pub struct Scratch<'a> {
    pub values: Vec<&'a str>,
    last_time: Option<(&'a str, Option<f64>)>,
}

/// Where in a format's variables each field of an [`Entry`] is, looked up
/// once per format rather than by name on every line.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    node: Option<usize>,
    status: Option<usize>,
    /// Where, and the factor to seconds (other tools log milliseconds).
    request_time: Option<(usize, f64)>,
    upstream_time: Option<(usize, f64)>,
    /// `$upstream_status`: only checked, so a line that is not a log line
    /// is not read as one.
    upstream_status: Option<usize>,
    /// `$body_bytes_sent`, `$sent_http_content_length` and the request
    /// (line or method, for HEAD): a body cut short shows in them.
    body_bytes: Option<usize>,
    promised: Option<usize>,
    request: Option<usize>,
    client: Option<usize>,
    time: Option<(usize, TimeField)>,
}

#[derive(Debug, Clone, Copy)]
enum TimeField {
    Msec,
    Local,
    Iso8601,
}

impl Fields {
    pub fn of(format: &LogFormat) -> Fields {
        let at = |name: &str| format.var_index(name);
        let logged_at = at("msec")
            .map(|i| (i, TimeField::Msec))
            .or_else(|| at("time_iso8601").map(|i| (i, TimeField::Iso8601)))
            .or_else(|| at("time_local").map(|i| (i, TimeField::Local)));
        // `name` in seconds, as nginx writes it, or `name_ms` in
        // milliseconds, as the Envoy and Traefik formats here name it.
        let duration = |name: &str| {
            at(name)
                .map(|i| (i, 1.0))
                .or_else(|| at(&format!("{name}_ms")).map(|i| (i, 1e-3)))
        };
        Fields {
            node: at("upstream_addr"),
            status: at("status"),
            request_time: duration("request_time"),
            upstream_time: duration("upstream_response_time"),
            upstream_status: at("upstream_status"),
            body_bytes: at("body_bytes_sent"),
            promised: at("sent_http_content_length"),
            request: at("request_method").or_else(|| at("request")),
            client: at("remote_addr"),
            time: logged_at,
        }
    }

    /// Whether lines say which node answered; without it there is no
    /// distribution to report.
    pub fn has_node(&self) -> bool {
        self.node.is_some()
    }

    /// Which timing the latency figures come from, by its nginx name.
    pub fn timing(&self) -> Option<&'static str> {
        match (self.request_time, self.upstream_time) {
            (Some((_, 1.0)), _) => Some("$request_time"),
            (Some(_), _) => Some("the request's duration"),
            (None, Some((_, 1.0))) => Some("$upstream_response_time"),
            (None, Some(_)) => Some("the upstream's time"),
            (None, None) => None,
        }
    }

    /// The entry in a parsed line's values (`scratch.values`, filled by
    /// [`LogFormat::parse_into`]).
    /// `Err` says which value is not what its variable holds (`us=abc`,
    /// a 38-digit time): such a line is malformed, not a request.
    pub fn entry<'a>(&self, scratch: &mut Scratch<'a>) -> Result<Entry<'a>, String> {
        let values = &scratch.values;
        let value = |i: Option<usize>| i.and_then(|i| values.get(i).copied());
        let time = |field: Option<(usize, f64)>, last_attempt: bool| {
            let Some((i, scale)) = field else {
                return Ok(None);
            };
            let Some(v) = values.get(i).copied() else {
                return Ok(None);
            };
            let v = if last_attempt {
                last(v).0.unwrap_or("-")
            } else {
                v
            };
            if v == "-" {
                return Ok(None);
            }
            let scaled = seconds(v).map(|s| s * scale).filter(|s| *s <= MAX_TIME);
            scaled
                .map(Some)
                .ok_or_else(|| format!("{v:?} is not a time in seconds"))
        };
        if let Some(v) = value(self.upstream_status) {
            // One attempt (no space) is nearly every line: no list to split.
            let listed = || upstream_attempts(v).iter().all(|s| is_status(s));
            if !(is_status(v) || (v.contains(' ') && listed())) {
                return Err(format!("{v:?} is not a list of $upstream_status codes"));
            }
        }
        let status = match value(self.status) {
            None | Some("-") => None,
            Some(s) if is_status(s) => s.parse().ok().filter(|s| *s > 0),
            Some(s) => return Err(format!("{s:?} is not an HTTP status")),
        };
        let request_time = time(self.request_time, false)?;
        let cut = match (value(self.body_bytes), value(self.promised)) {
            (Some(sent), Some(promised)) => {
                let bodyless = value(self.request).is_some_and(|r| r.starts_with("HEAD"))
                    || status.is_some_and(|s| s < 200 || s == 204 || s == 304);
                let short = matches!(
                    (sent.parse::<u64>(), promised.parse::<u64>()),
                    (Ok(sent), Ok(promised)) if sent < promised
                );
                short && !bodyless
            }
            _ => false,
        };
        let (node, attempts) = value(self.node).map_or((None, 0), last);
        let node = node.and_then(node_name);
        // The answering attempt's time is the last entry, like its address.
        let upstream_time = time(self.upstream_time, true)?;
        Ok(Entry {
            node,
            attempts: if node.is_some() { attempts } else { 0 },
            status,
            request_time,
            upstream_time,
            client: value(self.client).filter(|c| *c != "-"),
            at: self.time.and_then(|(i, kind)| {
                let v = *values.get(i)?;
                if let Some((text, at)) = scratch.last_time {
                    if text == v {
                        return at;
                    }
                }
                let at = match kind {
                    TimeField::Msec => v.parse().ok(),
                    TimeField::Local => time_local(v),
                    TimeField::Iso8601 => time_iso8601(v),
                };
                scratch.last_time = Some((v, at));
                at
            }),
            cut,
        })
    }
}

/// The longest time a log line is believed: a year. A longer one is not a
/// request that took that long but a line that is not a log line.
const MAX_TIME: f64 = 365.0 * 86_400.0;

/// A status as nginx writes one: three digits, or `-` (no answer); loadgen
/// writes `0` for a request nothing answered.
fn is_status(s: &str) -> bool {
    s == "-" || (matches!(s.len(), 1..=3) && s.bytes().all(|b| b.is_ascii_digit()))
}

/// A node as the report names it: `host:port`, as nginx logs it, whatever
/// scheme other proxies put in front (Envoy's `tcp://10.0.2.1:80`,
/// Traefik's `http://172.18.0.3:8000/`). `None` for no node: `-`, empty,
/// or a bare path (Traefik 1's `/` when no backend was found).
pub fn node_name(v: &str) -> Option<&str> {
    // A scheme's `://` is at the first colon; a plain `host:port`'s colon
    // is followed by digits. (A char search: a `"://"` one builds a
    // searcher per line.)
    let scheme = v
        .bytes()
        .position(|b| b == b':')
        .filter(|i| v[*i..].starts_with("://"));
    let addr = match scheme {
        Some(i) => v[i + 3..].trim_end_matches('/'),
        None => v,
    };
    (!addr.is_empty() && addr != "-" && !addr.starts_with('/')).then_some(addr)
}

/// The last entry of an `$upstream_*` list and how many there are. Lists
/// join entries with `, ` and ` : `, and no entry holds a space, so a value
/// without one is a single attempt: the common case needs no splitting.
pub(crate) fn last(list: &str) -> (Option<&str>, usize) {
    if !list.as_bytes().contains(&b' ') {
        return (
            (!list.is_empty()).then_some(list),
            usize::from(!list.is_empty()),
        );
    }
    let all = upstream_attempts(list);
    (all.last().copied(), all.len())
}

/// nginx's times (`0.012`); `-` is "no time" (an attempt that never got a
/// response head).
pub(crate) fn seconds(v: &str) -> Option<f64> {
    decimal(v).or_else(|| v.parse().ok().filter(|s: &f64| s.is_finite() && *s >= 0.0))
}

/// nginx's `12.345` (up to 3 decimals, as it writes times) without the
/// general float parser: digits and the fraction as one integer, divided
/// once, which rounds exactly as parsing the text does. `None` for anything
/// else, which the general parser then reads.
fn decimal(v: &str) -> Option<f64> {
    let (whole, fraction) = match v.bytes().position(|b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, ""),
    };
    if whole.is_empty() || whole.len() > 12 || fraction.len() > 3 {
        return None;
    }
    let mut n: u64 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n as f64 / [1.0, 10.0, 100.0, 1000.0][fraction.len()])
}

/// `02/Mar/2025:21:10:11 +0800` to Unix seconds.
pub fn time_local(v: &str) -> Option<f64> {
    let (date, zone) = v.split_once(' ')?;
    day_month_year(date, zone)
}

/// `21/Nov/2026:08:16:17.994` (HAProxy's accept date, which names no zone)
/// to Unix seconds, read as UTC: spans and rates come out right, and only
/// the absolute time shifts by the server's offset.
pub fn clock_utc(v: &str) -> Option<f64> {
    day_month_year(v, "Z")
}

fn day_month_year(date: &str, zone: &str) -> Option<f64> {
    let mut it = date.splitn(4, ['/', ':']);
    let day: u32 = it.next()?.parse().ok()?;
    let name = it.next()?;
    let month = MONTHS.iter().position(|m| *m == name)? as u32 + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let clock = it.next()?;
    unix_seconds(year, month, day, clock, zone)
}

/// `2025-03-02T21:10:11+08:00` to Unix seconds.
pub fn time_iso8601(v: &str) -> Option<f64> {
    let (date, rest) = v.split_once('T')?;
    let mut it = date.splitn(3, '-');
    let year: i64 = it.next()?.parse().ok()?;
    let month: u32 = it.next()?.parse().ok()?;
    let day: u32 = it.next()?.parse().ok()?;
    let (clock, zone) = match rest.find(['+', '-', 'Z']) {
        Some(i) => rest.split_at(i),
        None => return None,
    };
    unix_seconds(year, month, day, clock, &zone.replace(':', ""))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A civil date, `hh:mm:ss` and a `+hhmm` / `Z` zone to Unix seconds.
fn unix_seconds(year: i64, month: u32, day: u32, clock: &str, zone: &str) -> Option<f64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut hms = clock.splitn(3, ':');
    let h: u32 = hms.next()?.parse().ok()?;
    let m: u32 = hms.next()?.parse().ok()?;
    // Seconds may carry a fraction (HAProxy's milliseconds).
    let s: f64 = hms.next()?.parse().ok()?;
    if h > 23 || m > 59 || !(0.0..61.0).contains(&s) {
        return None;
    }
    let offset = match zone {
        "Z" => 0,
        z if z.len() == 5 => {
            let sign = match &z[..1] {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let hh: i64 = z[1..3].parse().ok()?;
            let mm: i64 = z[3..5].parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some((days * 86400 + i64::from(h * 3600 + m * 60) - offset) as f64 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the well-known
/// era-based formula: 400-year eras of 146097 days, years starting in March
/// so the leap day comes last).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of<'a>(f: &LogFormat, line: &'a str) -> Entry<'a> {
        let mut scratch = Scratch::default();
        f.parse_into(line, &mut scratch.values).unwrap();
        Fields::of(f).entry(&mut scratch).unwrap()
    }
    use logformat::presets;

    #[test]
    fn values_that_are_not_what_their_variable_holds_are_malformed() {
        let reader = crate::formats::named("lbkit").unwrap().unwrap().reader;
        let line = |rt: &str, urt: &str, us: &str| {
            format!(
                r#"127.0.0.1 - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.1" 200 18 "-" "ab" "-" to: 127.0.0.1:8001 rt={rt} urt={urt} us={us} cl=18"#
            )
        };
        let read = |l: &str| reader.entry(l).map(|e| (e.request_time, e.upstream_time));
        assert_eq!(
            read(&line("0.012", "0.010", "200")),
            Ok((Some(0.012), Some(0.010)))
        );
        assert_eq!(read(&line("0.012", "-", "-")), Ok((Some(0.012), None)));
        assert_eq!(
            read(&line("0.012", "0.001, 0.010", "502, 200")),
            Ok((Some(0.012), Some(0.010)))
        );
        for (rt, urt, us, says) in [
            ("0.012", "0.010", "abc", "$upstream_status"),
            (
                "0.012",
                "0.010",
                "200 and then 50 MB of junk",
                "upstream_status",
            ),
            (
                "12345678901234567890123456789012345678",
                "0.010",
                "200",
                "not a time",
            ),
            ("fast", "0.010", "200", "request_time"),
            ("0.012", "-1", "200", "time"),
        ] {
            let e = read(&line(rt, urt, us)).unwrap_err();
            assert!(e.contains(says), "{rt} {urt} {us}: {e}");
        }
    }

    #[test]
    fn a_body_cut_short_is_marked_where_nginx_shows_it() {
        let f = LogFormat::compile(
            "\"$request\" $status $body_bytes_sent $sent_http_content_length to: $upstream_addr",
            logformat::Escape::Default,
        )
        .unwrap();
        let cut = |line: &str| fields_of(&f, line).cut;
        assert!(cut(r#""GET / HTTP/1.1" 200 5 100 to: 127.0.0.1:8001"#));
        assert!(!cut(r#""GET / HTTP/1.1" 200 100 100 to: 127.0.0.1:8001"#));
        assert!(
            !cut(r#""GET / HTTP/1.1" 200 5 - to: 127.0.0.1:8001"#),
            "chunked: no promise"
        );
        assert!(!cut(r#""HEAD / HTTP/1.1" 200 0 100 to: 127.0.0.1:8001"#));
        assert!(!cut(r#""GET / HTTP/1.1" 304 0 100 to: 127.0.0.1:8001"#));
    }

    #[test]
    fn nginx_times_read_as_the_float_parser_reads_them() {
        for t in [
            "0.040",
            "12.345",
            "0",
            "7.5",
            "0.001",
            "999999.999",
            "1.10",
            "300",
        ] {
            assert_eq!(decimal(t), Some(t.parse::<f64>().unwrap()), "{t}");
        }
        for other in ["1e3", "-1", ".5", "1.2345", "abc", "1.2.3", ""] {
            assert_eq!(decimal(other), None, "{other}");
        }
        assert_eq!(seconds("1.2345"), Some(1.2345), "others still read");
    }

    #[test]
    fn the_seeds_sample_line() {
        let f = presets::preset("upstream_log_port").unwrap();
        let line = r#"127.0.0.1:48878 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8001"#;
        let e = fields_of(&f, line);
        assert_eq!(e.node, Some("127.0.0.1:8001"));
        assert_eq!(e.attempts, 1);
        assert_eq!(e.status, Some(200));
        assert_eq!(e.client, Some("127.0.0.1"));
        assert_eq!(e.request_time, None);
        // 2025-03-02 13:10:11 UTC.
        assert_eq!(e.at, Some(1_740_921_011.0));
        assert_eq!(Fields::of(&f).timing(), None);
    }

    #[test]
    fn a_retried_request_belongs_to_the_node_that_answered() {
        let f = LogFormat::lbkit();
        let line = r#"10.0.0.9 - - [21/Nov/2026:08:00:00 +0000] "POST /chat HTTP/1.1" 200 90 "-" "loadgen" "-" to: 127.0.0.1:8002, 127.0.0.1:8001 rt=0.031 urt=0.000, 0.030 us=502, 200 cl=90"#;
        let e = fields_of(&f, line);
        assert_eq!(e.node, Some("127.0.0.1:8001"));
        assert_eq!(e.attempts, 2);
        assert_eq!(e.request_time, Some(0.031));
        assert_eq!(e.upstream_time, Some(0.030));
        assert_eq!(Fields::of(&f).timing(), Some("$request_time"));
    }

    #[test]
    fn no_upstream_and_no_response() {
        let f = presets::preset("loadgen").unwrap();
        let e = fields_of(&f, "1763712000.123 0 1.000 0 -");
        assert_eq!((e.node, e.attempts, e.status), (None, 0, None));
        assert_eq!(e.at, Some(1_763_712_000.123));
    }

    #[test]
    fn times_of_day() {
        assert_eq!(time_local("01/Jan/1970:00:00:00 +0000"), Some(0.0));
        assert_eq!(
            time_local("29/Feb/2024:23:59:59 -0130"),
            Some(1_709_256_599.0)
        );
        assert_eq!(
            time_iso8601("2024-02-29T23:59:59-01:30"),
            Some(1_709_256_599.0)
        );
        assert_eq!(time_iso8601("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(time_local("02/Foo/2025:21:10:11 +0800"), None);
        assert_eq!(time_local("02/Mar/2025:25:10:11 +0800"), None);
        assert_eq!(time_local("02/Mar/2025:21:10:11"), None);
        assert_eq!(clock_utc("01/Jan/1970:00:00:01.250"), Some(1.25));
    }
}
