#!/usr/bin/env bash
# Checks that clients nobody here wrote work against mockbackend with zero
# failures: ab (HTTP/1.0 and -k), wrk, curl (plain, JSON, SSE).
# Usage: bench/real-clients.sh [path/to/mockbackend]   (default: a debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need ab:apache2-utils wrk:wrk curl:curl

bin=${1:-target/debug/mockbackend}
[ -x "$bin" ] || cargo build -q -p mockbackend
start_mock "$bin" 2
trap 'kill $MOCK_PID 2>/dev/null || true' EXIT
a=http://127.0.0.1:${MOCK_PORTS[0]}
b=http://127.0.0.1:${MOCK_PORTS[1]}
work=$(mktemp -d)
echo '{"message": "Hello, this is a test message"}' >"$work/chat.json"
echo '你好,我是Michael阿明开发的智能助手!' >"$work/text.txt"

passes=0 failures=0
check() { # name, command output file, pattern that must appear, pattern that must not
    local name=$1 file=$2 want=$3 reject=${4:-}
    if grep -Eq "$want" "$file" && { [ -z "$reject" ] || ! grep -Eq "$reject" "$file"; }; then
        echo "ok    $name"; passes=$((passes + 1))
    else
        echo "FAIL  $name"; sed 's/^/      /' "$file"; failures=$((failures + 1))
    fi
}

ab -n 1000 -c 10 "$a/" >"$work/ab1" 2>&1 || true
check "ab -n 1000 -c 10 (HTTP/1.0)" "$work/ab1" '^Failed requests: +0$' 'Non-2xx'
check "ab completed all 1000" "$work/ab1" '^Complete requests: +1000$'

ab -k -n 1000 -c 10 "$a/" >"$work/ab2" 2>&1 || true
check "ab -k -n 1000 -c 10 (keep-alive)" "$work/ab2" '^Keep-Alive requests: +1000$' '^Failed requests: +[1-9]'

ab -n 1000 -c 10 -T application/json -p "$work/chat.json" "$b/chat" >"$work/ab3" 2>&1 || true
check "ab -p chat.json -T application/json /chat" "$work/ab3" '^Failed requests: +0$' 'Non-2xx'

ab -n 1000 -c 10 -T text/plain -p "$work/text.txt" "$b/completions" >"$work/ab4" 2>&1 || true
check "ab -p text.txt -T text/plain /completions" "$work/ab4" '^Failed requests: +0$' 'Non-2xx'

wrk -t2 -c20 -d2s "$a/" >"$work/wrk" 2>&1 || true
check "wrk -t2 -c20 -d2s" "$work/wrk" 'Requests/sec' 'Non-2xx|Socket errors'

curl -fsS "$a/" >"$work/curl1" 2>&1 || true
check "curl GET /" "$work/curl1" "响应来自:${MOCK_PORTS[0]}"
curl -fsS -H 'Content-Type: application/json' -d @"$work/chat.json" "$a/chat" >"$work/curl2" 2>&1 || true
check "curl POST /chat" "$work/curl2" '"response":"Processed by chat API: HELLO, THIS IS A TEST MESSAGE"'
curl -fsSN -d '{"messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":4}' \
    "$a/v1/chat/completions" >"$work/curl3" 2>&1 || true
check "curl -N SSE /v1/chat/completions" "$work/curl3" '^data: \[DONE\]$'
curl -fsS -H 'Accept: text/plain' "$a/metrics" >"$work/curl4" 2>&1 || true
check "curl /metrics (Prometheus text)" "$work/curl4" '^mock_requests_total\{port='

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
