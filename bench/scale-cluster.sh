#!/usr/bin/env bash
# Scale measurement against a real cluster (the kind cluster of tests/e2e,
# or any cluster kubectl reaches): loads a generated table, then reports
# how long until every route shows its status, and how long a route edit
# and an endpoint flip take from the API write to the first request that
# sees them. The same measurements run against the API double in
# tests/scale.rs (bench/README.md, "Scale").
#
#   bench/scale-cluster.sh            # uses kubectl's current context
#
# Needs: switchyard deployed (crds/, deploy/), kubectl, curl, python3, and
# the generator (`cargo build --release --bin switchyard-gen`).
#
# Environment:
#   ROUTES=10000     routes to generate (over 10 namespaces gen-0..gen-9)
#   CHANGES=50       route edits and endpoint flips to time
#   URL=http://127.0.0.1:8080   where the ingress is reached from here
#   GEN=target/release/switchyard-gen
#   IMAGE=switchyard:dev  the image of the live backends (`switchyard
#                    demo-backend`, as in tests/e2e/manifests/)
#   KEEP=1           leave the generated objects in the cluster
#
# Endpoints of the generated Services are addresses in 10.1.0.0/8 that
# nothing answers: they are there to be counted, not reached. Edits send to
# `live`, a real Deployment in each namespace.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUTES="${ROUTES:-10000}"
CHANGES="${CHANGES:-50}"
URL="${URL:-http://127.0.0.1:8080}"
GEN="${GEN:-$ROOT/target/release/switchyard-gen}"
IMAGE="${IMAGE:-switchyard:dev}"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT

now_ms() { date +%s%3N; }

# p50, p99 and max of the numbers on stdin.
percentiles() {
  python3 -c '
import sys, math
t = sorted(float(x) for x in sys.stdin.read().split())
at = lambda q: t[max(1, math.ceil(len(t) * q)) - 1]
print(f"p50 {at(0.5):.0f} ms, p99 {at(0.99):.0f} ms, max {t[-1]:.0f} ms")'
}

# Waits until `curl` of host and path answers status $3; prints the ms.
time_until() {
  local host="$1" path="$2" want="$3" started got
  started="$(now_ms)"
  for _ in $(seq 1 12000); do
    got="$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" "$URL$path" || true)"
    if [ "$got" = "$want" ]; then
      echo $(($(now_ms) - started))
      return
    fi
    sleep 0.01
  done
  echo "timed out waiting for $host$path to answer $want" >&2
  exit 1
}

# How many generated routes show a status for their current generation.
with_status() {
  kubectl get lbr -A -o json | python3 -c '
import json, sys
items = [r for r in json.load(sys.stdin)["items"] if r["metadata"]["namespace"].startswith("gen-")]
ok = [r for r in items if r.get("status", {}).get("observedGeneration") == r["metadata"]["generation"]
      and r["status"].get("conditions")]
print(len(ok))'
}

"$GEN" --mode cluster --routes "$ROUTES" --first-octet 10 --out "$DIR" >/dev/null
started="$(now_ms)"
kubectl apply --server-side -f "$DIR/00-objects.yaml" >/dev/null
for ns in $(seq 0 9); do
  kubectl apply --server-side -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: live, namespace: gen-$ns}
spec:
  selector: {matchLabels: {app: live}}
  template:
    metadata: {labels: {app: live}}
    spec:
      containers:
      - name: live
        image: $IMAGE
        imagePullPolicy: IfNotPresent
        args: [demo-backend, --listen, "0.0.0.0:8080", --name, live]
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: live, namespace: gen-$ns}
spec: {selector: {app: live}, ports: [{name: http, port: 80, targetPort: 8080}]}
EOF
done
kubectl apply --server-side -f "$DIR" >/dev/null
applied="$(now_ms)"
until [ "$(with_status)" -ge "$ROUTES" ]; do sleep 1; done
echo "every route shows its status $(($(now_ms) - applied)) ms after the last apply" \
     "(the apply took $((applied - started)) ms)"

kubectl -n gen-0 rollout status deployment/live --timeout=120s >/dev/null
live_ip="$(kubectl -n gen-0 get pods -l app=live -o jsonpath='{.items[0].status.podIP}')"
flip() {
  kubectl apply --server-side -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: flip, namespace: gen-0}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: flip-1
  namespace: gen-0
  labels: {kubernetes.io/service-name: flip, endpointslice.kubernetes.io/managed-by: switchyard-gen}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: ["$live_ip"], conditions: {ready: $1}}]
---
apiVersion: switchyard.dev/v1alpha1
kind: LoadBalancerRoute
metadata: {name: flip, namespace: gen-0}
spec: {hosts: [flip.gen.test], rules: [{backends: [{service: flip, port: 80}]}]}
EOF
}
flip false
time_until flip.gen.test / 503 >/dev/null

accepted="$(kubectl get lbr -A -o json | python3 -c '
import json, sys
for r in json.load(sys.stdin)["items"]:
    m = r["metadata"]
    conds = r.get("status", {}).get("conditions", [])
    if m["namespace"].startswith("gen-") and m["name"] != "flip" and any(
            c["type"] == "Accepted" and c["status"] == "True" for c in conds):
        print(m["namespace"], m["name"], r["spec"]["hosts"][0].replace("*", "a", 1))')"
edits="$DIR/edits"; flips="$DIR/flips"
for n in $(seq 1 "$CHANGES"); do
  read -r ns name host <<<"$(sed -n "$(( (n * 7919) % $(wc -l <<<"$accepted") + 1 ))p" <<<"$accepted")"
  kubectl -n "$ns" patch lbr "$name" --type=json -p "[{\"op\": \"add\", \"path\": \"/spec/rules/-\",
    \"value\": {\"matches\": [{\"path\": {\"type\": \"Exact\", \"value\": \"/edit-$n\"}}],
                \"backends\": [{\"service\": \"live\", \"port\": 80}]}}]" >/dev/null
  time_until "$host" "/edit-$n" 200 >>"$edits"
  if [ $((n % 2)) = 1 ]; then flip true; want=200; else flip false; want=503; fi
  time_until flip.gen.test / "$want" >>"$flips"
done
echo "$CHANGES route edits served: $(percentiles <"$edits"), from the write to the first request that sees it"
echo "$CHANGES endpoint flips served: $(percentiles <"$flips")"

if [ -z "${KEEP:-}" ]; then
  for ns in $(seq 0 9); do kubectl delete namespace "gen-$ns" --wait=false >/dev/null; done
fi
