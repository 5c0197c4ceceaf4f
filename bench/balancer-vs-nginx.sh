#!/usr/bin/env bash
# The balancer against nginx as the reverse proxy: same three mockbackend
# ports behind both, same wrk load, alternating rounds in one run.
# Throughput at 64 connections; added latency at one connection (p50
# through the proxy minus p50 straight to a backend).
#
# Usage: bench/balancer-vs-nginx.sh [seconds-per-round] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx:nginx wrk:wrk bc:bc

secs=${1:-5} rounds=${2:-5}
cargo build -q --release -p mockbackend -p balancer
work=$(mktemp -d)
start_mock target/release/mockbackend 3
backends=("${MOCK_PORTS[@]}")

ngx_port=$(free_port 18090)
mkdir -p "$work/ngx"
{ nginx_prelude "$work/ngx"; cat <<CONF
  upstream backend {
    server 127.0.0.1:${backends[0]};
    server 127.0.0.1:${backends[1]};
    server 127.0.0.1:${backends[2]};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$ngx_port backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      add_header X-Upstream \$upstream_addr always;
    }
  }
}
CONF
} >"$work/ngx/nginx.conf"
nginx -c "$work/ngx/nginx.conf"

bal_port=$(free_port $((ngx_port + 1)))
target/release/balancer --listen "127.0.0.1:$bal_port" \
    --upstream "127.0.0.1:${backends[0]}" --upstream "127.0.0.1:${backends[1]}" --upstream "127.0.0.1:${backends[2]}" \
    >"$work/balancer.out" 2>&1 &
bal_pid=$!
cleanup() {
    kill "$MOCK_PID" "$bal_pid" 2>/dev/null || true
    nginx -c "$work/ngx/nginx.conf" -s stop 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q listening "$work/balancer.out" && break; sleep 0.05; done

hz=$(getconf CLK_TCK)
# Runs wrk through a proxy; prints requests/s and appends the proxy's user
# and system CPU microseconds per request to file $2 (its processes: the rest).
rps() { # url cpu-file pids...
    local url=$1 cpu=$2 out u0 s0 u1 s1 requests
    shift 2
    u0=$(cpu_ticks 14 "$@") s0=$(cpu_ticks 15 "$@")
    out=$(wrk -t"${WRK_THREADS:-2}" -c64 -d"${secs}s" "$url")
    u1=$(cpu_ticks 14 "$@") s1=$(cpu_ticks 15 "$@")
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "$(echo "($u1 - $u0) * 1000000 / $hz / $requests" | bc -l) $(echo "($s1 - $s0) * 1000000 / $hz / $requests" | bc -l)" >>"$cpu"
    echo "$out" | awk '/Requests\/sec/ {print $2}'
}
# p50 in microseconds at one connection.
p50() {
    wrk -t1 -c1 -d"${secs}s" --latency "$1" | awk '$1 == "50%" {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
        if (u == "us") print v; else if (u == "ms") print v * 1000; else print v * 1000000 }'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

direct=http://127.0.0.1:${backends[0]}/
ngx=http://127.0.0.1:$ngx_port/
bal=http://127.0.0.1:$bal_port/
: >"$work/n"; : >"$work/b"; : >"$work/dl"; : >"$work/nl"; : >"$work/bl"; : >"$work/nc"; : >"$work/bc"
ngx_pids=$(pgrep -f "nginx: worker process" | paste -sd' ')
for _ in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    rps "$ngx" "$work/nc" $ngx_pids >>"$work/n"
    rps "$bal" "$work/bc" "$bal_pid" >>"$work/b"
    p50 "$direct" >>"$work/dl"
    p50 "$ngx" >>"$work/nl"
    p50 "$bal" >>"$work/bl"
done
n=$(median <"$work/n") b=$(median <"$work/b")
dl=$(median <"$work/dl") nl=$(median <"$work/nl") bl=$(median <"$work/bl")
cpu() { printf '%.1f + %.1f' "$(cut -d' ' -f1 "$1" | median)" "$(cut -d' ' -f2 "$1" | median)"; }
echo "| proxy | req/s at 64 connections (median of $rounds) | p50 at 1 connection | added p50 vs direct | proxy user + system CPU µs/request |"
echo "|---|---:|---:|---:|---:|"
printf '| nginx %s | %.0f | %.0f µs | %.0f µs | %s |\n' "$(nginx -v 2>&1 | sed 's/.*nginx\///')" "$n" "$nl" "$(echo "$nl - $dl" | bc -l)" "$(cpu "$work/nc")"
printf '| balancer | %.0f | %.0f µs | %.0f µs | %s |\n' "$b" "$bl" "$(echo "$bl - $dl" | bc -l)" "$(cpu "$work/bc")"
echo
printf 'throughput ratio balancer/nginx: %.2f; direct p50 %.0f µs; rounds nginx: %s; balancer: %s\n' \
    "$(echo "$b / $n" | bc -l)" "$dl" "$(cut -d. -f1 "$work/n" | paste -sd' ')" "$(cut -d. -f1 "$work/b" | paste -sd' ')"
echo "wrk -t${WRK_THREADS:-2} -c64 and -t1 -c1, ${secs}s rounds, $(nproc) cores; three mockbackend ports behind both; no access logs."
