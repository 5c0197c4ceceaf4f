#!/usr/bin/env bash
# The whole promise, end to end, with the real nginx: nginx proxies to two
# mockbackend ports weighted 3:2 and logs in seed 003's format plus timings,
# `loadgen -n 1000 -c 10` goes through it, and analyzer, given that
# nginx.conf, must pass; the same log against a config weighted 1:1 must
# fail with exit 1. Run by .ci/run; installs nginx when missing, and skips
# with the reason only when it cannot.
# Usage: bench/nginx-e2e.sh [target/debug]   (where the three binaries are)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
if ! need nginx:nginx || ! command -v nginx >/dev/null; then
    echo "SKIP  nginx is not installed and could not be installed"
    exit 0
fi
bins=${1:-target/debug}
for b in mockbackend loadgen analyzer; do
    [ -x "$bins/$b" ] || cargo build -q -p "$b"
done

start_mock "$bins/mockbackend" 2 --latency 'normal(5ms,1ms)'
work=$(mktemp -d)
trap 'kill $MOCK_PID 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true' EXIT
port=$(free_port 18480)
a=127.0.0.1:${MOCK_PORTS[0]} b=127.0.0.1:${MOCK_PORTS[1]}

conf() { # weights of a and b, whether to log
    nginx_prelude "$work"
    cat <<CONF
  log_format upstream_log '\$remote_addr - \$remote_user [\$time_local] "\$request" '
                          '\$status \$body_bytes_sent "\$http_referer" '
                          '"\$http_user_agent" "\$http_x_forwarded_for" to: \$upstream_addr '
                          'rt=\$request_time urt=\$upstream_response_time us=\$upstream_status';
  upstream backend {
    server $a weight=$1;
    server $b weight=$2;
  }
  server {
    listen 127.0.0.1:$port;
    access_log $work/upstream.log upstream_log;
    location / { proxy_pass http://backend; }
  }
}
CONF
}
conf 3 2 >"$work/nginx.conf"
conf 1 1 >"$work/even.conf"
nginx -c "$work/nginx.conf" -p "$work"
wait_port "$port"

"$bins/loadgen" -q -n 1000 -c 10 "http://127.0.0.1:$port/" >"$work/loadgen.out"
grep -E '^(Complete|Failed) requests' "$work/loadgen.out"
kill -QUIT "$(cat "$work/nginx.pid")"
for _ in $(seq 50); do [ -f "$work/nginx.pid" ] || break; sleep 0.1; done

failures=0
expect() { # exit code wanted, then analyzer's arguments
    local want=$1 got=0
    shift
    "$bins/analyzer" "$work/upstream.log" "$@" >"$work/analyzer.out" 2>&1 || got=$?
    if [ "$got" = "$want" ]; then
        echo "ok    analyzer $* -> exit $got"
    else
        echo "FAIL  analyzer $* -> exit $got, wanted $want"; failures=$((failures + 1))
    fi
    sed 's/^/      /' "$work/analyzer.out"
}
expect 0 --nginx-conf "$work/nginx.conf"
expect 1 --nginx-conf "$work/even.conf"
exit $failures
