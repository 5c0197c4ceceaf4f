#!/usr/bin/env bash
# loadgen against wrk, ab -k and (when installed) oha: same server, same
# connection count, alternating rounds in one run. Servers: nginx
# `return 200` and a mockbackend port. Then loadgen's own added latency
# (a server that waits 10 ms: reported p50 minus 10 ms) and its peak memory
# as -n grows.
#
# Usage: bench/loadgen-vs-others.sh [seconds-per-round] [rounds] [connections]
# (oha is not a Debian package: `cargo install oha` puts it on PATH.)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx:nginx wrk:wrk ab:apache2-utils curl:curl

secs=${1:-5} rounds=${2:-3} conns=${3:-64}
cargo build -q --release -p mockbackend -p loadgen
work=$(mktemp -d)
start_mock target/release/mockbackend 1
mock_pid=$MOCK_PID
mock=http://127.0.0.1:${MOCK_PORTS[0]}/
ngx_port=$(free_port 18095)
mkdir -p "$work/ngx"
{ nginx_prelude "$work/ngx"; cat <<CONF
  server {
    listen 127.0.0.1:$ngx_port backlog=4096;
    location / { default_type text/plain; return 200 "hello"; }
  }
}
CONF
} >"$work/ngx/nginx.conf"
nginx -c "$work/ngx/nginx.conf"
start_mock target/release/mockbackend 1 --latency 10ms
slow_pid=$MOCK_PID
slow=http://127.0.0.1:${MOCK_PORTS[0]}/
cleanup() { kill "$mock_pid" "$slow_pid" 2>/dev/null || true; nginx -c "$work/ngx/nginx.conf" -s stop 2>/dev/null || true; }
trap cleanup EXIT
ngx=http://127.0.0.1:$ngx_port/

have_oha=$(command -v oha >/dev/null && echo yes || echo no)
run() { # tool url -> requests/s
    case $1 in
        loadgen) target/release/loadgen -q -k -t "$secs" -n 100000000 -c "$conns" "$2" | awk '/^Requests per second/ {print $4}' ;;
        wrk) wrk -t2 -c"$conns" -d"${secs}s" "$2" | awk '/Requests\/sec/ {print $2}' ;;
        ab) ab -q -k -t "$secs" -n 100000000 -c "$conns" "$2" 2>/dev/null | awk '/^Requests per second/ {print $4}' ;;
        oha) oha --no-tui -z "${secs}s" -c "$conns" "$2" | awk '/Requests\/sec/ {print $2}' ;;
    esac
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

tools=(loadgen wrk ab)
[ "$have_oha" = yes ] && tools+=(oha)
oha_col=""; [ "$have_oha" = yes ] && oha_col=" loadgen/oha |"
echo "| server | $(printf '%s | ' "${tools[@]}")loadgen/wrk | loadgen/ab |$oha_col"
echo "|---|$(printf -- '---:|%.0s' "${tools[@]}")---:|---:|${oha_col:+---:|}"
for server in nginx mockbackend; do
    url=$ngx; [ "$server" = mockbackend ] && url=$mock
    for t in "${tools[@]}"; do : >"$work/$t"; done
    for _ in $(seq "$rounds"); do
        for t in "${tools[@]}"; do run "$t" "$url" >>"$work/$t"; done
    done
    row="| $server |"
    for t in "${tools[@]}"; do row+=" $(median <"$work/$t" | cut -d. -f1) |"; done
    l=$(median <"$work/loadgen") w=$(median <"$work/wrk") a=$(median <"$work/ab")
    row+=" $(printf '%.2f' "$(echo "$l / $w" | bc -l)") | $(printf '%.2f' "$(echo "$l / $a" | bc -l)") |"
    if [ "$have_oha" = yes ]; then
        o=$(median <"$work/oha")
        row+=" $(printf '%.2f' "$(echo "$l / $o" | bc -l)") |"
    fi
    echo "$row"
done
echo
echo "requests/s, medians of $rounds rounds of ${secs}s at $conns connections (keep-alive); oha: $have_oha."

# p50 in ms against the 10 ms server, one connection: loadgen's HDR p50,
# wrk's, and curl's over one kept-alive connection as the floor any client
# sees here (waking an idle server and an idle client costs a VM some
# hundreds of microseconds); loadgen's own added latency is its distance
# from that floor.
lg=$(target/release/loadgen -q -k -n 500 -c 1 "$slow" | awk '/^  total:/ {for (i=1;i<=NF;i++) if ($i ~ /^p50=/) {sub("p50=","",$i); print $i}}')
wk=$(wrk -t1 -c1 -d3s --latency "$slow" | awk '$1 == "50%" {v=$2; u=v; sub(/[0-9.]+/,"",u); sub(/[a-z]+$/,"",v); print (u=="us") ? v/1000 : (u=="s" ? v*1000 : v)}')
# shellcheck disable=SC2046 # one URL per word is the point
cu=$(curl -s -w '%{time_total}\n' $(for _ in $(seq 300); do printf '%s -o /dev/null ' "$slow"; done) |
    sort -n | awk '{a[NR] = $1} END {printf "%.3f", a[int(NR / 2)] * 1000}')
echo "p50 against a server that waits 10 ms, 1 connection: loadgen ${lg} ms, wrk ${wk} ms, curl ${cu} ms."
for n in 100000 1000000 3000000; do
    kb=$( { /usr/bin/time -f '%M' target/release/loadgen -q -k -n "$n" -c "$conns" "$ngx" >/dev/null; } 2>&1 | tail -1)
    echo "peak memory for -n $n -c $conns: ${kb} kB"
done
