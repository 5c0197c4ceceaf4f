#!/usr/bin/env bash
# The manifests beside this file, checked without a cluster:
#  1. against Kubernetes' own schemas, strictly (kubernetes-validate, from
#     PyPI, in a virtual environment under target/);
#  2. their commands, run here as the Jobs would run them: shards-job.yaml's
#     arguments in one process per pod, each told its index by
#     JOB_COMPLETION_INDEX, against mockbackend behind the balancer (the
#     Service's URL pointed there, /results a scratch directory, -n cut to
#     a fiftieth so it takes a second; every other flag as written), then
#     merge-job.yaml's command on what they wrote.
# Usage: deploy/kubernetes/check.sh [dir with loadgen, mockbackend, balancer]
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/lib.sh
bin=$(cd "${1:-target/debug}" && pwd)
here=deploy/kubernetes

venv=target/k8s-venv
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q kubernetes-validate==1.37.0
fi
"$venv/bin/kubernetes-validate" --strict --quiet "$here"/*.yaml
echo "ok    the manifests are valid Kubernetes 1.37 objects"

work=$(mktemp -d)
start_mock "$bin/mockbackend" 3
port=$(free_port 18700)
upstreams=()
for p in "${MOCK_PORTS[@]}"; do upstreams+=(--upstream "127.0.0.1:$p"); done
"$bin/balancer" --listen "127.0.0.1:$port" "${upstreams[@]}" --trust-forwarded-for >"$work/balancer.out" 2>&1 &
BAL_PID=$!
trap 'kill $MOCK_PID $BAL_PID 2>/dev/null || true; rm -rf "$work"' EXIT
wait_port "$port"

# What the Jobs run: the shards' count and arguments, the merge's script.
"$venv/bin/python" - "$here" "$work" "http://127.0.0.1:$port/" <<'PY'
import sys, yaml
here, work, url = sys.argv[1:]
job = yaml.safe_load(open(f"{here}/shards-job.yaml"))
spec = job["spec"]
assert spec["completionMode"] == "Indexed"
n = spec["completions"]
assert spec["parallelism"] == n, "every shard runs at once"
args = spec["template"]["spec"]["containers"][0]["args"]
assert f"--shards={n}" in args, f"--shards must be {n}, the Job's completions"
out = []
for i, a in enumerate(args):
    if a.startswith("http://"):
        a = url
    elif i > 0 and args[i - 1] == "-n":
        a = str(int(a) // 50)
    a = a.replace("/results", work)
    out.append(a)
open(f"{work}/shards", "w").write(f"{n}\n")
open(f"{work}/args", "w").write("\n".join(out) + "\n")
merge = yaml.safe_load(open(f"{here}/merge-job.yaml"))
script = merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
open(f"{work}/merge.sh", "w").write(script.replace("/results", work) + "\n")
PY

shards=$(cat "$work/shards")
start=$(($(date +%s) + 2))
pids=()
for i in $(seq 0 $((shards - 1))); do
    mapfile -t args < <(sed -e "s/\$(JOB_COMPLETION_INDEX)/$i/" -e "s/\$(START_AT)/$start/" "$work/args")
    JOB_COMPLETION_INDEX=$i "$bin/loadgen" "${args[@]}" >"$work/shard-$i.out" 2>&1 &
    pids+=($!)
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { cat "$work/shard-$i.out"; echo "FAIL  shard $i" >&2; exit 1; }
done
echo "ok    $shards shards ran as the Indexed Job's pods would"

status=0
PATH="$bin:$PATH" sh -c "$(cat "$work/merge.sh")" >"$work/merge.out" 2>&1 || status=$?
if [ "$status" != 0 ]; then
    cat "$work/merge.out"
    echo "FAIL  the merge Job's command: exit $status" >&2
    exit 1
fi
want=$(($(grep -A1 '^-n$' "$work/args" | tail -n 1)))
got=$("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["complete"])' "$work/merged.json")
[ "$got" = "$want" ] || { echo "FAIL  merged $got requests, the run made $want" >&2; exit 1; }
grep -q '<testsuite' "$work/junit.xml"
echo "ok    the merge Job judged the $want requests of the whole run"
