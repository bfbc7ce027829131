#!/usr/bin/env bash
# TLS termination: switchyard vs nginx, same certificate, same backend, same
# run, on loopback.
#
#   cargo build --release
#   ../shared/bench/proxybench --install-only     # apt: nginx, wrk (and more)
#   bench/tls.sh
#
# For each certificate (ECDSA P-256 and RSA 2048, made here with openssl)
# and each proxy (nginx, switchyard) it runs wrk over HTTPS against the
# proxy, which forwards to one nginx `return 200` backend:
#   keep-alive       requests/s over long-lived TLS connections (the cost
#                    of encryption per request);
#   new connections  requests/s with `Connection: close`: every request a
#                    new TCP connection and TLS handshake, which wrk
#                    resumes from its previous session (as browsers do);
# and with `openssl s_time -new` (THREADS processes):
#   full handshakes  handshakes/s with no resumption (the signature and key
#                    exchange every time; s_time sends no SNI, so switchyard
#                    serves it the same pair as its --default-certificate).
# Every run is bounded (DURATION, default 10s), every port is on 127.0.0.1
# and picked free by the kernel. Prints a markdown table.
#
# Environment:
#   SWITCHYARD_BIN=target/release/switchyard   the binary under test
#   DURATION=10s          each wrk / s_time run (seconds, with the `s`)
#   THREADS=2             wrk threads
#   CONNECTIONS=64        wrk connections, keep-alive runs
#   HS_CONNECTIONS=16     wrk connections, handshake runs
#   WORKERS=<nproc>       nginx worker processes (switchyard uses all cores)
#   ONLY=nginx|switchyard run one proxy only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SWITCHYARD_BIN:-$ROOT/target/release/switchyard}"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
HS_CONNECTIONS="${HS_CONNECTIONS:-16}"
WORKERS="${WORKERS:-$(nproc)}"
ONLY="${ONLY:-}"
HOST="localhost"   # wrk resolves it, sends it as SNI, and the route names it

for tool in nginx wrk openssl python3 curl; do
  command -v "$tool" >/dev/null || {
    echo "bench/tls.sh needs $tool (../shared/bench/proxybench --install-only)" >&2
    exit 1
  }
done
if [[ "$ONLY" != nginx && ! -x "$BIN" ]]; then
  echo "bench/tls.sh: no $BIN (cargo build --release, or ONLY=nginx)" >&2
  exit 1
fi

DIR="$(mktemp -d)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$DIR"
}
trap cleanup EXIT

log() { printf '[tls-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# free_port: a port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT: polls until 127.0.0.1:PORT accepts (bounded: 10s).
wait_port() {
  local deadline=$((SECONDS + 10))
  until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; do
    ((SECONDS < deadline)) || { log "nothing listens on 127.0.0.1:$1"; return 1; }
    sleep 0.1
  done
}

# make_cert ALG: $DIR/ALG.{crt,key}, self-signed for HOST.
make_cert() {
  local alg=$1 newkey
  case $alg in
    ecdsa) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
    rsa) newkey=(-newkey rsa:2048) ;;
  esac
  openssl req -x509 "${newkey[@]}" -nodes -days 2 -subj "/CN=$HOST" \
    -addext "subjectAltName=DNS:$HOST" \
    -keyout "$DIR/$alg.key" -out "$DIR/$alg.crt" 2>/dev/null
}

# nginx_conf NAME BODY: $DIR/NAME/nginx.conf with BODY as its http block's servers.
nginx_conf() {
  local name=$1 body=$2
  mkdir -p "$DIR/$name"
  cat >"$DIR/$name/nginx.conf" <<CONF
daemon off;
worker_processes $WORKERS;
pid $DIR/$name/nginx.pid;
error_log $DIR/$name/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 100000000;
    client_body_temp_path $DIR/$name/body;
    proxy_temp_path $DIR/$name/proxy;
    fastcgi_temp_path $DIR/$name/fastcgi;
    uwsgi_temp_path $DIR/$name/uwsgi;
    scgi_temp_path $DIR/$name/scgi;
$body
}
CONF
}

start_nginx() {
  nginx -p "$DIR/$1" -c "$DIR/$1/nginx.conf" &
  PIDS+=($!)
}

start_backend() {
  BACKEND_PORT="$(free_port)"
  nginx_conf backend "    server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 \"ok\\n\"; } }"
  start_nginx backend
  wait_port "$BACKEND_PORT"
}

# start_nginx_tls ALG: nginx terminating TLS with ALG's pair on NGINX_PORT.
start_nginx_tls() {
  local alg=$1
  NGINX_PORT="$(free_port)"
  nginx_conf "nginx-$alg" "
    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $DIR/$alg.crt;
        ssl_certificate_key $DIR/$alg.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
  start_nginx "nginx-$alg"
  wait_port "$NGINX_PORT"
}

# start_switchyard ALG: switchyard with ALG's pair as a Secret beside the
# route, TLS on SWITCHYARD_PORT.
start_switchyard() {
  local alg=$1 plain
  SWITCHYARD_PORT="$(free_port)"
  plain="$(free_port)"
  mkdir -p "$DIR/sy-$alg"
  {
    printf 'apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n'
    printf 'metadata: {name: bench, namespace: default}\n'
    printf 'spec:\n  hosts: ["%s"]\n  tls: {secretName: bench-cert, httpsRedirect: false}\n' "$HOST"
    printf '  rules:\n  - backends: [{address: "127.0.0.1:%s"}]\n---\n' "$BACKEND_PORT"
    printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: bench-cert, namespace: default}\n'
    printf 'type: kubernetes.io/tls\nstringData:\n  tls.crt: |\n'
    sed 's/^/    /' "$DIR/$alg.crt"
    printf '  tls.key: |\n'
    sed 's/^/    /' "$DIR/$alg.key"
  } >"$DIR/sy-$alg/routes.yaml"
  RUST_LOG=warn "$BIN" run --routes "$DIR/sy-$alg/routes.yaml" \
    --listen "127.0.0.1:$plain" --tls-listen "127.0.0.1:$SWITCHYARD_PORT" \
    --default-certificate default/bench-cert --admin 127.0.0.1:0 &
  PIDS+=($!)
  wait_port "$SWITCHYARD_PORT"
}

# check PORT: one HTTPS request verified against the pair's certificate.
check() {
  local alg=$1 port=$2
  curl -sS --max-time 5 --cacert "$DIR/$alg.crt" "https://$HOST:$port/" | grep -q ok || {
    log "https://$HOST:$port/ did not answer ok with the $alg certificate"
    return 1
  }
}

# rate PORT CONNECTIONS [WRK ARGS...]: wrk's Requests/sec, plus its errors.
rate() {
  local port=$1 conns=$2
  shift 2
  local out rps errors
  out="$(timeout 60 wrk -t"$THREADS" -c"$conns" -d"$DURATION" "$@" "https://$HOST:$port/" 2>&1)"
  rps="$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")"
  errors="$(awk '/Socket errors|Non-2xx/ {sub(/^ +/, ""); printf "%s; ", $0}' <<<"$out")"
  [[ -n "$errors" ]] && log "wrk on $port: $errors"
  printf '%s' "${rps:-0}"
}

# full_handshakes PORT: handshakes/s of THREADS `openssl s_time -new`
# processes in parallel (each: connect, full handshake, close, repeat).
full_handshakes() {
  local port=$1 secs=${DURATION%s} i start end
  start="$(date +%s.%N)"
  for ((i = 0; i < THREADS; i++)); do
    timeout 60 openssl s_time -connect "127.0.0.1:$port" -new -time "$secs" \
      >"$DIR/s_time.$i" 2>&1 &
  done
  wait_children_of_s_time
  end="$(date +%s.%N)"
  # "N connections in T real seconds": N summed over the processes, over
  # the wall time they all ran (s_time rounds T to whole seconds).
  cat "$DIR"/s_time.* | awk -v t="$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
    '/connections in .* real seconds/ { n += $1 } END { printf "%d", n / t }'
  rm -f "$DIR"/s_time.*
}

# wait_children_of_s_time: waits for the s_time processes (not the proxies).
wait_children_of_s_time() {
  local pid
  for pid in $(jobs -p); do
    if ! printf '%s\n' "${PIDS[@]}" | grep -qx "$pid"; then
      wait "$pid" || true
    fi
  done
}

# stop_last: stops the last process started.
stop_last() {
  local pid=${PIDS[-1]}
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset 'PIDS[-1]'
}

ROWS=()
bench() {
  local alg=$1 proxy=$2 port=$3 keepalive reconnects full
  check "$alg" "$port"
  log "$proxy, $alg: keep-alive ($DURATION, -c$CONNECTIONS)"
  keepalive="$(rate "$port" "$CONNECTIONS")"
  log "$proxy, $alg: new connections ($DURATION, -c$HS_CONNECTIONS, Connection: close)"
  reconnects="$(rate "$port" "$HS_CONNECTIONS" -H 'Connection: close')"
  log "$proxy, $alg: full handshakes ($DURATION, $THREADS x openssl s_time -new)"
  full="$(full_handshakes "$port")"
  ROWS+=("| $alg | $proxy | $keepalive | $reconnects | $full |")
}

start_backend
for alg in ecdsa rsa; do
  make_cert "$alg"
  if [[ "$ONLY" != switchyard ]]; then
    start_nginx_tls "$alg"
    bench "$alg" nginx "$NGINX_PORT"
    stop_last
  fi
  if [[ "$ONLY" != nginx ]]; then
    start_switchyard "$alg"
    bench "$alg" switchyard "$SWITCHYARD_PORT"
    stop_last
  fi
done

echo
echo "wrk -t$THREADS -d$DURATION: keep-alive -c$CONNECTIONS; new connections -c$HS_CONNECTIONS with Connection: close (sessions resumed);"
echo "full handshakes: $THREADS x openssl s_time -new -time ${DURATION%s}; nginx workers: $WORKERS"
echo
echo "| certificate | proxy | keep-alive req/s | new connections req/s | full handshakes/s |"
echo "|---|---|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
