#!/usr/bin/env bash
# Benchmarks Gantry's registry (a real, throw-away `gantry server`) against
# CNCF Distribution v3.1.2 on loopback:
# push and pull of a 512 MiB random layer and of an image of 200 small
# layers, plus Go's sha256 over the same file, with the same client
# (node/registry/internal/benchclient) for both.
#
#   scripts/bench-registry.sh            # BENCH_SIZE_MB=512 BENCH_SMALL=200 BENCH_RUNS=5
set -euo pipefail

DIST_VERSION=v3.1.2
size_mb="${BENCH_SIZE_MB:-512}"
small="${BENCH_SMALL:-200}"
runs="${BENCH_RUNS:-5}"

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gantry-bench.XXXXXX")
pids=()
# shellcheck source=scripts/gantry-server.sh
source "$root/scripts/gantry-server.sh"
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	stop_gantry
	rm -rf "$work"
}
trap cleanup EXIT

wait_http() { # wait_http URL PID LOG
	for _ in $(seq 1 400); do curl -s -o /dev/null "$1" && return 0; kill -0 "$2" 2>/dev/null || { cat "$3" >&2; return 1; }; read -rt 0.05 <> <(:) || true; done
	cat "$3" >&2; return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cd "$root"
echo "building CNCF Distribution $DIST_VERSION, gantry and the bench client..." >&2
GOBIN="$work/bin" go install "github.com/distribution/distribution/v3/cmd/registry@$DIST_VERSION"
go build -o "$work/bin/benchclient" ./node/registry/internal/benchclient

head -c "$((size_mb << 20))" /dev/urandom >"$work/layer.bin"

dport=$(free_port)
cat >"$work/distribution.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/distribution-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$dport
YAML
"$work/bin/registry" serve "$work/distribution.yml" >"$work/distribution.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$dport/v2/" "${pids[-1]}" "$work/distribution.log"

pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
start_gantry "$work"
gantry_user bench "$pass"

"$work/bin/benchclient" -file "$work/layer.bin" -small "$small" -runs "$runs" -repo bench/img \
	-target "distribution=http://127.0.0.1:$dport" \
	-target "gantry=$GANTRY_URL,bench,$pass"
