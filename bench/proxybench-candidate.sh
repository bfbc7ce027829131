#!/usr/bin/env bash
# proxybench candidate wrapper: writes a LoadBalancerRoute for proxybench's
# backends (any host, round robin) and runs switchyard on its port.
#   ../shared/bench/proxybench --pin --rotate \
#     --candidate "bench/proxybench-candidate.sh {port} {backends}"
set -euo pipefail
port=$1 backends=$2
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SWITCHYARD_BIN:-$here/target/release/switchyard}
dir=$(mktemp -d)
{
  echo "apiVersion: switchyard.dev/v1alpha1"
  echo "kind: LoadBalancerRoute"
  echo "metadata: {name: bench}"
  echo "spec:"
  echo "  rules:"
  echo "  - backends:"
  IFS=, read -ra addrs <<<"$backends"
  for a in "${addrs[@]}"; do echo "    - address: \"$a\""; done
} >"$dir/routes.yaml"
export RUST_LOG=${RUST_LOG:-warn}
exec "$bin" run --routes "$dir/routes.yaml" --listen "127.0.0.1:$port" --admin 127.0.0.1:0
