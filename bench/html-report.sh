#!/usr/bin/env bash
# The HTML reports, opened in a real browser: each tool writes its --html
# page (a run through the balancer, the analyzer on that run's log, a
# scenario with events, a capacity sweep, a comparison of two runs), and
# headless Chromium (installed with apt-get when missing) loads each one
# with the network off, draws it and takes a screenshot. Each page must
# parse into the DOM with its charts, load nothing from elsewhere (the
# tests check the bytes; here Chromium would fail a fetch with networking
# disabled), and paint a screenshot that is not blank.
# Usage: bench/html-report.sh [dir with loadgen, mockbackend, balancer, analyzer] [out dir]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need chromium:chromium
bin=$(cd "${1:-target/debug}" && pwd)
out=${2:-target/html-report}
mkdir -p "$out"
out=$(cd "$out" && pwd)

start_mock "$bin/mockbackend" 3 --latency "normal(5ms,1ms)"
port=$(free_port 18750)
log="$out/access.log"
: >"$log"
upstreams=()
for p in "${MOCK_PORTS[@]}"; do upstreams+=(--upstream "127.0.0.1:$p"); done
"$bin/balancer" --listen "127.0.0.1:$port" "${upstreams[@]}" --access-log "$log" >"$out/balancer.out" 2>&1 &
BAL_PID=$!
trap 'kill $MOCK_PID $BAL_PID 2>/dev/null || true' EXIT
wait_port "$port"
url="http://127.0.0.1:$port/"

q() { "$@" >/dev/null; }
q "$bin/loadgen" -q -k -n 2000 -c 8 --threshold 'p(99)<500ms' --json "$out/base.json" --html "$out/run.html" "$url"
q "$bin/loadgen" -q -k -n 2000 -c 8 --json "$out/new.json" "$url"
q "$bin/analyzer" "$log" --html "$out/analyzer.html"
q "$bin/loadgen" compare "$out/base.json" "$out/new.json" --html "$out/compare.html"
q "$bin/loadgen" -q -k --sweep rate=100..800 --step-duration 1s --warmup 300ms \
    --threshold 'p(99)<50ms' --html "$out/sweep.html" "$url"
q "$bin/loadgen" --scenario scenarios/failover-recovery.toml --engine reference -q --html "$out/scenario.html"

profile=$(mktemp -d)
trap 'kill $MOCK_PID $BAL_PID 2>/dev/null || true; rm -rf "$profile"' EXIT
browser=(chromium --headless --no-sandbox --disable-gpu --disable-quic --disable-background-networking
    --disable-component-update --disable-sync --disable-extensions --no-first-run
    --user-data-dir="$profile" --hide-scrollbars --host-resolver-rules="MAP * ~NOTFOUND")
for page in run analyzer compare sweep scenario; do
    html="$out/$page.html"
    dom=$(timeout 60 "${browser[@]}" --dump-dom "file://$html" 2>/dev/null)
    charts=$(grep -o '<svg' <<<"$dom" | wc -l)
    verdict=$(grep -o 'class="verdict [a-z]*">[^<]*' <<<"$dom" | sed 's/.*">//')
    [ "$charts" -ge 2 ] || { echo "$page.html: Chromium found $charts charts" >&2; exit 1; }
    [ -n "$verdict" ] || { echo "$page.html: no verdict in the page Chromium loaded" >&2; exit 1; }
    png="$out/$page.png"
    rm -f "$png"
    timeout 60 "${browser[@]}" --window-size=1280,2000 --screenshot="$png" "file://$html" >/dev/null 2>&1
    size=$(stat -c %s "$png" 2>/dev/null || echo 0)
    # A blank 1280x2000 page compresses to a few kilobytes; charts do not.
    [ "$size" -gt 40000 ] || { echo "$page.html: screenshot of $size bytes" >&2; exit 1; }
    printf 'ok    %-9s %3d charts, %7d-byte screenshot, %s\n' "$page" "$charts" "$size" "$verdict"
done
echo "pages and screenshots in $out"
