#!/usr/bin/env bash
# Saves real ApacheBench 2.3 reports of the shapes loadgen's report copies:
# a plain GET run, a keep-alive POST run, and a run with non-2xx answers.
# Run from the workspace root; needs a release mockbackend.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source bench/lib.sh
need ab:apache2-utils
cargo build -q --release -p mockbackend
start_mock target/release/mockbackend 2
trap 'kill $MOCK_PID 2>/dev/null || true' EXIT
a=http://127.0.0.1:${MOCK_PORTS[0]}
b=http://127.0.0.1:${MOCK_PORTS[1]}
data=loadgen/tests/data
echo '{"message": "Hello, this is a test message"}' >"$data/chat.json"
ab -n 1000 -c 10 "$a/" 2>/dev/null >"$data/ab-get.txt"
ab -k -n 200 -c 4 -p "$data/chat.json" -T application/json "$a/chat" 2>/dev/null >"$data/ab-post-keepalive.txt"
curl -fsS -XPOST -H "X-Mock-Token: $MOCK_TOKEN" "$a/_mock/errors?rate=0.3&status=503&port=${MOCK_PORTS[1]}" >/dev/null
ab -n 300 -c 3 "$b/" 2>/dev/null >"$data/ab-failures.txt"
echo "saved $(ls "$data"/ab-*.txt)"
