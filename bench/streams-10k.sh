#!/usr/bin/env bash
# Concurrent token streams from one loadgen process: N (default 10,000)
# OpenAI-style SSE chat completions held open at once against mockbackend
# (first token after 1 s, then one token a second for 10 tokens, so every
# stream is open for about 10 s and all N overlap), read as they arrive.
# Reports how many streams completed, TTFT/ITL as measured, and the peak
# memory of loadgen and of mockbackend.
# Usage: bench/streams-10k.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
n=${1:-10000}
# Two sockets per stream on one machine (client and server side), plus slack.
ulimit -n $((n * 2 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build -q --release -p loadgen -p mockbackend
work=$(mktemp -d)
trap 'pkill -P $MOCK_PID 2>/dev/null || true; rm -rf "$work"' EXIT
/usr/bin/time -f '%M' -o "$work/mock.kb" target/release/mockbackend --ports 0 \
    --ttft 1s --tokens-per-sec 1 --output-tokens 10 >"$work/mock.out" 2>&1 &
MOCK_PID=$!
for _ in $(seq 50); do grep -q 'serving http://' "$work/mock.out" && break; sleep 0.1; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/mock.out" | head -1 | sed 's/.*://')
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$work/loadgen.kb" target/release/loadgen -q -k -r -s 60 \
    -n "$n" -c "$n" --stream "http://127.0.0.1:$port/v1/chat/completions" >"$work/report.txt"
end=$(date +%s.%N)
pkill -INT -P $MOCK_PID; wait $MOCK_PID 2>/dev/null || true
grep -E 'Complete requests|Failed requests|Token streams|time to first token|inter-token|output tokens' "$work/report.txt"
printf 'wall time: %.1f s for %d streams of ~10 s each\n' "$(echo "$end - $start" | bc -l)" "$n"
echo "loadgen peak memory: $(($(cat "$work/loadgen.kb") / 1024)) MB ($(($(cat "$work/loadgen.kb") / n)) KB per stream)"
echo "mockbackend peak memory: $(($(cat "$work/mock.kb") / 1024)) MB"
