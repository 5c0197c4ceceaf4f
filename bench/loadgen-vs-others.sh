#!/usr/bin/env bash
# loadgen against wrk, ab -k and (when installed) oha: same server, same
# connection count, alternating rounds in one run. Servers: nginx
# `return 200` and a mockbackend port. Then loadgen's own added latency
# (a server that waits 10 ms: reported p50 minus 10 ms) and its peak memory
# as -n grows.
#
# wrk runs at -t1 and -t2 (on 2 cores -t1 is often the faster: the server
# needs the other core) and loadgen is set against the better of the two.
# Each tool's user CPU per request is read from /usr/bin/time.
#
# Then the same nginx `return 200` over TLS (a certificate made here with
# openssl): HTTP/1.1 against wrk and oha, and HTTP/2 against oha, 8 streams
# on each connection for both (loadgen -c C --streams-per-conn 8 is oha's
# -c C/8 -p 8: C requests in flight on C/8 connections).
#
# Usage: bench/loadgen-vs-others.sh [seconds-per-round] [rounds] [connection counts]
# (oha is not a Debian package: `cargo install oha` puts it on PATH.)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx:nginx wrk:wrk ab:apache2-utils curl:curl bc:bc /usr/bin/time:time openssl:openssl

secs=${1:-3} rounds=${2:-3}
read -ra conn_list <<<"${3:-32 256}"
conns=${conn_list[0]}
# One nginx worker, as in the issue's measurements: the other core is the client's.
ngx_workers=1
cargo build -q --release -p mockbackend -p loadgen
work=$(mktemp -d)
start_mock target/release/mockbackend 1
mock_pid=$MOCK_PID
mock=http://127.0.0.1:${MOCK_PORTS[0]}/
ngx_port=$(free_port 18095)
tls_port=$(free_port $((ngx_port + 1)))
mkdir -p "$work/ngx"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$work/ngx/key.pem" -out "$work/ngx/cert.pem" 2>/dev/null
{ nginx_prelude "$work/ngx" | sed "s/^worker_processes auto;/worker_processes $ngx_workers;/"; cat <<CONF
  server {
    listen 127.0.0.1:$ngx_port backlog=4096;
    location / { default_type text/plain; return 200 "hello"; }
  }
  server {
    listen 127.0.0.1:$tls_port ssl http2 backlog=4096;
    ssl_certificate $work/ngx/cert.pem; ssl_certificate_key $work/ngx/key.pem;
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
tls=https://127.0.0.1:$tls_port/

have_oha=$(command -v oha >/dev/null && echo yes || echo no)
# One round of a tool against a URL at $c connections: "requests/s user-µs/request".
# User CPU is the client's own (from /usr/bin/time), per request it completed.
run() { # tool url connections
    local t=$1 url=$2 c=$3 out ins=()
    out=$(mktemp)
    # A self-signed certificate: loadgen's and oha's --insecure (wrk checks none).
    [ "${url%%:*}" = https ] && ins=(--insecure)
    case $t in
        loadgen) /usr/bin/time -f 'cpu %U' target/release/loadgen -q -k "${ins[@]}" -t "$secs" -n 100000000 -c "$c" "$url" >"$out" 2>&1 ;;
        loadgen-t1) /usr/bin/time -f 'cpu %U' target/release/loadgen --threads 1 -q -k "${ins[@]}" -t "$secs" -n 100000000 -c "$c" "$url" >"$out" 2>&1 ;;
        wrk-t1) /usr/bin/time -f 'cpu %U' wrk -t1 -c"$c" -d"${secs}s" "$url" >"$out" 2>&1 ;;
        wrk-t2) /usr/bin/time -f 'cpu %U' wrk -t2 -c"$c" -d"${secs}s" "$url" >"$out" 2>&1 ;;
        ab) /usr/bin/time -f 'cpu %U' ab -q -k -t "$secs" -n 100000000 -c "$c" "$url" >"$out" 2>&1 ;;
        oha) /usr/bin/time -f 'cpu %U' oha --no-tui "${ins[@]}" -z "${secs}s" -c "$c" "$url" >"$out" 2>&1 ;;
        # HTTP/2, 8 streams a connection.
        loadgen-h2) /usr/bin/time -f 'cpu %U' target/release/loadgen -q --insecure --http2 --streams-per-conn 8 -t "$secs" -n 100000000 -c "$c" "$url" >"$out" 2>&1 ;;
        loadgen-h2-t1) /usr/bin/time -f 'cpu %U' target/release/loadgen --threads 1 -q --insecure --http2 --streams-per-conn 8 -t "$secs" -n 100000000 -c "$c" "$url" >"$out" 2>&1 ;;
        oha-h2) /usr/bin/time -f 'cpu %U' oha --no-tui --insecure --http2 -z "${secs}s" -c $((c / 8)) -p 8 "$url" >"$out" 2>&1 ;;
    esac
    awk -v secs="$secs" '
        /^Requests per second/ {rps=$4}
        /Requests\/sec/ {rps=$2}
        /^cpu / {cpu=$2}
        END {printf "%.0f %.2f\n", rps, (rps > 0) ? cpu * 1e6 / (rps * secs) : 0}' "$out"
    rm -f "$out"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }

# One row per connection count: each tool's median requests/s over the
# alternating rounds, then loadgen's best (of its two thread settings)
# against wrk's best and against oha (the tools named by $lg, $wrk, $oha).
table() { # server url tools...
    local server=$1 url=$2
    shift 2
    local tools=("$@")
    for c in "${conn_list[@]}"; do
        for t in "${tools[@]}"; do : >"$work/$t.rps"; : >"$work/$t.cpu"; done
        for _ in $(seq "$rounds"); do
            for t in "${tools[@]}"; do
                read -r rps cpu < <(run "$t" "$url" "$c")
                echo "$rps" >>"$work/$t.rps"; echo "$cpu" >>"$work/$t.cpu"
            done
        done
        declare -A med=()
        local row="| $server | $c |" cpus=""
        for t in "${tools[@]}"; do
            med[$t]=$(median <"$work/$t.rps" | cut -d. -f1)
            row+=" ${med[$t]} |"
            cpus+="$(median <"$work/$t.cpu") "
        done
        best_lg=${med[$lg]}; [ "${med[$lg-t1]:-0}" -gt "$best_lg" ] && best_lg=${med[$lg-t1]}
        if [ -n "$wrk" ]; then
            best_wrk=${med[wrk-t1]}; [ "${med[wrk-t2]}" -gt "$best_wrk" ] && best_wrk=${med[wrk-t2]}
            row+=" $(ratio "$best_lg" "$best_wrk") |"
        else row+=" - |"; fi
        if [ -n "${med[$oha]:-}" ]; then row+=" $(ratio "$best_lg" "${med[$oha]}") |"; else row+=" - |"; fi
        echo "$row ${cpus% } |"
    done
}
header() { # tools...
    echo "| server | conns | $(printf '%s | ' "$@")best loadgen / best wrk | best loadgen / oha | user µs/request ($(printf '%s ' "$@" | sed 's/ $//')) |"
    echo "|---|---:|$(printf -- '---:|%.0s' "$@")---:|---:|---|"
}

# loadgen runs at its default (a thread per core) and with --threads 1, as
# wrk at -t2 and -t1; each is set against the other's better.
read -ra tools <<<"${TOOLS:-loadgen loadgen-t1 wrk-t1 wrk-t2 ab}"
[ "$have_oha" = yes ] && tools+=(oha)
header "${tools[@]}"
lg=loadgen wrk=yes oha=oha
table nginx "$ngx" "${tools[@]}"
table mockbackend "$mock" "${tools[@]}"
echo
echo "HTTPS, the same nginx over TLS (HTTP/1.1, keep-alive):"
tls_tools=(loadgen loadgen-t1 wrk-t1 wrk-t2)
[ "$have_oha" = yes ] && tls_tools+=(oha)
header "${tls_tools[@]}"
table "nginx https" "$tls" "${tls_tools[@]}"
echo
echo "HTTP/2 over TLS, 8 streams on each connection (conns: requests in flight):"
h2_tools=(loadgen-h2 loadgen-h2-t1)
[ "$have_oha" = yes ] && h2_tools+=(oha-h2)
header "${h2_tools[@]}"
lg=loadgen-h2 wrk="" oha=oha-h2
table "nginx h2" "$tls" "${h2_tools[@]}"
echo
echo "requests/s, medians of $rounds alternating rounds of ${secs}s (keep-alive); nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') with worker_processes $ngx_workers; $(nproc) cores; oha: $have_oha$([ "$have_oha" = yes ] && oha --version | sed 's/^/ /')."
echo

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
