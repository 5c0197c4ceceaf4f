#!/usr/bin/env bash
# Makes the log fixtures the analyzer's format tests read, from Debian's
# real nginx and HAProxy in front of mockbackend ports, one of them not
# running so some lines show a failed server (retries, 502/503, -1 timers).
# - nginx: one request sequence logged at once in each format the analyzer
#   names (combined, main, upstream_log and its port variant, lbkit,
#   upstreaminfo, and an escape=json object), with a retry, an upstream that
#   is all down, and a request nginx answers itself.
# - HAProxy: `option httplog` twice: raw to stdout, and with a syslog header
#   and a captured Host header.
# Run from anywhere; rewrites the files.
# Usage: analyzer/tests/data/make-fixtures.sh [path/to/mockbackend]
set -euo pipefail
cd "$(dirname "$0")/../../.."
source bench/lib.sh
need haproxy:haproxy curl:curl nginx:nginx-light
out=analyzer/tests/data
bin=${1:-target/debug/mockbackend}
[ -x "$bin" ] || cargo build -q -p mockbackend
start_mock "$bin" 2
work=$(mktemp -d)
trap 'nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; kill $MOCK_PID 2>/dev/null || true; rm -rf "$work"' EXIT
dead=$(free_port 18950)
port=$(free_port $((dead + 1)))

nginx_logs() {
    local dir=$work/nginx formats=(combined main upstream_log upstream_log_port lbkit upstreaminfo json)
    local formats_conf=""
    for f in main upstream_log upstream_log_port lbkit upstreaminfo; do
        formats_conf+="  log_format $f '$(cargo run -q -p logformat --example preset -- "$f")';"$'\n'
    done
    {
        nginx_prelude "$dir"
        cat <<CONF
$formats_conf
  log_format json escape=json '{"time_iso8601":"\$time_iso8601","remote_addr":"\$remote_addr","request":"\$request","status":"\$status","request_time":"\$request_time","upstream_addr":"\$upstream_addr","upstream_status":"\$upstream_status","upstream_response_time":"\$upstream_response_time"}';
  upstream ai {
    server 127.0.0.1:${MOCK_PORTS[0]} weight=3;
    server 127.0.0.1:${MOCK_PORTS[1]} weight=2;
    server 127.0.0.1:$dead weight=1;
  }
  upstream gone { server 127.0.0.1:$dead; }
  server {
    listen 127.0.0.1:$port;
    set \$proxy_upstream_name default-ai-80;
    set \$proxy_alternative_upstream_name "";
    set \$req_id \$request_id;
CONF
        for f in "${formats[@]}"; do echo "    access_log $dir/$f.log $f;"; done
        cat <<CONF
    location / { proxy_pass http://ai; }
    location /gone { proxy_pass http://gone; }
    location /local { return 200 "nginx itself\n"; }
  }
}
CONF
    } >"$work/nginx.conf"
    nginx -c "$work/nginx.conf"
    wait_port "$port"
    for _ in $(seq 12); do curl -s -o /dev/null "http://127.0.0.1:$port/"; done
    curl -s -o /dev/null -H 'Content-Type: application/json' -H 'X-Forwarded-For: 10.1.2.3' \
        -d '{"message": "hi"}' "http://127.0.0.1:$port/chat"
    curl -s -o /dev/null "http://127.0.0.1:$port/gone"
    curl -s -o /dev/null "http://127.0.0.1:$port/local"
    nginx -c "$work/nginx.conf" -s quit
    for _ in $(seq 50); do [ -e "$dir/nginx.pid" ] || break; sleep 0.1; done
    for f in "${formats[@]}"; do cp "$dir/$f.log" "$out/nginx-$f.log"; done
}
nginx_logs

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
wc -l "$out"/haproxy-*.log "$out"/nginx-*.log
