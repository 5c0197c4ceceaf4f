#!/usr/bin/env bash
# analyzer's full report against what people use today, on two generated
# logs in lbkit's balancer format, each read from the page cache:
#   repeated  a 64 MiB chunk of varied lines repeated to GB gigabytes (3
#             nodes 3:2:1, 2% retried, 50k clients): the bench's first log
#   varied    5 million lines, 785 MB, nothing repeated: 3 nodes, 3% 5xx,
#             lognormal request times, 65,536 clients, the time changing
#             every 100 lines (issue 14's log)
# against
#   - awk '{print $(NF-3)}' | sort | uniq -c : seed 003's per-node count
#     (the node is 3 fields from the end once timings follow it); counts only
#   - GoAccess 1.7 with the matching log format, JSON output (one run)
# Prints the README's table: analyzer's GB/s, its speed against awk and
# GoAccess, and its peak memory. Usage: bench/analyzer-vs-others.sh [GB]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need hyperfine:hyperfine goaccess:goaccess bc:bc
gb=${1:-2}
cargo build -q --release -p analyzer
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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
for _ in $(seq $(((gb * 1024) / 64))); do cat "$work/chunk"; done >"$work/repeated.log"
rm "$work/chunk"

awk 'BEGIN {
    srand(11); n = split("127.0.0.1:8001 127.0.0.1:8001 127.0.0.1:8001 127.0.0.1:8002 127.0.0.1:8002 127.0.0.1:8003", node, " ")
    for (i = 0; i < 5000000; i++) {
        a = node[int(rand() * n) + 1]
        rt = exp(log(0.05) + 1.6 * (rand() + rand() + rand() - 1.5))
        st = (rand() < 0.03) ? 502 : 200
        c = int(rand() * 65536); t = int(i / 100)
        printf "10.%d.%d.%d - - [21/Nov/2026:%02d:%02d:%02d +0000] \"POST /v1/chat/completions HTTP/1.1\" %d %d \"-\" \"loadgen/0.1\" \"-\" to: %s rt=%.3f urt=%.3f us=%d\n",
            0, int(c / 256) % 256, c % 256, int(t / 3600) % 24, int(t / 60) % 60, t % 60, st, 200 + int(rand() * 800), a, rt + 0.001, rt, st
    }
}' >"$work/varied.log"

rows=()
for name in repeated varied; do
    log=$work/$name.log
    bytes=$(stat -c %s "$log")
    cat "$log" >/dev/null # into the page cache
    echo "$name: $((bytes / 1024 / 1024)) MiB, $(wc -l <"$log") lines" >&2
    hyperfine --runs 3 --warmup 1 --export-csv "$work/fast.csv" \
        -n analyzer "target/release/analyzer $log --report-only" \
        -n awk "awk '{print \$(NF-3)}' $log | sort | uniq -c" >/dev/null
    # GoAccess is two orders slower: one run.
    hyperfine --runs 1 --export-csv "$work/goaccess.csv" \
        -n goaccess "goaccess $log --log-format='%h %^[%d:%t %^] \"%r\" %s %b \"%R\" \"%u\" %^' --date-format=%d/%b/%Y --time-format=%T -o $work/goaccess.json" >/dev/null
    mean() { awk -F, -v n="$2" '$1 == n {print $2}' "$1"; }
    an=$(mean "$work/fast.csv" analyzer) aw=$(mean "$work/fast.csv" awk) ga=$(mean "$work/goaccess.csv" goaccess)
    kb=$( { /usr/bin/time -f '%M' target/release/analyzer "$log" --report-only >/dev/null; } 2>&1 | tail -1)
    rows+=("$(printf '| %s (%d MB) | %.2f s | %.2f | %.1fx | %.0fx | %d MB |' "$name" "$((bytes / 1000000))" "$an" \
        "$(echo "$bytes / 1000000000 / $an" | bc -l)" "$(echo "$aw / $an" | bc -l)" "$(echo "$ga / $an" | bc -l)" "$((kb / 1024))")")
    rm "$log"
done
echo "| log | analyzer, full report | GB/s | vs awk count-only | vs GoAccess | peak memory |"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo "on $(nproc) cores"
