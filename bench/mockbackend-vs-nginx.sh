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
need nginx:nginx wrk:wrk bc:bc

secs=${1:-5} rounds=${2:-5} conns=${3:-64}
# wrk's threads: on 2 cores one (the server needs the other) is often faster.
wrk_threads=${WRK_THREADS:-2}
cargo build -q --release -p mockbackend
work=$(mktemp -d)
start_mock target/release/mockbackend 1
mock=http://127.0.0.1:${MOCK_PORTS[0]}

# nginx answers the same bytes mockbackend does, from a `return 200`.
ngx_port=$(free_port 18080)
chat_body='{"original":"Hello, this is a test message","response":"Processed by chat API: HELLO, THIS IS A TEST MESSAGE","server":'$ngx_port',"timestamp":"2026-01-01T00:00:00.000000Z"}'
mkdir -p "$work/ngx"
{ nginx_prelude "$work/ngx"; cat <<CONF
  server {
    listen 127.0.0.1:$ngx_port backlog=4096;
    location / { default_type text/plain; return 200 "响应来自:$ngx_port"; }
    location = /chat { default_type application/json; return 200 '$chat_body'; }
  }
}
CONF
} >"$work/ngx/nginx.conf"
nginx -c "$work/ngx/nginx.conf"
cleanup() { kill "$MOCK_PID" 2>/dev/null || true; nginx -c "$work/ngx/nginx.conf" -s stop 2>/dev/null || true; }
trap cleanup EXIT
ngx=http://127.0.0.1:$ngx_port

cat >"$work/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"message": "Hello, this is a test message"}'
wrk.headers["Content-Type"] = "application/json"
LUA

hz=$(getconf CLK_TCK)

# Runs wrk; prints requests/s, and appends the server's user and system CPU
# microseconds per request to file $3 (server processes: the rest).
rps() { # url lua cpu-file pids...
    local url=$1 lua=$2 cpu=$3 script=() out
    shift 3
    [ -n "$lua" ] && script=(-s "$lua")
    local u0 s0 u1 s1
    u0=$(cpu_ticks 14 "$@") s0=$(cpu_ticks 15 "$@")
    out=$(wrk -t"$wrk_threads" -c"$conns" -d"${secs}s" "${script[@]}" "$url")
    u1=$(cpu_ticks 14 "$@") s1=$(cpu_ticks 15 "$@")
    local requests
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "$(echo "($u1 - $u0) * 1000000 / $hz / $requests" | bc -l) $(echo "($s1 - $s0) * 1000000 / $hz / $requests" | bc -l)" >>"$cpu"
    echo "$out" | awk '/Requests\/sec/ {print $2}'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$MOCK_PID/status")
ngx_pids=$(pgrep -f "nginx: worker process" | paste -sd' ')
echo "| endpoint | nginx req/s (median of $rounds) | mockbackend req/s | ratio | server user + system CPU µs/request (nginx / mockbackend) | rounds (nginx / mockbackend) |"
echo "|---|---:|---:|---:|---:|---|"
for endpoint in "GET /" "POST /chat"; do
    path=${endpoint#* } lua=""
    [ "$path" = /chat ] && lua=$work/chat.lua
    : >"$work/n"; : >"$work/m"; : >"$work/nc"; : >"$work/mc"
    for _ in $(seq "$rounds"); do
        # shellcheck disable=SC2086
        rps "$ngx$path" "$lua" "$work/nc" $ngx_pids >>"$work/n"
        rps "$mock$path" "$lua" "$work/mc" "$MOCK_PID" >>"$work/m"
    done
    n=$(median <"$work/n") m=$(median <"$work/m")
    nu=$(cut -d' ' -f1 "$work/nc" | median) ns=$(cut -d' ' -f2 "$work/nc" | median)
    mu=$(cut -d' ' -f1 "$work/mc" | median) ms=$(cut -d' ' -f2 "$work/mc" | median)
    printf '| %s | %.0f | %.0f | %.2f | %.1f + %.1f / %.1f + %.1f | %s / %s |\n' "$endpoint" "$n" "$m" "$(echo "$m / $n" | bc -l)" "$nu" "$ns" "$mu" "$ms" \
        "$(cut -d. -f1 "$work/n" | paste -sd' ')" "$(cut -d. -f1 "$work/m" | paste -sd' ')"
done
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$MOCK_PID/status")
echo
echo "wrk -t$wrk_threads -c$conns, ${secs}s rounds, $(nproc) cores; nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), worker_processes auto, access_log off."
echo "mockbackend RSS: ${rss_before} kB before, ${rss_after} kB after."
