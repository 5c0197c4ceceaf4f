#!/usr/bin/env bash
# Memory under a long run: drives mockbackend with wrk until at least
# REQUESTS requests (default 2 million) have been answered, sampling its
# resident memory as it goes. Fails if memory grew by more than 8 MiB after
# the first tenth of the run (warm-up: buffers, allocator pools).
#
# Usage: bench/memory-soak.sh [requests] [path]   (path: / or /chat)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need wrk:wrk

target=${1:-2000000} path=${2:-/chat}
cargo build -q --release -p mockbackend
start_mock target/release/mockbackend 1
trap 'kill $MOCK_PID 2>/dev/null || true' EXIT
url=http://127.0.0.1:${MOCK_PORTS[0]}$path
lua=$(mktemp)
cat >"$lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"message": "Hello, this is a test message"}'
wrk.headers["Content-Type"] = "application/json"
LUA
[ "$path" = /chat ] || : >"$lua"

served() { curl -fsS "http://127.0.0.1:${MOCK_PORTS[0]}/metrics" | sed 's/.*"requests_total":\([0-9]*\).*/\1/'; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$MOCK_PID/status"; }

echo "requests  rss_kB"
samples=()
deadline=$((SECONDS + 3600))
while :; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "gave up after an hour" >&2; exit 1; }
    wrk -t2 -c64 -d5s -s "$lua" "$url" >/dev/null
    n=$(served) r=$(rss)
    samples+=("$n:$r")
    printf '%8d  %6d\n' "$n" "$r"
    [ "$n" -ge "$target" ] && break
done
warm=${samples[$(( ${#samples[@]} / 10 ))]#*:}
last=${samples[-1]#*:}
growth=$((last - warm))
echo "after warm-up: ${warm} kB -> ${last} kB (growth ${growth} kB over $(served) requests)"
[ "$growth" -lt 8192 ]
