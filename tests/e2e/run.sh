#!/usr/bin/env bash
# End-to-end test of `switchyard controller` in a kind cluster.
#
#   tests/e2e/run.sh
#
# Builds the image, creates a kind cluster from kind-config.yaml, loads the
# image, installs crds/ and deploy/, applies tests/e2e/manifests/ (demo
# backends and routes in namespace `shop`) and checks, through the NodePort
# mapped to the host, that traffic is routed as the routes say, and that the
# routes' status says why (the condition reasons are the ones
# src/table/status.rs and src/table/compile.rs produce); then HTTPS
# (tests/e2e/tls.sh): a TLS Secret made with openssl, the route's TLSReady
# condition and column, curl over HTTPS, the 308 redirect, a rotation; and
# gRPC (tests/e2e/grpc.sh): a call over h2c to a Service port whose
# appProtocol is kubernetes.io/h2c, and an unsupported appProtocol.
# Needs docker, kind, kubectl, curl and openssl; it is not part of .ci/run
# (CI has no Docker).
#
# Environment:
#   CLUSTER_NAME=switchyard-e2e  the kind cluster's name
#   REUSE_CLUSTER=1              use the cluster if it already exists (it is
#                                then never deleted by this script)
#   KEEP_CLUSTER=1               do not delete the cluster at the end
#   SKIP_BUILD=1                 do not `docker build` (use the existing
#                                switchyard:dev image)
#   E2E_HOST_PORT=8080           the host port mapped to the NodePort
#   E2E_URL=http://127.0.0.1:8080  where the ingress is reached from here
#   E2E_HTTPS_HOST_PORT=8443     the host port mapped to the HTTPS NodePort
#   KIND_NODE_IMAGE=...          kind's node image (default: kind's own)
#   E2E_TIMEOUT=60               seconds each check may poll before failing
#
# Prints `e2e: N passed, M failed` last; exits non-zero if anything failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER_NAME="${CLUSTER_NAME:-switchyard-e2e}"
CONTEXT="kind-${CLUSTER_NAME}"
IMAGE="switchyard:dev"
HOST_PORT="${E2E_HOST_PORT:-8080}"
URL="${E2E_URL:-http://127.0.0.1:${HOST_PORT}}"
TIMEOUT="${E2E_TIMEOUT:-60}"
CRD_NAME="loadbalancerroutes.switchyard.dev"

PASSED=0
FAILED=0
FAILURES=()
CREATED_CLUSTER=0

STEP="start"

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# step DESCRIPTION: logs a setup step and remembers it, so that a failure
# (set -e) is reported with what was being done.
step() {
  STEP=$1
  log "$1"
}

# Every kubectl call names the kind cluster's context explicitly, so this
# script can never touch whatever cluster the current context points at.
k() { kubectl --context "$CONTEXT" "$@"; }

pass() {
  PASSED=$((PASSED + 1))
  log "PASS: $1"
}

fail() {
  FAILED=$((FAILED + 1))
  FAILURES+=("$1")
  log "FAIL: $1${2:+ ($2)}"
}

dump_diagnostics() {
  log "---- diagnostics ----"
  k get nodes -o wide || true
  k get pods -A -o wide || true
  k get lbr -A -o yaml || true
  k -n shop get services,endpointslices -o wide || true
  k -n shop get secrets || true
  k -n switchyard-system get lease -o yaml || true
  k -n switchyard-system describe deploy/switchyard || true
  k get events -A --sort-by=.lastTimestamp || true
  log "---- controller logs ----"
  k -n switchyard-system logs -l app.kubernetes.io/name=switchyard \
    --all-containers --prefix --tail=300 || true
  log "---- controller logs (previous containers, if any restarted) ----"
  k -n switchyard-system logs -l app.kubernetes.io/name=switchyard \
    --all-containers --prefix --tail=100 --previous 2>/dev/null || true
}

on_exit() {
  local rc=$?
  set +e
  if [[ $rc -ne 0 && $FAILED -eq 0 ]]; then
    # set -e stopped a setup step (build, cluster, install).
    fail "setup: ${STEP}" "exited with status $rc"
  fi
  if [[ $FAILED -gt 0 ]] && kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    dump_diagnostics
  fi
  if [[ $CREATED_CLUSTER -eq 1 && "${KEEP_CLUSTER:-0}" != 1 ]]; then
    log "deleting kind cluster $CLUSTER_NAME (KEEP_CLUSTER=1 keeps it)"
    kind delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1
  elif kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    log "cluster $CLUSTER_NAME kept; delete it with: kind delete cluster --name $CLUSTER_NAME"
  fi
  rm -rf "$WORKDIR"
  local f
  for f in "${FAILURES[@]+"${FAILURES[@]}"}"; do
    log "failed: $f"
  done
  if [[ $FAILED -eq 0 ]]; then
    log "PASS"
  else
    log "FAIL"
  fi
  echo "e2e: ${PASSED} passed, ${FAILED} failed"
  if [[ $FAILED -gt 0 ]]; then
    exit 1
  fi
  exit 0
}

# ---- polling helpers ----------------------------------------------------------
# Every wait is a poll of a condition against a deadline; the short sleep is
# only the interval between two polls.

# expect_http NAME HOST PATH WANT_STATUS [WANT_BODY_SUBSTRING]
# Polls until a GET of PATH with Host: HOST answers WANT_STATUS (and the body
# contains WANT_BODY_SUBSTRING, if given), or TIMEOUT seconds pass.
expect_http() {
  local name=$1 host=$2 path=$3 want_status=$4 want_body=${5:-}
  local deadline=$((SECONDS + TIMEOUT))
  local status body
  while :; do
    status="$(curl -sS -o "$WORKDIR/body" -w '%{http_code}' --max-time 5 \
      -H "Host: ${host}" "${URL}${path}" 2>"$WORKDIR/curl.err")" || true
    body="$(cat "$WORKDIR/body" 2>/dev/null || true)"
    if [[ "$status" == "$want_status" ]] \
      && { [[ -z "$want_body" ]] || [[ "$body" == *"$want_body"* ]]; }; then
      pass "$name: Host ${host} ${path} -> ${status}${want_body:+ \"${want_body}\"}"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      fail "$name: Host ${host} ${path}: want ${want_status}${want_body:+ with \"${want_body}\"}" \
        "last: status ${status:-none}, body \"${body:0:200}\" $(head -c 200 "$WORKDIR/curl.err" 2>/dev/null)"
      return 0
    fi
    sleep 1
  done
}

# expect_jsonpath NAME WANT JSONPATH KUBECTL-GET-ARGS...
# Polls `kubectl get ARGS -o jsonpath=JSONPATH` until it prints WANT, or
# TIMEOUT seconds pass.
expect_jsonpath() {
  local name=$1 want=$2 jsonpath=$3
  shift 3
  local deadline=$((SECONDS + TIMEOUT))
  local got
  while :; do
    got="$(k get "$@" -o "jsonpath=${jsonpath}" 2>&1)" || true
    if [[ "$got" == "$want" ]]; then
      pass "$name: ${got}"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      fail "$name" "want \"${want}\", last got \"${got:0:300}\""
      return 0
    fi
    sleep 1
  done
}

# condition TYPE FIELD: the jsonpath of a route condition's field.
condition() {
  printf '{.status.conditions[?(@.type=="%s")].%s}' "$1" "$2"
}

# wait_for NAME COMMAND...: polls COMMAND until it succeeds (setup steps that
# have no kubectl wait of their own). Exits the script on timeout.
wait_for() {
  local name=$1
  shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out waiting for: $name"
      return 1
    fi
    sleep 1
  done
}

# ---- prerequisites ---------------------------------------------------------------
missing=()
for tool in docker kind kubectl curl openssl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "tests/e2e/run.sh needs: docker, kind, kubectl, curl, openssl; missing: ${missing[*]}" >&2
  echo "  docker: https://docs.docker.com/engine/install/  kind: https://kind.sigs.k8s.io/" >&2
  echo "e2e: 0 passed, 1 failed"
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  echo "tests/e2e/run.sh: docker is installed but its daemon is not reachable (docker info failed)" >&2
  echo "e2e: 0 passed, 1 failed"
  exit 1
fi

# ---- cluster (decide) ----------------------------------------------------------
REUSING=0
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  if [[ "${REUSE_CLUSTER:-0}" != 1 ]]; then
    echo "tests/e2e/run.sh: kind cluster $CLUSTER_NAME already exists: delete it" \
      "(kind delete cluster --name $CLUSTER_NAME), or set REUSE_CLUSTER=1 to use it" >&2
    echo "e2e: 0 passed, 1 failed"
    exit 1
  fi
  REUSING=1
fi

WORKDIR="$(mktemp -d)"
trap on_exit EXIT
cd "$ROOT"

# ---- image (before the cluster: a build error should not cost one) -------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  step "docker build -t $IMAGE ."
  docker build -t "$IMAGE" .
fi

# ---- cluster (create) ----------------------------------------------------------
if [[ $REUSING -eq 1 ]]; then
  log "reusing kind cluster $CLUSTER_NAME"
else
  kind_config="$ROOT/kind-config.yaml"
  https_port="${E2E_HTTPS_HOST_PORT:-8443}"
  if [[ "$HOST_PORT" != 8080 || "$https_port" != 8443 ]]; then
    kind_config="$WORKDIR/kind-config.yaml"
    sed -e "s/hostPort: 8080/hostPort: ${HOST_PORT}/" \
      -e "s/hostPort: 8443/hostPort: ${https_port}/" "$ROOT/kind-config.yaml" >"$kind_config"
  fi
  step "creating kind cluster $CLUSTER_NAME (host ports $HOST_PORT -> NodePort 30080, $https_port -> 30443)"
  CREATED_CLUSTER=1
  kind create cluster --name "$CLUSTER_NAME" --config "$kind_config" \
    ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 180s
fi

step "kind load docker-image $IMAGE"
kind load docker-image "$IMAGE" --name "$CLUSTER_NAME"

# ---- install ----------------------------------------------------------------------
step "installing the CRD (crds/)"
k apply -f crds/
k wait --for=condition=Established "crd/${CRD_NAME}" --timeout=60s
# The API must serve the new resource before `lbr` objects can be applied.
wait_for "lbr served by the API" k get lbr -A

step "installing the controller (deploy/)"
k apply -f deploy/
# A reused cluster may run an older build of the same tag: restart so the
# freshly loaded image is the one under test.
if [[ $REUSING -eq 1 ]]; then
  k -n switchyard-system rollout restart deploy/switchyard
fi
k -n switchyard-system rollout status deploy/switchyard --timeout=180s

step "applying the demo backends and routes (tests/e2e/manifests/)"
k apply -f tests/e2e/manifests/
if [[ $REUSING -eq 1 ]]; then
  k -n shop rollout restart deploy/mango
  k -n shop rollout restart deploy/apple
fi
k -n shop rollout status deploy/mango --timeout=120s
k -n shop rollout status deploy/apple --timeout=120s

# ---- checks: routing --------------------------------------------------------------
# First, anything at all must answer there: if the port mapping or the
# Service is broken, stop now rather than let every check time out.
step "waiting for the ingress to answer at ${URL}"
wait_for "an HTTP answer from ${URL}" \
  curl -sS -o /dev/null --max-time 5 -H "Host: www.mango.com" "${URL}/"
STEP="checks"

log "checking routing through ${URL}"
expect_http "host route" www.mango.com / 200 "mango"
expect_http "host route" www.apple.com / 200 "apple"
expect_http "host route, any path" www.mango.com /some/deep/path?q=1 200 "mango"
expect_http "host compared case-insensitively" WWW.Mango.COM / 200 "mango"
expect_http "unknown host, no rule for /" www.notmango.com / 404
expect_http "hostless route by path" e2e.example /mango 200 "mango"
expect_http "hostless route by path" e2e.example /apple/x 200 "apple"
expect_http "no prefix match" e2e.example /notmango 404
expect_http "prefix matches whole segments" e2e.example /mangosteen 404
expect_http "service that does not exist" www.missing.com / 503
expect_http "rejected route (static address) not served" www.static.com / 404

# ---- checks: hostile input ----------------------------------------------------------
log "checking that hostile input is refused at the edge"
expect_http "malformed Host refused" "a b.mango.com" / 400
big_header="$(head -c 40000 /dev/zero | tr '\0' x)"
status="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: www.mango.com" \
  -H "X-Big: ${big_header}" "${URL}/" 2>/dev/null)" || true
if [[ "$status" == 431 ]]; then
  pass "request head over --max-request-header-bytes (32Ki) -> 431"
else
  fail "request head over --max-request-header-bytes" "want 431, got ${status:-none}"
fi

# ---- checks: status ----------------------------------------------------------------
log "checking route status"
expect_jsonpath "mango Accepted" True "$(condition Accepted status)" -n shop lbr mango
expect_jsonpath "mango ResolvedRefs" True "$(condition ResolvedRefs status)" -n shop lbr mango
expect_jsonpath "mango Ready" True "$(condition Ready status)" -n shop lbr mango
generation="$(k get -n shop lbr mango -o jsonpath='{.metadata.generation}')"
expect_jsonpath "mango observedGeneration" "$generation" '{.status.observedGeneration}' -n shop lbr mango
expect_jsonpath "apple ResolvedRefs (port by name)" True "$(condition ResolvedRefs status)" -n shop lbr apple
expect_jsonpath "by-path Accepted" True "$(condition Accepted status)" -n shop lbr by-path
expect_jsonpath "missing Accepted" True "$(condition Accepted status)" -n shop lbr missing
expect_jsonpath "missing ResolvedRefs" False "$(condition ResolvedRefs status)" -n shop lbr missing
expect_jsonpath "missing ResolvedRefs reason" BackendNotFound "$(condition ResolvedRefs reason)" -n shop lbr missing
expect_jsonpath "missing Ready reason" NoReadyEndpoints "$(condition Ready reason)" -n shop lbr missing
# readyEndpoints (the Endpoints column): distinct ready pod addresses.
expect_jsonpath "mango readyEndpoints" 2 '{.status.readyEndpoints}' -n shop lbr mango
expect_jsonpath "by-path readyEndpoints (mango + apple)" 4 '{.status.readyEndpoints}' -n shop lbr by-path
expect_jsonpath "missing readyEndpoints" 0 '{.status.readyEndpoints}' -n shop lbr missing
# Without --allow-static-backends an `address` backend is a field error: the
# route is rejected, and ResolvedRefs and Ready carry Accepted's reason.
expect_jsonpath "static Accepted" False "$(condition Accepted status)" -n shop lbr static
expect_jsonpath "static Accepted reason" Invalid "$(condition Accepted reason)" -n shop lbr static
expect_jsonpath "static ResolvedRefs reason" Invalid "$(condition ResolvedRefs reason)" -n shop lbr static
expect_jsonpath "static Ready reason" Invalid "$(condition Ready reason)" -n shop lbr static

# Only the Lease holder writes status: the Lease exists and names one of the
# controller's running pods. Polled: after a rollout restart (REUSE_CLUSTER)
# the old holder's Lease must expire (15s) before a new pod takes it over.
lease_holder_is_a_pod() {
  local holder pods
  holder="$(k -n switchyard-system get lease switchyard -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)" || return 1
  pods="$(k -n switchyard-system get pods -l app.kubernetes.io/name=switchyard \
    --field-selector=status.phase=Running \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')" || return 1
  [[ -n "$holder" ]] && grep -qx -- "$holder" <<<"$pods"
}
if wait_for "lease switchyard held by a controller pod" lease_holder_is_a_pod; then
  pass "lease switchyard held by controller pod $(k -n switchyard-system get lease switchyard -o jsonpath='{.spec.holderIdentity}')"
else
  fail "lease switchyard held by a controller pod" \
    "holder \"$(k -n switchyard-system get lease switchyard -o jsonpath='{.spec.holderIdentity}' 2>&1)\""
fi

log "kubectl get lbr -A"
k get lbr -A

# ---- checks: HTTPS ------------------------------------------------------------------
# shellcheck source=tests/e2e/tls.sh
source "$ROOT/tests/e2e/tls.sh"
tls_checks

# ---- checks: gRPC -------------------------------------------------------------------
# shellcheck source=tests/e2e/grpc.sh
source "$ROOT/tests/e2e/grpc.sh"
grpc_checks

# ---- checks: metrics, explain, access log -------------------------------------------
# shellcheck source=tests/e2e/observe.sh
source "$ROOT/tests/e2e/observe.sh"
observe_checks

# ---- checks: changes ----------------------------------------------------------------
log "deleting route shop/apple"
k -n shop delete lbr apple --wait=true
expect_http "deleted route's host" www.apple.com / 404
expect_http "other routes unaffected" www.mango.com / 200 "mango"
expect_http "other routes unaffected" e2e.example /apple 200 "apple"

log "re-creating route shop/apple"
k apply -f tests/e2e/manifests/20-routes.yaml
expect_http "re-created route" www.apple.com / 200 "apple"

log "scaling shop/mango to 0"
k -n shop scale deploy/mango --replicas=0
expect_http "no ready endpoints" www.mango.com / 503
expect_http "no ready endpoints (by path)" e2e.example /mango 503
expect_http "other services unaffected" www.apple.com / 200 "apple"
expect_jsonpath "mango Ready with no endpoints" False "$(condition Ready status)" -n shop lbr mango
expect_jsonpath "mango Ready reason" NoReadyEndpoints "$(condition Ready reason)" -n shop lbr mango
expect_jsonpath "mango readyEndpoints with no endpoints" 0 '{.status.readyEndpoints}' -n shop lbr mango
expect_jsonpath "mango still Accepted" True "$(condition Accepted status)" -n shop lbr mango

log "scaling shop/mango back to 2"
k -n shop scale deploy/mango --replicas=2
k -n shop rollout status deploy/mango --timeout=120s
expect_http "recovered" www.mango.com / 200 "mango"
expect_http "recovered (by path)" e2e.example /mango 200 "mango"
expect_jsonpath "mango Ready again" True "$(condition Ready status)" -n shop lbr mango
expect_jsonpath "mango readyEndpoints again" 2 '{.status.readyEndpoints}' -n shop lbr mango

log "kubectl get lbr -A"
k get lbr -A
# on_exit prints the summary and cleans up.
