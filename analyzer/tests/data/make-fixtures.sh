#!/usr/bin/env bash
# Makes the log fixtures the analyzer's format tests read: real HAProxy
# (Debian's) in front of three mockbackend ports, one of them not running so
# some lines show a failed server (503, -1 timers, retries), logging in
# `option httplog` twice: raw to stdout, and with a syslog header and a
# captured Host header. Run from the repository root; rewrites the files.
# Usage: analyzer/tests/data/make-fixtures.sh [path/to/mockbackend]
set -euo pipefail
cd "$(dirname "$0")/../../.."
source bench/lib.sh
need haproxy:haproxy curl:curl
out=analyzer/tests/data
bin=${1:-target/debug/mockbackend}
[ -x "$bin" ] || cargo build -q -p mockbackend
start_mock "$bin" 2
work=$(mktemp -d)
trap 'kill $MOCK_PID 2>/dev/null || true; rm -rf "$work"' EXIT
dead=$(free_port 18950)
port=$(free_port $((dead + 1)))

haproxy_log() { # log format, extra frontend lines, output file
    cat >"$work/haproxy.cfg" <<CFG
global
    log stdout format $1 local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend http-in
    bind 127.0.0.1:$port
    $2
    default_backend ai
backend ai
    balance roundrobin
    server s1 127.0.0.1:${MOCK_PORTS[0]} weight 3
    server s2 127.0.0.1:${MOCK_PORTS[1]} weight 2
    server s3 127.0.0.1:$dead weight 1
CFG
    haproxy -db -f "$work/haproxy.cfg" >"$work/raw" 2>&1 &
    local pid=$!
    wait_port "$port"
    for _ in $(seq 6); do curl -s -o /dev/null "http://127.0.0.1:$port/"; done
    curl -s -o /dev/null -H 'Content-Type: application/json' -d '{"message": "hi"}' "http://127.0.0.1:$port/chat"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    # Only the request lines: HAProxy also logs its own start and stop.
    grep -E '\] [^ ]+ [^ ]+/[^ ]+ ' "$work/raw" >"$3"
}
haproxy_log raw "" "$out/haproxy-httplog.log"
haproxy_log rfc3164 "capture request header Host len 32" "$out/haproxy-httplog-syslog.log"
wc -l "$out"/haproxy-*.log
