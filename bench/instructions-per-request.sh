#!/usr/bin/env bash
# Instructions the proxy executes per request, counted by callgrind: a
# repeatable A/B on machines whose wall-clock and CPU-time figures are too
# noisy (shared VMs, no hardware counters). One keep-alive client sends N
# and then 2N GETs through `switchyard run` (one route, two nginx backends
# from proxybench's backend template); (I(2N) - I(N)) / N cancels start-up
# and compile. Needs valgrind, nginx and python3.
#   bench/instructions-per-request.sh BINARY [BINARY...]   (N: $REQUESTS, default 2000)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${REQUESTS:-2000}
work=$(mktemp -d)
backend=
trap 'kill "$backend" 2>/dev/null || true; rm -rf "$work"' EXIT

"$here/../shared/bench/proxybench" --emit-config backend --emit-dir "$work/be" >/dev/null 2>&1
# The template runs nginx in the foreground (`daemon off`).
nginx -p "$work/be/" -e "$work/be/error.log" -c "$work/be/nginx.conf" &
backend=$!
cat >"$work/routes.yaml" <<YAML
apiVersion: switchyard.dev/v1alpha1
kind: LoadBalancerRoute
metadata: {name: bench}
spec:
  rules:
  - backends:
    - address: "127.0.0.1:18081"
    - address: "127.0.0.1:18082"
YAML

# Sends $2 GETs on one keep-alive connection to 127.0.0.1:$1 once it answers.
drive() {
  python3 - "$1" "$2" <<'PY'
import http.client, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 120
while True:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/"); conn.getresponse().read(); break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.2)
for _ in range(count - 1):
    conn.request("GET", "/"); r = conn.getresponse(); r.read()
    assert r.status == 200, r.status
conn.close()
PY
}

# Total instructions of one proxy run serving $2 requests.
count() {
  local bin=$1 requests=$2 port out
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  out="$work/cg.$requests.$RANDOM"
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" -q \
    "$bin" run --routes "$work/routes.yaml" --listen "127.0.0.1:$port" --admin 127.0.0.1:0 &
  local pid=$!
  drive "$port" "$requests"
  kill -TERM "$pid"; wait "$pid" || true
  awk '/^summary:|^totals:/ {print $2; exit}' "$out"
}

printf '| binary | instructions per request (N=%s) |\n|---|---:|\n' "$n"
for bin in "$@"; do
  one=$(count "$bin" "$n"); two=$(count "$bin" $((2 * n)))
  printf '| %s | %s |\n' "$bin" $(( (two - one) / n ))
done
