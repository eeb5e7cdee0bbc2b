#!/usr/bin/env bash
# make bench: every benchmark, each against a baseline measured in the same
# run. Figures are appended to $GANTRY_BENCH_OUT (default bench-results.txt)
# and printed at the end. QUICK=1 runs the registry client benchmarks
# (bench/clients_test.go) with 2 runs a cell instead of 5.
set -euo pipefail
cd "$(dirname "$0")/.."
export GANTRY_BENCH_OUT=${GANTRY_BENCH_OUT:-$PWD/bench-results.txt}
: > "$GANTRY_BENCH_OUT"
echo "== jobs: overhead, throughput, submission, idle memory"
go test -tags bench -count=1 -timeout 60m -run 'TestBench' -v ./bench/ | grep -E '^(=== RUN|--- |\s+\w+_test.go:|ok|FAIL)' || true
echo "== registry vs CNCF Distribution"
bash scripts/bench-registry.sh | tee -a "$GANTRY_BENCH_OUT"
echo "== console hub"
bash scripts/bench-ui.sh | tee -a "$GANTRY_BENCH_OUT"
echo
echo "== summary ($GANTRY_BENCH_OUT)"
cat "$GANTRY_BENCH_OUT"
