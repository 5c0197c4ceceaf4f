#!/usr/bin/env bash
# Regenerate the golden trace of real nginx's `hash $request_uri consistent`
# choices: nginx-chash-trace.csv (request_uri,upstream_addr) and
# nginx-chash-trace.conf (the exact upstream block used).
#
# Usage (from anywhere): balancer/tests/data/make-nginx-chash-trace.sh
#
# Everything runs on 127.0.0.1 only: nginx on a free high port, mock backends
# on the fixed ports 18101..18110 (the ring is built from the server strings as
# written, so the addresses must never change).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
mock="$target_dir/release/mockbackend"
csv="$here/nginx-chash-trace.csv"
conf_out="$here/nginx-chash-trace.conf"
N=2000
first_port=18101
last_port=18110

# shellcheck source=../../../bench/lib.sh
source "$root/bench/lib.sh"

# --- nginx ------------------------------------------------------------------
need nginx:nginx curl:curl
nginx_version="$(nginx -v 2>&1)"
echo "using: $nginx_version"

# --- mock backend binary ------------------------------------------------------
if [[ ! -x "$mock" ]]; then
    echo "building mockbackend (cargo build --release -p mockbackend)" >&2
    (cd "$root" && cargo build --release -p mockbackend)
fi

# --- the upstream block (the ring is built from exactly these lines) ----------
upstream_block="upstream backend {
    hash \$request_uri consistent;
    server 127.0.0.1:18101 weight=1;
    server 127.0.0.1:18102 weight=2;
    server 127.0.0.1:18103 weight=1;
    server 127.0.0.1:18104 weight=3;
    server 127.0.0.1:18105 weight=1;
    server 127.0.0.1:18106 weight=1;
    server 127.0.0.1:18107 weight=1;
    server 127.0.0.1:18108 weight=1;
    server 127.0.0.1:18109 weight=1;
    server 127.0.0.1:18110 weight=1;
}"

# --- scratch dir and cleanup ----------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/nginx-chash.XXXXXX")"
nginx_pid=""
mock_pid=""
stop() { # stop PID, bounded wait, then KILL
    local pid="$1" i
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop "$nginx_pid"; nginx_pid=""
    stop "$mock_pid"; mock_pid=""
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { # true if something accepts connections on 127.0.0.1:$1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# --- backends on the fixed ports ------------------------------------------------
for p in $(seq "$first_port" "$last_port"); do
    if port_busy "$p"; then
        echo "error: 127.0.0.1:$p is already in use; the trace needs ports $first_port-$last_port" >&2
        exit 1
    fi
done
"$mock" --ports "$first_port-$last_port" --bind 127.0.0.1 --grace 1s >"$tmp/mock.out" 2>&1 &
mock_pid=$!
for p in $(seq "$first_port" "$last_port"); do
    wait_port "$p" || { cat "$tmp/mock.out" >&2; exit 1; }
done

# --- nginx on a free high port ------------------------------------------------------
listen=$(free_port 18180)

user_line=""
if [[ "$(id -u)" == 0 ]]; then
    # as root the workers would otherwise drop to 'nobody'; keep them as us
    user_line="user $(id -un) $(id -gn);"
fi
mkdir -p "$tmp/logs"
cat >"$tmp/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 64; }
http {
    client_body_temp_path $tmp/client_body;
    proxy_temp_path       $tmp/proxy;
    fastcgi_temp_path     $tmp/fastcgi;
    uwsgi_temp_path       $tmp/uwsgi;
    scgi_temp_path        $tmp/scgi;
    log_format trace '\$request_uri \$upstream_addr \$status';

$upstream_block

    server {
        listen 127.0.0.1:$listen;
        access_log $tmp/logs/trace.log trace;
        location / {
            proxy_pass http://backend;
        }
    }
}
EOF
nginx -t -q -p "$tmp" -e "$tmp/logs/error.log" -c "$tmp/nginx.conf"
nginx -p "$tmp" -e "$tmp/logs/error.log" -c "$tmp/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
wait_port "$listen" || { cat "$tmp/logs/error.log" >&2; exit 1; }
: >"$tmp/logs/trace.log"   # start the trace empty

# --- the deterministic URI list (no spaces, commas or quotes: CSV stays simple) --
{
    for i in $(seq 1 1500); do printf '/item/%d\n' "$i"; done
    for i in $(seq 1 300); do printf '/v1/chat/completions?user=u%d\n' "$i"; done
    for i in $(seq 1 10); do
        printf '%s\n' \
            "/search?q=caf%C3%A9&page=$i" \
            "/~user$i/profile" \
            "/path;jsessionid=ABC$i" \
            "/a/b/../c/$i" \
            "/./dot/$i" \
            "//double//slash/$i" \
            "/q?x=$i&y=%20&z=!\$'()*+;=:@" \
            "/%7Etilde/%2F$i" \
            "/UPPER/MiXeD/Case$i" \
            "/?$i" \
            "/file.name-${i}_x.json" \
            "/v1/models/mock-model:$i" \
            "/emoji/%F0%9F%98%80/$i" \
            "/query?a=1&a=2&b=$i&empty=" \
            "/@at/$i@host" \
            "/plus+sign/$i?q=a+b" \
            "/percent%25/$i" \
            "/v1/chat/completions?user=u$i&stream=true" \
            "/trailing/$i/" \
            "/item/$i?"
    done
} >"$tmp/uris.txt"
n_uris="$(wc -l <"$tmp/uris.txt")"
[[ "$n_uris" == "$N" ]] || { echo "error: built $n_uris URIs, want $N" >&2; exit 1; }

# --- send them, one at a time -------------------------------------------------------
echo "sending $N requests to nginx on 127.0.0.1:$listen"
while IFS= read -r uri; do
    curl -s -g --path-as-is -o /dev/null --max-time 5 "http://127.0.0.1:$listen$uri" || true
done <"$tmp/uris.txt"

stop "$nginx_pid"; nginx_pid=""
stop "$mock_pid"; mock_pid=""

# --- check and convert the access log ----------------------------------------------------
log="$tmp/logs/trace.log"
lines="$(wc -l <"$log")"
[[ "$lines" == "$N" ]] || { echo "error: access log has $lines lines, want $N" >&2; exit 1; }
# every request must have reached exactly one upstream and got its answer (no
# failover, no 5xx; the mock answers GET /v1/chat/completions with 405, fine)
if ! awk 'NF != 3 || $2 ~ /,/ || $3 !~ /^[1-4][0-9][0-9]$/ { print "bad log line: " $0 > "/dev/stderr"; bad = 1 }
          $1 ~ /[,"]/ { print "URI needs CSV quoting: " $0 > "/dev/stderr"; bad = 1 }
          END { exit bad }' "$log"; then
    echo "error: the access log shows failed or retried requests" >&2
    exit 1
fi
# nginx hashes what it logs ($request_uri as received); note where curl changed a URI
if ! cut -d' ' -f1 "$log" | diff -q "$tmp/uris.txt" - >/dev/null; then
    echo "note: some URIs reached nginx differently from how they were written:" >&2
    cut -d' ' -f1 "$log" | diff "$tmp/uris.txt" - | head -20 >&2 || true
fi

{
    echo "request_uri,upstream_addr"
    awk '{ print $1 "," $2 }' "$log"
} >"$csv"
printf '%s\n' "# upstream block used by make-nginx-chash-trace.sh ($nginx_version)" "$upstream_block" >"$conf_out"

echo "wrote $csv ($N rows) and $conf_out"
echo "requests per upstream:"
cut -d' ' -f2 "$log" | sort | uniq -c | sort -k2
echo "statuses (the backend's answers; the trace is about the choice only):"
cut -d' ' -f3 "$log" | sort | uniq -c
