# Shared helpers for lbkit's bench and compatibility scripts (sourced, not run).

# Installs Debian packages that are missing; never assumes they are there.
need() {
    local missing=()
    for cmd_pkg in "$@"; do
        local cmd=${cmd_pkg%%:*} pkg=${cmd_pkg#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        echo "installing ${missing[*]}" >&2
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Starts mockbackend on ephemeral loopback ports; sets MOCK_PID, MOCK_PORTS
# and MOCK_TOKEN (what a /_mock/ control sends in X-Mock-Token).
start_mock() {
    local bin=$1 count=$2
    shift 2
    local out
    out=$(mktemp)
    local ports
    ports=$(printf '0,%.0s' $(seq "$count"))
    "$bin" --ports "${ports%,}" "$@" >"$out" 2>&1 &
    MOCK_PID=$!
    for _ in $(seq 100); do
        grep -q 'X-Mock-Token' "$out" && break
        sleep 0.05
    done
    MOCK_PORTS=($(grep -o 'http://127.0.0.1:[0-9]*' "$out" | sed 's/.*://'))
    MOCK_TOKEN=$(grep -o "X-Mock-Token: [^']*" "$out" | sed 's/.*: //')
    [ "${#MOCK_PORTS[@]}" -eq "$count" ] || { cat "$out" >&2; echo "mockbackend did not start" >&2; return 1; }
}

# A free loopback TCP port at or above $1.
free_port() {
    local p=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
}

# Waits up to 5 s for something to listen on loopback TCP port $1.
wait_port() {
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing is listening on 127.0.0.1:$1" >&2
    return 1
}

# The start of an nginx.conf that runs unprivileged out of directory $1:
# pid, logs and temp paths there, access_log off. Closes nothing: the caller
# adds its upstream and server blocks and the final "}".
nginx_prelude() {
    local dir=$1
    mkdir -p "$dir"
    cat <<CONF
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
CONF
}

# CPU clock ticks used so far by the given processes: field 14 of
# /proc/PID/stat is user time, 15 system time (getconf CLK_TCK per second).
cpu_ticks() { # field pids...
    local f=$1
    shift
    for p in "$@"; do awk -v f="$f" '{print $f}' "/proc/$p/stat"; done | paste -sd+ | bc
}
