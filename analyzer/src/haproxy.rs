//! HAProxy's `option httplog` lines, with or without the syslog header:
//!
//! ```text
//! 127.0.0.1:38454 [21/Nov/2026:08:16:17.994] http-in ai/s1 0/0/0/1/1 200 191 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"
//! ```
//!
//! client, accept date, frontend, backend/server, the TR/Tw/Tc/Tr/Ta timers
//! (ms, -1 when that phase never happened), status, bytes, the two captured
//! cookies, termination state, actconn/feconn/beconn/srv_conn/retries,
//! queues, then optional `{captures}` and the request.

use crate::entry::{clock_utc, Entry};

/// The entry of one httplog line, or why it is not one.
pub fn entry(line: &str) -> Result<Entry<'_>, String> {
    // A syslog header ends at "haproxy[pid]: "; raw logs have none.
    let body = match line.find("]: ") {
        Some(i) if line[..i].contains("haproxy[") => &line[i + 3..],
        _ => line,
    };
    let mut fields = body.split(' ').filter(|f| !f.is_empty());
    let mut next = |what: &str| {
        fields
            .next()
            .ok_or_else(|| format!("ends before the {what}"))
    };
    let client = next("client address")?;
    let accepted = next("accept date")?;
    let _frontend = next("frontend")?;
    let server = next("backend/server")?;
    let timers = next("timers")?;
    let status = next("status")?;
    for what in [
        "bytes",
        "request cookie",
        "response cookie",
        "termination state",
    ] {
        next(what)?;
    }
    let connections = next("connection counts")?;

    let date = accepted
        .strip_prefix('[')
        .and_then(|d| d.strip_suffix(']'))
        .ok_or_else(|| format!("`{accepted}` is not an [accept date]"))?;
    let (_, server_name) = server
        .split_once('/')
        .ok_or_else(|| format!("`{server}` is not backend/server"))?;
    let timers: Vec<&str> = timers.split('/').collect();
    let [_, _, _, tr, ta] = timers[..] else {
        return Err(format!("`{}` is not TR/Tw/Tc/Tr/Ta", timers.join("/")));
    };
    let ms = |t: &str| -> Result<Option<f64>, String> {
        let v: i64 = t
            .trim_start_matches('+')
            .parse()
            .map_err(|_| format!("timer `{t}` is not a number"))?;
        Ok((v >= 0).then(|| v as f64 / 1000.0))
    };
    let status: i32 = status
        .parse()
        .map_err(|_| format!("status `{status}` is not a number"))?;
    let retries: usize = connections
        .rsplit('/')
        .next()
        .map(|r| r.trim_start_matches('+'))
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| format!("`{connections}` is not actconn/feconn/beconn/srv_conn/retries"))?;
    let node = (server_name != "<NOSRV>").then_some(server);
    Ok(Entry {
        cut: false,
        node,
        attempts: if node.is_some() { 1 + retries } else { 0 },
        status: u16::try_from(status).ok().filter(|s| *s > 0),
        request_time: ms(ta)?,
        upstream_time: ms(tr)?,
        client: client
            .rsplit_once(':')
            .map(|(ip, _)| ip.trim_matches(['[', ']'])),
        at: clock_utc(date),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines Debian's HAProxy 2.6 wrote (tests/data/make-fixtures.sh).
    const RAW: &str = include_str!("../tests/data/haproxy-httplog.log");
    const SYSLOG: &str = include_str!("../tests/data/haproxy-httplog-syslog.log");

    #[test]
    fn every_fixture_line_reads() {
        for line in RAW.lines().chain(SYSLOG.lines()) {
            entry(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
    }

    #[test]
    fn an_answered_request() {
        let line = RAW.lines().find(|l| l.contains("POST /chat")).unwrap();
        let e = entry(line).unwrap();
        assert_eq!(e.node, Some("ai/s1"));
        assert_eq!(e.attempts, 1);
        assert_eq!(e.status, Some(200));
        assert_eq!(e.request_time, Some(0.0));
        assert_eq!(e.client, Some("127.0.0.1"));
        assert!(e.at.unwrap() > 1.7e9);
    }

    #[test]
    fn a_dead_server_after_three_retries_and_a_request_with_no_server() {
        let failed = entry(SYSLOG.lines().find(|l| l.contains(" 503 ")).unwrap()).unwrap();
        assert_eq!(failed.node, Some("ai/s3"));
        assert_eq!(failed.attempts, 4);
        assert_eq!(failed.upstream_time, None, "Tr is -1: no response");
        assert!(failed.request_time.unwrap() > 3.0);
        let nosrv = entry(RAW.lines().find(|l| l.contains("<NOSRV>")).unwrap()).unwrap();
        assert_eq!(
            (nosrv.node, nosrv.attempts, nosrv.status),
            (None, 0, Some(400))
        );
    }

    #[test]
    fn what_is_not_httplog_says_why() {
        assert_eq!(entry("hello").unwrap_err(), "ends before the accept date");
        let nginx = r#"127.0.0.1 - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18"#;
        assert!(entry(nginx).is_err());
    }
}
