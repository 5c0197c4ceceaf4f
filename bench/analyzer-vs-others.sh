#!/usr/bin/env bash
# analyzer's full report against what people use today, on one generated
# log (lbkit's balancer format: seed 003's upstream_log plus request time,
# upstream time and status), read from the page cache, in one run:
#   - awk '{print $(NF-3)}' | sort | uniq -c : seed 003's per-node count
#     (the node is 3 fields from the end once timings follow it); counts only
#   - GoAccess 1.7 with the matching log format, JSON output
# Prints the table for the README: seconds, MB/s, ratios, analyzer's peak
# memory. Usage: bench/analyzer-vs-others.sh [GB] (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need hyperfine:hyperfine goaccess:goaccess
gb=${1:-2}
cargo build -q --release -p analyzer
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/upstream.log

# 64 MiB of varied lines (3 nodes weighted 3:2:1, times 5-400 ms, 2% 502s
# retried once, 50k clients), repeated up to the size.
awk -v target=$((64 * 1024 * 1024)) 'BEGIN {
    srand(7); n = split("127.0.0.1:8001 127.0.0.1:8001 127.0.0.1:8001 127.0.0.1:8002 127.0.0.1:8002 127.0.0.1:8003", node, " ")
    while (size < target) {
        i++; a = node[int(rand() * n) + 1]; rt = 0.005 + rand() * rand() * 0.4
        if (rand() < 0.02) { addr = "127.0.0.1:8003, " a; us = "502, 200"; urt = sprintf("0.001, %.3f", rt) }
        else { addr = a; us = "200"; urt = sprintf("%.3f", rt) }
        line = sprintf("10.%d.%d.%d - - [21/Nov/2026:08:%02d:%02d +0000] \"POST /v1/chat/completions HTTP/1.1\" 200 %d \"-\" \"loadgen/0.1\" \"-\" to: %s rt=%.3f urt=%s us=%s",
            i % 7, int(i / 7) % 256, i % 250, int(i / 60000) % 60, int(i / 1000) % 60, 200 + int(rand() * 800), addr, rt + 0.001, urt, us)
        print line; size += length(line) + 1
    }
}' >"$work/chunk"
copies=$(((gb * 1024) / 64))
for _ in $(seq "$copies"); do cat "$work/chunk"; done >"$log"
bytes=$(stat -c %s "$log")
cat "$log" >/dev/null # into the page cache
echo "log: $((bytes / 1024 / 1024)) MiB, $(wc -l <"$log") lines"

hyperfine --runs 3 --warmup 1 --export-csv "$work/fast.csv" \
    -n analyzer "target/release/analyzer $log --report-only" \
    -n awk "awk '{print \$(NF-3)}' $log | sort | uniq -c" >/dev/null
# GoAccess is two orders slower: one run.
hyperfine --runs 1 --export-csv "$work/goaccess.csv" \
    -n goaccess "goaccess $log --log-format='%h %^[%d:%t %^] \"%r\" %s %b \"%R\" \"%u\" %^' --date-format=%d/%b/%Y --time-format=%T -o $work/goaccess.json" >/dev/null
mean() { awk -F, -v n="$2" '$1 == n {print $2}' "$1"; }
an=$(mean "$work/fast.csv" analyzer) aw=$(mean "$work/fast.csv" awk) ga=$(mean "$work/goaccess.csv" goaccess)
kb=$( { /usr/bin/time -f '%M' target/release/analyzer "$log" --report-only >/dev/null; } 2>&1 | tail -1)
mbs() { echo "scale=0; $bytes / 1048576 / $1" | bc -l; }
echo
echo "| tool | seconds | MB/s | analyzer's speed-up |"
echo "|---|---:|---:|---:|"
printf '| analyzer (full report) | %.2f | %s | 1 |\n' "$an" "$(mbs "$an")"
printf '| awk \\| sort \\| uniq -c (count only) | %.2f | %s | %.1f |\n' "$aw" "$(mbs "$aw")" "$(echo "$aw / $an" | bc -l)"
printf '| GoAccess 1.7 | %.2f | %s | %.1f |\n' "$ga" "$(mbs "$ga")" "$(echo "$ga / $an" | bc -l)"
echo
echo "analyzer peak memory: $((kb / 1024)) MB on $(nproc) cores"
target/release/analyzer "$log" --report-only | sed -n '1,12p'
