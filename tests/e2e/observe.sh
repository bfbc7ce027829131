# Observability checks of the kind e2e, sourced by tests/e2e/run.sh (which
# defines k, log, pass, fail, wait_for, WORKDIR, TIMEOUT): the admin
# listener's /metrics and /explain through a port-forward, and the access
# log in the controller's logs. Run after traffic to shop/mango was served.

observe_checks() {
  local port=19901 pf
  k -n switchyard-system port-forward deploy/switchyard "${port}:9901" \
    >"$WORKDIR/port-forward.log" 2>&1 &
  pf=$!
  admin_get() { curl -sS --max-time 5 "http://127.0.0.1:${port}$1"; }
  if ! wait_for "the admin port-forward" admin_get /healthz; then
    fail "admin port-forward" "$(head -c 300 "$WORKDIR/port-forward.log")"
    kill "$pf" 2>/dev/null || true
    return 0
  fi
  admin_get /metrics >"$WORKDIR/metrics.txt" || true
  if grep -q '^switchyard_route_requests_total{.*route="shop/mango"' "$WORKDIR/metrics.txt"; then
    pass "/metrics counts requests of route shop/mango"
  else
    fail "/metrics counts requests of route shop/mango" "$(grep -c '' "$WORKDIR/metrics.txt") lines"
  fi
  if grep -q '^switchyard_backend_endpoints{.*route="shop/mango".*state="ready"' "$WORKDIR/metrics.txt"; then
    pass "/metrics shows shop/mango's ready endpoints"
  else
    fail "/metrics shows shop/mango's ready endpoints"
  fi
  admin_get "/explain?url=http://www.mango.com/&format=text" >"$WORKDIR/explain.txt" || true
  if grep -q 'shop/mango' "$WORKDIR/explain.txt" && grep -q 'winner' "$WORKDIR/explain.txt"; then
    pass "/explain names shop/mango as the winner for www.mango.com/"
  else
    fail "/explain names shop/mango for www.mango.com/" "$(head -c 300 "$WORKDIR/explain.txt")"
  fi
  kill "$pf" 2>/dev/null || true
  # The controller logs one JSON line per request to stdout by default.
  if k -n switchyard-system logs -l app.kubernetes.io/name=switchyard --tail=-1 2>/dev/null \
    | grep -q '"route":"shop/mango"'; then
    pass "access log lines name route shop/mango"
  else
    fail "access log lines name route shop/mango"
  fi
}
