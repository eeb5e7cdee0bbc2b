#!/bin/sh
# bench-ui.sh: the console's benchmark. 200 WebSocket clients follow a job of
# 2,000 tasks; prints the node's CPU time and the store-to-client delay
# (p50/p99). Override with UI_BENCH_CLIENTS, UI_BENCH_TASKS, UI_BENCH_RATE.
set -eu
cd "$(dirname "$0")/.."
exec go test -run '^$' -bench '^BenchmarkConsoleHub$' -benchtime 1x -count "${UI_BENCH_COUNT:-1}" ./ui/
