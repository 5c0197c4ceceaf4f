#!/usr/bin/env bash
# Real LLM clients against lbkit, and lbkit against a real client's server:
# GuideLLM 0.8.1 and the official openai Python SDK (in a virtual
# environment, from PyPI) stream from mockbackend directly and through the
# balancer, next to loadgen on the same servers, each client's TTFT and ITL
# side by side; then loadgen against GuideLLM's own mock server, and the two
# mock servers' requests per second and peak memory under the same load.
# Every check that a client saw what it should (answers, usage, the model)
# fails the script; the figures are printed for the README.
# Usage: bench/llm-clients.sh [requests per client, default 40]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need curl:curl

n=${1:-40}
cargo build -q --release -p mockbackend -p balancer -p loadgen
bin=target/release
venv=target/llm-clients-venv
if ! [ -x "$venv/bin/guidellm" ] || ! "$venv/bin/python" -c 'import openai' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'guidellm==0.8.1' openai
fi
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

# 20 ms to the first token, then 200 tokens/s (5 ms apart), 32 tokens.
start_mock "$bin/mockbackend" 2 --ttft 20ms --tokens-per-sec 200 --output-tokens 32
pids+=("$MOCK_PID")
bal_port=$(free_port 18600)
"$bin/balancer" --listen "127.0.0.1:$bal_port" --upstream "127.0.0.1:${MOCK_PORTS[0]}" \
    --upstream "127.0.0.1:${MOCK_PORTS[1]}" >"$work/balancer.log" 2>&1 &
pids+=($!)
wait_port "$bal_port"

for i in $(seq "$n"); do
    echo "{\"prompt\": \"Tell me how a load balancer spreads request $i\", \"output_tokens_count\": 32}"
done >"$work/prompts.jsonl"

cat >"$work/sdk.py" <<'PY'
# The openai SDK as an application uses it: models.retrieve, then streamed
# chat completions with the usage chunk; prints TTFT and ITL medians (ms).
import statistics, sys, time
import openai

base, n = sys.argv[1], int(sys.argv[2])
client = openai.OpenAI(base_url=base + "/v1", api_key="none")
assert client.models.retrieve("mock-model").id == "mock-model"
ttfts, itls = [], []
for i in range(n):
    t0 = time.perf_counter()
    stream = client.chat.completions.create(
        model="mock-model", max_tokens=32, stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": f"Tell me how a load balancer spreads request {i}"}])
    first = last = None
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            if first is None:
                first = now
            else:
                itls.append((now - last) * 1e3)
            last = now
    assert usage is not None and usage.completion_tokens == 32, usage
    ttfts.append((first - t0) * 1e3)
print(f"{statistics.median(ttfts):.2f} {statistics.median(itls):.2f}")
PY

# loadgen, GuideLLM and the SDK, one request at a time, on one target.
clients() {
    local name=$1 url=$2
    "$bin/loadgen" -q -n "$n" -c 1 -k --stream --json "$work/lg.json" "$url/v1/chat/completions" >/dev/null
    read -r lg_ttft lg_itl < <(python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['streams']; assert s['whole'] == $n; print(s['ttft_ms']['p50'], s['itl_ms']['p50'])" "$work/lg.json")
    rm -f "$work/gl.json"
    "$venv/bin/guidellm" run --backend "kind=openai_http,target=$url" --profile kind=synchronous \
        --constraint "kind=max_requests,count=$n" --data "kind=json_file,path=$work/prompts.jsonl" \
        --output "kind=json,path=$work/gl.json" --disable-console >"$work/gl.log" 2>&1 \
        || { cat "$work/gl.log"; exit 1; }
    read -r gl_ttft gl_itl < <(python3 -c "
import json, sys
m = json.load(open(sys.argv[1]))['benchmarks'][0]['metrics']
assert m['request_totals']['successful'] == $n, m['request_totals']
assert m['output_token_count']['successful']['mean'] == 32, m['output_token_count']['successful']['mean']
print(round(m['time_to_first_token_ms']['successful']['median'], 2), round(m['inter_token_latency_ms']['successful']['median'], 2))" "$work/gl.json")
    read -r sdk_ttft sdk_itl < <("$venv/bin/python" "$work/sdk.py" "$url" "$n")
    printf '%-26s %14s %14s %14s\n' "$name" "$lg_ttft / $lg_itl" "$gl_ttft / $gl_itl" "$sdk_ttft / $sdk_itl"
}

echo "TTFT / ITL medians in ms, $n streams each, one at a time (mock: ttft 20 ms, 5 ms between tokens)"
printf '%-26s %14s %14s %14s\n' "" "loadgen" "GuideLLM" "openai SDK"
clients "mockbackend" "http://127.0.0.1:${MOCK_PORTS[0]}"
clients "through the balancer" "http://127.0.0.1:$bal_port"
kill "${pids[@]}" 2>/dev/null || true
pids=()

# Peak resident memory of a process and its children, in MiB.
peak_mib() {
    local total=0 pid
    for pid in "$1" $(pgrep -P "$1" || true); do
        total=$((total + $(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
    done
    echo $((total / 1024))
}

# The same load on both mock servers: 16 tokens, no pacing, 32 streams at once.
serve() {
    local name=$1 port=$2 pid=$3
    "$bin/loadgen" -q -t 5 -n 100000000 -c 32 -k --stream --json "$work/s.json" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
    read -r rps whole failed ttft < <(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(round(j['requests_per_second']), j['streams']['whole'], j['failed']['total'], j['streams']['ttft_ms']['p50'])" "$work/s.json")
    [ "$failed" = 0 ] || { echo "$name: $failed requests failed" >&2; exit 1; }
    printf '%-26s %10s %10s %12s %10s\n' "$name" "$rps" "$whole" "$(peak_mib "$pid")" "$ttft"
}

gl_port=$(free_port 18700)
"$venv/bin/guidellm" mock-server --host 127.0.0.1 --port "$gl_port" --ttft-ms 0 --itl-ms 0 \
    --output-tokens 16 >"$work/glmock.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$gl_port/v1/models" >/dev/null 2>&1 && break
    sleep 0.2
done
start_mock "$bin/mockbackend" 1 --output-tokens 16
pids+=("$MOCK_PID")
echo
echo "loadgen -t 5 -c 32 -k --stream against each mock server (16 tokens, unpaced; peak memory of the server and its workers)"
printf '%-26s %10s %10s %12s %10s\n' "" "req/s" "streams" "peak MiB" "TTFT p50"
serve "GuideLLM mock-server" "$gl_port" "${pids[0]}"
serve "mockbackend" "${MOCK_PORTS[0]}" "$MOCK_PID"
