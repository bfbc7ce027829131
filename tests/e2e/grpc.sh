# gRPC checks of the kind e2e, sourced by tests/e2e/run.sh (which defines
# k, log, pass, fail, expect_jsonpath, condition, WORKDIR, URL, TIMEOUT).
# The routes are in manifests/40-grpc.yaml; curl speaks HTTP/2 with prior
# knowledge to the plain listener and sends one gRPC message by hand (a
# 5-byte frame header, then the message), which the demo backend echoes.

# grpc_call NAME HOST WANT_STATUS: polls until a call to HOST ends with
# grpc-status WANT_STATUS (and, for 0, the message echoed), or TIMEOUT.
grpc_call() {
  local name=$1 host=$2 want=$3
  local deadline=$((SECONDS + TIMEOUT))
  printf '\x00\x00\x00\x00\x05hello' >"$WORKDIR/grpc.req"
  local got
  while :; do
    curl -sS --http2-prior-knowledge --max-time 5 -o "$WORKDIR/grpc.resp" \
      -D "$WORKDIR/grpc.head" -H "Host: ${host}" -H 'content-type: application/grpc' \
      -H 'te: trailers' --data-binary @"$WORKDIR/grpc.req" "${URL}/demo.Echo/Say" \
      2>"$WORKDIR/curl.err" || true
    got="$(tr -d '\r' <"$WORKDIR/grpc.head" 2>/dev/null | sed -n 's/^grpc-status: *//Ip' | tail -1)"
    if [[ "$got" == "$want" ]] \
      && { [[ "$want" != 0 ]] || cmp -s "$WORKDIR/grpc.req" "$WORKDIR/grpc.resp"; }; then
      pass "$name: ${host} -> grpc-status ${got}"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      fail "$name: ${host}: want grpc-status ${want}" \
        "last: grpc-status \"${got}\", $(head -c 200 "$WORKDIR/curl.err" 2>/dev/null)"
      return 0
    fi
    sleep 1
  done
}

grpc_checks() {
  log "checking gRPC (h2c backends chosen by appProtocol)"
  expect_jsonpath "grpc route resolved" True "$(condition ResolvedRefs status)" -n shop lbr grpc
  grpc_call "gRPC call echoed over h2c" grpc.mango.com 0
  expect_jsonpath "unsupported appProtocol reported" UnsupportedProtocol \
    "$(condition ResolvedRefs reason)" -n shop lbr grpc-unsupported
  grpc_call "proxy-made gRPC answer (no endpoint)" grpc-guess.mango.com 14
}
