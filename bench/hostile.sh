#!/usr/bin/env bash
# Hostile clients, servers and logs against each tool: how much memory it
# took at its peak (VmHWM, or GNU time's maximum RSS) and whether a normal
# client was still served meanwhile. Every probe is on loopback, bounded in
# count and time, and stops by itself.
#
#   slowloris     200 clients send a head a byte every 2 s (balancer, client_header_timeout 5s)
#   idle          12,000 connections that never send a byte (balancer)
#   huge body     an answer of 10 GB, read to its end (loadgen, -s 5)
#   endless body  a chunked answer that never ends, for 5 s (loadgen)
#   long line     a 1 GiB line between two log lines (analyzer)
#   many nodes    200,000 lines naming 50,000 distinct nodes (analyzer)
#
# Usage: bench/hostile.sh        (prints a Markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need python3:python3 curl:curl /usr/bin/time:time

cargo build -q --release -p balancer -p mockbackend -p loadgen -p analyzer
bin=target/release
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 |"); }
peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
mib() { echo "$(( ($1 + 512) / 1024 )) MiB"; }

start_mock "$bin/mockbackend" 1
pids+=("$MOCK_PID")
port=$(free_port 19600)
"$bin/balancer" --listen "127.0.0.1:$port" --upstream "127.0.0.1:${MOCK_PORTS[0]}" \
    --client-header-timeout 5s >"$work/balancer.out" 2>"$work/balancer.err" &
bal=$!
pids+=("$bal")
wait_port "$port"
normal() { curl -fsS -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null || echo "no answer"; }

# Slowloris: the heads never finish; the balancer drops them at 5 s.
python3 - "$port" <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks = []
for _ in range(200):
    s = socket.create_connection(("127.0.0.1", port))
    s.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    socks.append(s)
end = time.time() + 12
while time.time() < end:
    for s in socks:
        try:
            s.send(b"X")
        except OSError:
            pass
    time.sleep(2)
open_ = 0
for s in socks:
    s.setblocking(False)
    try:
        open_ += s.recv(1) != b""
    except BlockingIOError:
        open_ += 1
    except OSError:
        pass
print(f"slowloris: {open_} of 200 still open after 12 s", file=sys.stderr)
PY
loris=$!
sleep 3
served=$(normal)
wait "$loris"
row slowloris balancer "$(mib "$(peak_kb "$bal")")" "$served (200 heads dropped after client_header_timeout)"

# Idle connections past the connection limit: idle ones give way.
python3 - "$port" <<'PY' &
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
port = int(sys.argv[1])
socks = []
for _ in range(12000):
    try:
        socks.append(socket.create_connection(("127.0.0.1", port)))
    except OSError:
        break
print(f"idle: {len(socks)} connections opened", file=sys.stderr)
time.sleep(8)
PY
idle=$!
sleep 5
served=$(normal)
wait "$idle"
limit=$(grep -o 'up to [0-9]* client connections' "$work/balancer.err" | grep -o '[0-9]*' || echo "?")
row "12,000 idle connections" balancer "$(mib "$(peak_kb "$bal")")" "$served (limit $limit; idle ones closed to make room)"
kill "$bal" "$MOCK_PID" 2>/dev/null || true

# A server that sends a 10 GB body, and one whose chunked body never ends.
hostile_server() {
    python3 - "$1" "$2" <<'PY' &
import socket, sys, threading
port, kind = int(sys.argv[1]), sys.argv[2]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16); s.settimeout(20)
chunk = b"x" * (1 << 20)
def serve(c):
    try:
        c.recv(65536)
        if kind == "length":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n")
            while True: c.sendall(chunk)
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            piece = b"100000\r\n" + chunk + b"\r\n"
            while True: c.sendall(piece)
    except OSError:
        pass
try:
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
except socket.timeout:
    pass
PY
    pids+=($!)
    wait_port "$1"
}
for kind in length chunked; do
    hport=$(free_port 19700)
    hostile_server "$hport" "$kind"
    /usr/bin/time -f '%M' -o "$work/time" "$bin/loadgen" -q -n 1 -s 5 "http://127.0.0.1:$hport/" >"$work/lg.out" 2>&1 || true
    field() { grep -o "$1: *[0-9.]*" "$work/lg.out" | grep -o '[0-9.]*$' || echo "?"; }
    if [ "$kind" = length ]; then
        row "10 GB body" loadgen "$(mib "$(tail -1 "$work/time")")" "read to its end and counted: $(field 'Complete requests') complete, $(field 'Total transferred') bytes in $(field 'Time taken for tests') s"
    else
        row "endless chunked body" loadgen "$(mib "$(tail -1 "$work/time")")" "given up at -s 5: $(field 'Failed requests') failed, after $(field 'Time taken for tests') s"
    fi
done

# A 1 GiB line in a log, and 50,000 distinct nodes.
line='127.0.0.1 - - [21/Nov/2026:09:11:23 +0000] "GET / HTTP/1.1" 200 18 "-" "curl" "-" to: 127.0.0.1:8001 rt=0.002 urt=0.001 us=200 cl=18'
{ echo "$line"; head -c 1G /dev/zero | tr '\0' 'x'; echo; echo "$line"; } >"$work/long.log"
/usr/bin/time -f '%M' -o "$work/time" "$bin/analyzer" --format lbkit --allow-malformed "$work/long.log" >"$work/an.out" 2>&1 || true
malformed=$(grep -o '^[0-9]* lines do not match' "$work/an.out" | grep -o '^[0-9]*' || echo 0)
row "1 GiB line" analyzer "$(mib "$(tail -1 "$work/time")")" "$malformed malformed line counted, 2 requests read"
rm -f "$work/long.log"
awk -v line="$line" 'BEGIN { for (i = 0; i < 200000; i++) { n = i % 50000; l = line; sub(/127\.0\.0\.1:8001/, sprintf("10.%d.%d.%d:80", int(n / 65536), int(n / 256) % 256, n % 256), l); print l } }' >"$work/nodes.log"
/usr/bin/time -f '%M' -o "$work/time" "$bin/analyzer" --format lbkit "$work/nodes.log" >"$work/an.out" 2>&1 || true
other=$(grep -c 'summed as (other nodes)' "$work/an.out" || true)
row "50,000 nodes" analyzer "$(mib "$(tail -1 "$work/time")")" "$([ "$other" -gt 0 ] && echo "nodes past 256 summed as (other nodes)" || echo "no cap said")"

echo "| probe | tool | peak RSS | a normal client / the result |"
echo "|---|---|---:|---|"
printf '%s\n' "${rows[@]}"
