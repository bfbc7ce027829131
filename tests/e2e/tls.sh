# HTTPS checks of the kind e2e, sourced by tests/e2e/run.sh (which defines
# k, log, pass, fail, expect_http, expect_jsonpath, condition, wait_for,
# WORKDIR, URL, TIMEOUT). The route shop/secure (manifests/30-tls-route.yaml)
# names the Secret shop/secure-mango-tls, which these checks create with
# openssl (a CA of their own and a leaf for secure.mango.com), then rotate.

TLS_HOST="secure.mango.com"
HTTPS_HOST_PORT="${E2E_HTTPS_HOST_PORT:-8443}"
HTTPS_URL="https://${TLS_HOST}:${HTTPS_HOST_PORT}"
# curl resolves secure.mango.com to the kind port mapping, and trusts only
# the e2e's CA.
CURL_TLS=(--resolve "${TLS_HOST}:${HTTPS_HOST_PORT}:127.0.0.1" --cacert "$WORKDIR/ca.crt")

# make_ca: a CA in $WORKDIR/ca.{crt,key}.
make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORKDIR/ca.key" -out "$WORKDIR/ca.crt" -days 2 \
    -subj "/CN=switchyard e2e CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# make_leaf NAME: $WORKDIR/NAME.{crt,key}, a certificate for TLS_HOST signed
# by the CA, with a random serial.
make_leaf() {
  local name=$1
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORKDIR/$name.key" -out "$WORKDIR/$name.csr" \
    -subj "/CN=${TLS_HOST}" 2>/dev/null
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$TLS_HOST" >"$WORKDIR/$name.ext"
  openssl x509 -req -in "$WORKDIR/$name.csr" -CA "$WORKDIR/ca.crt" -CAkey "$WORKDIR/ca.key" \
    -CAcreateserial -days 2 -extfile "$WORKDIR/$name.ext" -out "$WORKDIR/$name.crt" 2>/dev/null
}

# apply_secret NAME: creates or replaces shop/secure-mango-tls from NAME's pair.
apply_secret() {
  k -n shop create secret tls secure-mango-tls \
    --cert="$WORKDIR/$1.crt" --key="$WORKDIR/$1.key" --dry-run=client -o yaml | k apply -f -
}

# serial_of FILE: the certificate's serial, as openssl prints it.
serial_of() {
  openssl x509 -in "$1" -noout -serial | cut -d= -f2
}

# served_serial: the serial of the certificate the ingress presents for TLS_HOST.
served_serial() {
  openssl s_client -connect "127.0.0.1:${HTTPS_HOST_PORT}" -servername "$TLS_HOST" \
    </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}

# expect_https NAME PATH WANT_STATUS WANT_BODY [WANT_HEADER]: polls a GET of
# HTTPS_URL/PATH (verified against the e2e CA) until it answers as wanted.
expect_https() {
  local name=$1 path=$2 want_status=$3 want_body=$4 want_header=${5:-}
  local deadline=$((SECONDS + TIMEOUT)) status body headers
  while :; do
    status="$(curl -sS "${CURL_TLS[@]}" -D "$WORKDIR/https.headers" -o "$WORKDIR/https.body" \
      -w '%{http_code}' --max-time 5 "${HTTPS_URL}${path}" 2>"$WORKDIR/curl.err")" || true
    body="$(cat "$WORKDIR/https.body" 2>/dev/null || true)"
    headers="$(tr -d '\r' <"$WORKDIR/https.headers" 2>/dev/null || true)"
    if [[ "$status" == "$want_status" && "$body" == *"$want_body"* ]] \
      && { [[ -z "$want_header" ]] || grep -qi -- "^${want_header}" <<<"$headers"; }; then
      pass "$name: ${HTTPS_URL}${path} -> ${status}${want_header:+, ${want_header}}"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      fail "$name: ${HTTPS_URL}${path}: want ${want_status} \"${want_body}\" ${want_header}" \
        "last: status ${status:-none}, body \"${body:0:200}\" $(head -c 300 "$WORKDIR/curl.err" 2>/dev/null)"
      return 0
    fi
    sleep 1
  done
}

# expect_redirect NAME PATH WANT_LOCATION: a plain-HTTP GET of PATH with
# Host: TLS_HOST answers 308 with Location WANT_LOCATION.
expect_redirect() {
  local name=$1 path=$2 want=$3
  local deadline=$((SECONDS + TIMEOUT)) got
  while :; do
    got="$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 5 \
      -H "Host: ${TLS_HOST}" "${URL}${path}" 2>"$WORKDIR/curl.err")" || true
    if [[ "$got" == "308 ${want}" ]]; then
      pass "$name: http ${path} -> ${got}"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      fail "$name: http ${path}: want \"308 ${want}\"" "last: \"${got}\""
      return 0
    fi
    sleep 1
  done
}

# expect_tls_column: `kubectl get lbr` shows TLS=True for shop/secure.
expect_tls_column() {
  local table col value
  table="$(k -n shop get lbr secure 2>&1)" || true
  col="$(head -1 <<<"$table" | awk '{for (i = 1; i <= NF; i++) if ($i == "TLS") print i}')"
  value="$(sed -n 2p <<<"$table" | awk -v c="${col:-0}" 'c > 0 {print $c}')"
  if [[ "$value" == True ]]; then
    pass "kubectl get lbr: TLS column True"
  else
    fail "kubectl get lbr: TLS column" "want True, got \"${value}\" in: ${table}"
  fi
}

tls_checks() {
  log "checking HTTPS (route shop/secure, Secret shop/secure-mango-tls)"
  # A reused cluster may still hold the Secret of an earlier run.
  k -n shop delete secret secure-mango-tls --ignore-not-found
  expect_jsonpath "secure TLSReady before its Secret exists" SecretNotFound \
    "$(condition TLSReady reason)" -n shop lbr secure
  expect_jsonpath "secure Accepted without its Secret" True \
    "$(condition Accepted status)" -n shop lbr secure

  make_ca
  make_leaf first
  apply_secret first
  expect_jsonpath "secure TLSReady" True "$(condition TLSReady status)" -n shop lbr secure
  expect_jsonpath "secure TLSReady reason" CertificateReady \
    "$(condition TLSReady reason)" -n shop lbr secure
  expect_tls_column
  expect_https "HTTPS with the Secret's certificate" / 200 "mango" \
    "strict-transport-security: max-age=300"
  expect_redirect "plain HTTP redirected" "/cart?x=1" "https://${TLS_HOST}/cart?x=1"
  expect_http "ACME challenge not redirected" "$TLS_HOST" /.well-known/acme-challenge/t 200 "mango"
  expect_http "routes without tls not redirected" www.mango.com / 200 "mango"

  local status
  status="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
    --resolve "nobody.mango.com:${HTTPS_HOST_PORT}:127.0.0.1" --cacert "$WORKDIR/ca.crt" \
    "https://nobody.mango.com:${HTTPS_HOST_PORT}/" 2>/dev/null)" || true
  if [[ "$status" == 000 ]]; then
    pass "unknown SNI without a default certificate: handshake refused"
  else
    fail "unknown SNI without a default certificate" "want a failed handshake, got ${status}"
  fi

  log "rotating shop/secure-mango-tls"
  make_leaf second
  local want
  want="$(serial_of "$WORKDIR/second.crt")"
  apply_secret second
  if wait_for "the rotated certificate (serial ${want}) to be served" \
    bash -c "[[ \"\$(openssl s_client -connect 127.0.0.1:${HTTPS_HOST_PORT} -servername ${TLS_HOST} </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2)\" == ${want} ]]"; then
    pass "rotated certificate served (serial ${want})"
  else
    fail "rotated certificate served" "want serial ${want}, got $(served_serial)"
  fi
  expect_https "HTTPS after the rotation" / 200 "mango"
}
