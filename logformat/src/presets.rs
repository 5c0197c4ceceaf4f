//! Formats worth knowing by name: nginx's built-in `combined`, the `main`
//! format of nginx's stock `nginx.conf`, seed 003's `upstream_log` (both
//! versions the article shows) and lbkit's own default.
//!
//! All are used with [`Escape::Default`], as nginx's defaults are.

use crate::{Escape, LogFormat};

/// nginx's predefined `combined` format.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// `main`, from the `nginx.conf` shipped in nginx's own packages:
/// `combined` plus `"$http_x_forwarded_for"`.
pub const MAIN: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for""#;

// One literal for both UPSTREAM_LOG and LBKIT, so lbkit's format is provably
// seed 003's plus a suffix.
macro_rules! upstream_log {
    () => {
        r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" to: $upstream_addr"#
    };
}

/// Seed 003's `upstream_log`, first version (its `upstream {}` example):
/// `main` plus ` to: $upstream_addr`, which is what its
/// `awk '{print $NF}' | sort | uniq -c` counts per backend.
///
/// The article's four quoted pieces each end in a space inside the quotes
/// (`'... "$request" '`), so joined they read as here even though the page
/// shows no space between them.
pub const UPSTREAM_LOG: &str = upstream_log!();

/// Seed 003's `upstream_log`, second version (its full `nginx.conf`), as
/// nginx must have been configured to write the article's sample lines:
/// `$remote_addr:$remote_port $request_uri - ...`.
///
/// The article prints `$remote_addr remote_port $request_uri`, but with that
/// text nginx would write the word `remote_port`
/// (`127.0.0.1 remote_port / - - ...`), while every sample line shows
/// `127.0.0.1:48878 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" ...`:
/// address, colon, client port. The `:$` was lost in the page's HTML, as
/// were the spaces between quoted pieces (`]"GET`, `"200`) in the samples.
pub const UPSTREAM_LOG_PORT: &str = r#"$remote_addr:$remote_port $request_uri - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" to: $upstream_addr"#;

/// lbkit's balancer default: [`UPSTREAM_LOG`] plus the request time, each
/// upstream attempt's response time and status, so one line tells which
/// peer answered, how fast, and which attempts failed before it; and the
/// length the answer promised (`cl=`), so an answer whose upstream broke off
/// mid-body, logged with its status kept as nginx logs it, shows as a
/// `$body_bytes_sent` short of it.
pub const LBKIT: &str = concat!(
    upstream_log!(),
    " rt=$request_time urt=$upstream_response_time us=$upstream_status cl=$sent_http_content_length"
);

/// [`LBKIT`] as it was before `cl=`: logs written by earlier versions.
pub const LBKIT_1: &str = concat!(
    upstream_log!(),
    " rt=$request_time urt=$upstream_response_time us=$upstream_status"
);

/// loadgen's `--log`: one line per request as the client saw it — when it
/// ended (`$msec`, seconds with milliseconds), the status (0 when no
/// answer came), the time it took, the body bytes, and the node that
/// answered (`-` when unknown).
pub const LOADGEN: &str = "$msec $status $request_time $body_bytes_sent $upstream_addr";

/// ingress-nginx's default `upstreaminfo` format: `combined` plus the
/// request length and time, the upstream's name, and the four per-attempt
/// lists side by side (address, length, time, status), then the request id.
pub const UPSTREAMINFO: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id"#;

/// Every preset by the name a user would type (`--format upstream_log`).
pub const PRESETS: &[(&str, &str)] = &[
    ("combined", COMBINED),
    ("main", MAIN),
    ("upstream_log", UPSTREAM_LOG),
    ("upstream_log_port", UPSTREAM_LOG_PORT),
    ("lbkit", LBKIT),
    ("lbkit-1", LBKIT_1),
    ("loadgen", LOADGEN),
    ("upstreaminfo", UPSTREAMINFO),
];

/// The preset called `name` (see [`PRESETS`]), compiled.
pub fn preset(name: &str) -> Option<LogFormat> {
    let (_, text) = PRESETS.iter().find(|(n, _)| *n == name)?;
    LogFormat::compile(text, Escape::Default).ok()
}

impl LogFormat {
    /// nginx's `combined` format ([`COMBINED`]).
    pub fn combined() -> LogFormat {
        compiled(COMBINED)
    }

    /// Seed 003's `upstream_log` ([`UPSTREAM_LOG`]).
    pub fn upstream_log() -> LogFormat {
        compiled(UPSTREAM_LOG)
    }

    /// lbkit's default access-log format ([`LBKIT`]).
    pub fn lbkit() -> LogFormat {
        compiled(LBKIT)
    }
}

fn compiled(text: &str) -> LogFormat {
    // Presets are constants; the tests below compile every one of them.
    LogFormat::compile(text, Escape::Default).expect("preset formats compile")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream_attempts;

    // Seed 003's tail of access.log, with the spaces the article's HTML
    // dropped between quoted pieces put back.
    const SEED_LINES: [&str; 4] = [
        r#"127.0.0.1:48878 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8001"#,
        r#"127.0.0.1:48882 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8002"#,
        r#"127.0.0.1:48892 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8001"#,
        r#"127.0.0.1:48904 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8002"#,
    ];

    #[test]
    fn every_preset_compiles_and_reads_back() {
        for (name, text) in PRESETS {
            let f = preset(name).unwrap();
            assert_eq!(f.source(), *text);
            f.check_parseable().unwrap();
        }
        assert!(preset("nope").is_none());
        assert_eq!(
            LBKIT.strip_prefix(UPSTREAM_LOG),
            Some(" rt=$request_time urt=$upstream_response_time us=$upstream_status cl=$sent_http_content_length")
        );
        assert_eq!(
            LBKIT.strip_suffix(" cl=$sent_http_content_length"),
            Some(LBKIT_1)
        );
        assert!(MAIN.starts_with(COMBINED) && UPSTREAM_LOG.starts_with(MAIN));
    }

    #[test]
    fn lists_side_by_side_split_where_nginx_joined_them() {
        let f = preset("upstreaminfo").unwrap();
        let line = r#"10.0.0.7 - - [21/Nov/2026:08:00:00 +0000] "POST /v1/chat/completions HTTP/1.1" 200 512 "-" "curl/8.0" 89 0.104 [default-ai-8080] [] 10.244.0.5:8080, 10.244.0.6:8080 : 10.244.0.7:8080 0, 0 : 512 0.001, 0.002 : 0.100 502, 502 : 200 7f3a"#;
        let r = f.parse(line).unwrap();
        let addr = r.get("upstream_addr").unwrap();
        assert_eq!(addr, "10.244.0.5:8080, 10.244.0.6:8080 : 10.244.0.7:8080");
        assert_eq!(r.get("upstream_response_length"), Some("0, 0 : 512"));
        assert_eq!(
            r.get("upstream_response_time"),
            Some("0.001, 0.002 : 0.100")
        );
        assert_eq!(r.get("upstream_status"), Some("502, 502 : 200"));
        assert_eq!(r.get("req_id"), Some("7f3a"));
        assert_eq!(upstream_attempts(addr).len(), 3);
        // A list ends where its entries do: another format's next field
        // after the address is not part of it.
        let other = format!("{} rt=0.005", SEED_LINES[0]);
        let e = preset("upstream_log_port")
            .unwrap()
            .parse(&other)
            .unwrap_err();
        assert!(
            e.to_string().contains("$upstream_addr should be a list"),
            "{e}"
        );
    }

    #[test]
    fn reads_seed_003_sample_lines() {
        let f = preset("upstream_log_port").unwrap();
        let ports = ["48878", "48882", "48892", "48904"];
        let upstreams = [
            "127.0.0.1:8001",
            "127.0.0.1:8002",
            "127.0.0.1:8001",
            "127.0.0.1:8002",
        ];
        for ((line, port), upstream) in SEED_LINES.iter().zip(ports).zip(upstreams) {
            let r = f.parse(line).unwrap();
            assert_eq!(r.get("remote_addr"), Some("127.0.0.1"));
            assert_eq!(r.get("remote_port"), Some(port));
            assert_eq!(r.get("request_uri"), Some("/"));
            assert_eq!(r.get("remote_user"), Some("-"));
            assert_eq!(r.get("time_local"), Some("02/Mar/2025:21:10:11 +0800"));
            assert_eq!(r.get("request"), Some("GET / HTTP/1.0"));
            assert_eq!(r.get("status"), Some("200"));
            assert_eq!(r.get("body_bytes_sent"), Some("18"));
            assert_eq!(r.get("http_referer"), Some("-"));
            assert_eq!(r.get("http_user_agent"), Some("ApacheBench/2.3"));
            assert_eq!(r.get("http_x_forwarded_for"), Some("-"));
            assert_eq!(r.get("upstream_addr"), Some(upstream));
        }
    }

    #[test]
    fn seed_lines_as_the_page_shows_them_fail_with_a_column() {
        // Copied verbatim from the article: the spaces around quotes are gone.
        let raw = r#"127.0.0.1:48878 / - - [02/Mar/2025:21:10:11 +0800]"GET / HTTP/1.0"200 18"-""ApacheBench/2.3""-"to: 127.0.0.1:8001"#;
        let err = preset("upstream_log_port").unwrap().parse(raw).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 24: $time_local starts here but no `] \"` follows it anywhere in the rest \
             of the line"
        );
    }

    #[test]
    fn reads_a_retried_request_in_lbkit_format() {
        let line = concat!(
            r#"192.168.1.20 - alice [21/Nov/2025:06:44:01 +0000] "POST /v1/chat/completions HTTP/1.1" "#,
            r#"200 512 "-" "curl/8.5.0" "10.1.1.1, 192.168.1.20" "#,
            "to: 127.0.0.1:8001, 127.0.0.1:8002 : 127.0.0.1:8003 ",
            "rt=0.012 urt=0.001, 0.004 : 0.006 us=502, 504 : 200 cl=512",
        );
        let f = LogFormat::lbkit();
        let r = f.parse(line).unwrap();
        assert_eq!(r.get("remote_user"), Some("alice"));
        assert_eq!(r.get("request"), Some("POST /v1/chat/completions HTTP/1.1"));
        assert_eq!(
            r.get("http_x_forwarded_for"),
            Some("10.1.1.1, 192.168.1.20")
        );
        let addr = r.get("upstream_addr").unwrap();
        assert_eq!(addr, "127.0.0.1:8001, 127.0.0.1:8002 : 127.0.0.1:8003");
        assert_eq!(r.get("request_time"), Some("0.012"));
        let attempts = upstream_attempts(addr);
        let statuses = upstream_attempts(r.get("upstream_status").unwrap());
        let times = upstream_attempts(r.get("upstream_response_time").unwrap());
        assert_eq!(
            attempts,
            ["127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"]
        );
        assert_eq!(statuses, ["502", "504", "200"]);
        assert_eq!(times, ["0.001", "0.004", "0.006"]);
    }

    #[test]
    fn reads_a_request_that_never_reached_an_upstream() {
        let line = r#"10.0.0.9 - - [21/Nov/2025:06:44:02 +0000] "\x16\x03\x01\x02\x00\x01" 400 157 "-" "-" "-" to: - rt=0.000 urt=- us=- cl=157"#;
        let r = LogFormat::lbkit().parse(line).unwrap();
        assert_eq!(r.get("request"), Some(r"\x16\x03\x01\x02\x00\x01"));
        assert_eq!(r.get("status"), Some("400"));
        assert_eq!(r.get("upstream_addr"), Some("-"));
        assert_eq!(r.get("upstream_status"), Some("-"));
    }

    #[test]
    fn reads_an_ipv6_client_with_its_port() {
        let line = r#"::1:48878 /x - - [02/Mar/2025:21:10:11 +0800] "GET /x HTTP/1.1" 200 18 "-" "curl" "-" to: [::1]:8001"#;
        let r = preset("upstream_log_port").unwrap().parse(line).unwrap();
        assert_eq!(r.get("remote_addr"), Some("::1"));
        assert_eq!(r.get("remote_port"), Some("48878"));
        assert_eq!(r.get("upstream_addr"), Some("[::1]:8001"));
    }

    #[test]
    fn combined_reads_a_seed_upstream_line_only_up_to_its_end() {
        // The seed's line starts `address:port /uri -`: an address is one
        // word, so combined stops at the first field.
        let err = LogFormat::combined().parse(SEED_LINES[0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 1: $remote_addr has no spaces, found `127.0.0.1:48878 /`"
        );
        // Default escaping keeps `"` out of values, so the user agent cannot
        // swallow an extra quoted field: the error points at it.
        let upstream = SEED_LINES[0].replacen("127.0.0.1:48878 / -", "127.0.0.1 -", 1);
        let err = LogFormat::combined().parse(&upstream).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 89: the format ends here but the line goes on: ` \"-\" to: 127.0.0.1:8001`"
        );
        let line = r#"127.0.0.1 - - [02/Mar/2025:22:41:22 +0800] "POST /chat HTTP/1.0" 200 151 "-" "ApacheBench/2.3""#;
        let r = LogFormat::combined().parse(line).unwrap();
        assert_eq!(r.get("http_user_agent"), Some("ApacheBench/2.3"));
    }
}
