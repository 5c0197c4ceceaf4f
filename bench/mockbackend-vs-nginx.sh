#!/usr/bin/env bash
# Throughput of mockbackend against nginx `return 200` on the same machine,
# same load generator (wrk), same run: rounds alternate between the two so
# drift on a shared machine hits both alike. Prints a Markdown table of the
# median requests/s and the ratio mockbackend / nginx.
#
# Usage: bench/mockbackend-vs-nginx.sh [seconds-per-round] [rounds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx:nginx wrk:wrk

secs=${1:-5} rounds=${2:-5} conns=${3:-64}
cargo build -q --release -p mockbackend
work=$(mktemp -d)
start_mock target/release/mockbackend 1
mock=http://127.0.0.1:${MOCK_PORTS[0]}

# nginx answers the same bytes mockbackend does, from a `return 200`.
ngx_port=$(free_port 18080)
chat_body='{"original":"Hello, this is a test message","response":"Processed by chat API: HELLO, THIS IS A TEST MESSAGE","server":'$ngx_port',"timestamp":"2026-01-01T00:00:00.000000Z"}'
mkdir -p "$work/ngx"
cat >"$work/ngx/nginx.conf" <<CONF
worker_processes auto;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/ngx/body;
  proxy_temp_path $work/ngx/proxy;
  fastcgi_temp_path $work/ngx/fastcgi;
  uwsgi_temp_path $work/ngx/uwsgi;
  scgi_temp_path $work/ngx/scgi;
  server {
    listen 127.0.0.1:$ngx_port backlog=4096;
    location / { default_type text/plain; return 200 "响应来自:$ngx_port"; }
    location = /chat { default_type application/json; return 200 '$chat_body'; }
  }
}
CONF
nginx -c "$work/ngx/nginx.conf"
cleanup() { kill "$MOCK_PID" 2>/dev/null || true; nginx -c "$work/ngx/nginx.conf" -s stop 2>/dev/null || true; }
trap cleanup EXIT
ngx=http://127.0.0.1:$ngx_port

cat >"$work/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"message": "Hello, this is a test message"}'
wrk.headers["Content-Type"] = "application/json"
LUA

rps() { # url [lua]
    local script=()
    [ -n "${2:-}" ] && script=(-s "$2")
    wrk -t2 -c"$conns" -d"${secs}s" "${script[@]}" "$1" | awk '/Requests\/sec/ {print $2}'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$MOCK_PID/status")
echo "| endpoint | nginx req/s (median of $rounds) | mockbackend req/s | ratio |"
echo "|---|---:|---:|---:|"
for endpoint in "GET /" "POST /chat"; do
    path=${endpoint#* } lua=""
    [ "$path" = /chat ] && lua=$work/chat.lua
    : >"$work/n"; : >"$work/m"
    for _ in $(seq "$rounds"); do
        rps "$ngx$path" "$lua" >>"$work/n"
        rps "$mock$path" "$lua" >>"$work/m"
    done
    n=$(median <"$work/n") m=$(median <"$work/m")
    printf '| %s | %.0f | %.0f | %.2f |\n' "$endpoint" "$n" "$m" "$(echo "$m / $n" | bc -l)"
done
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$MOCK_PID/status")
echo
echo "wrk -t2 -c$conns, ${secs}s rounds, $(nproc) cores; nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), worker_processes auto, access_log off."
echo "mockbackend RSS: ${rss_before} kB before, ${rss_after} kB after."
