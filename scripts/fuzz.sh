#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each, one after another (go test can
# fuzz only one target per invocation):
#
#   bash scripts/fuzz.sh [FUZZTIME] [PATTERN]
#
# FUZZTIME is a go test -fuzztime value: a duration (default 10m) or a
# count of runs such as 1000x. PATTERN (an extended regexp) picks the
# targets to run by package or name. Each target's output goes to
# $GANTRY_TEST_OUTPUT/fuzz/<target>.log (tail -f it during long runs); the
# last progress line is printed when it passes, the whole log when it fails.
# A failing input is written by go test to the package's
# testdata/fuzz/<target>/: keep it there as a regression case once fixed.
set -uo pipefail
cd "$(dirname "$0")/.."

fuzztime=${1:-10m}
pattern=${2:-}
GO=${GO:-go}
logs=${GANTRY_TEST_OUTPUT:-$PWD/test-output}/fuzz
mkdir -p "$logs"

# Package and target, one pair a line.
targets="
./cli/ FuzzParseTaskList
./cli/ FuzzParseCPU
./cli/ FuzzParseBytes
./cli/ FuzzParseRetention
./raftcluster/ FuzzParseToken
./store/ FuzzScheduleCron
./store/ FuzzApplyEntry
./node/api/ FuzzDecodeJobSpec
./node/api/ FuzzAuthenticate
./node/registry/ FuzzParseRoute
./node/registry/ FuzzParseDigest
./node/registry/ FuzzParseContentRange
./node/registry/ FuzzParseManifest
./node/registry/ FuzzParseReference
./node/registry/ FuzzRegistryAuth
./data/ FuzzUnpackTar
./data/ FuzzParseConfig
"

# Every target in the tree must be listed, so none is silently skipped.
missing=0
while IFS=: read -r file fn; do
	pair="./$(dirname "${file#./}")/ ${fn#func }"
	if ! grep -qxF "$pair" <<<"$targets"; then
		echo "scripts/fuzz.sh: $pair is not in the list of targets" >&2
		missing=1
	fi
done < <(grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' .)
(( missing == 0 )) || exit 1

# seconds prints a duration such as 90s, 10m or 1h30m in seconds; it fails
# for anything else (a count of runs).
seconds() {
	[[ $1 =~ ^([0-9]+h)?([0-9]+m)?([0-9]+s)?$ && -n $1 ]] || return 1
	local h=${BASH_REMATCH[1]%h} m=${BASH_REMATCH[2]%m} s=${BASH_REMATCH[3]%s}
	echo $(( ${h:-0} * 3600 + ${m:-0} * 60 + ${s:-0} ))
}

# A hang (in the seed corpus, say) must not stall the run: allow building
# and the baseline ten minutes beyond the fuzzing time.
timeout=0
if secs=$(seconds "$fuzztime"); then
	timeout=$(( secs + 600 ))s
fi

# spurious_deadline reports whether a failed run's only complaint is the
# bare "context deadline exceeded" that Go's fuzz coordinator can report
# when -fuzztime runs out on a busy machine (golang/go#75804, fixed in Go
# 1.27): no input failed, none was written, nothing panicked or hung.
spurious_deadline() {
	grep -q '^    context deadline exceeded$' "$1" &&
		! grep -qE 'Failing input written|failure while testing seed corpus|panic:|hung or terminated|fuzz_test\.go:[0-9]+:' "$1"
}

failed=()
start=$SECONDS
while read -r pkg name; do
	[[ -z $pkg ]] && continue
	[[ -n $pattern && ! "$pkg $name" =~ $pattern ]] && continue
	log=$logs/$name.log
	t0=$SECONDS
	$GO test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -timeout "$timeout" "$pkg" >"$log" 2>&1
	rc=$?
	last=$(grep '^fuzz: elapsed' "$log" | tail -n 1)
	if (( rc == 0 )); then
		echo "ok   $name ($pkg) in $(( SECONDS - t0 ))s: ${last#fuzz: }"
	elif spurious_deadline "$log"; then
		echo "ok   $name ($pkg) in $(( SECONDS - t0 ))s: ${last#fuzz: } (go reported a bare 'context deadline exceeded' as the time ran out, golang/go#75804; no failing input)"
	else
		echo "FAIL $name ($pkg) in $(( SECONDS - t0 ))s:"
		grep -v '^fuzz: elapsed' "$log"
		failed+=("$name")
	fi
done <<<"$targets"

echo "fuzzed for $(( SECONDS - start ))s"
if (( ${#failed[@]} > 0 )); then
	echo "failing fuzz targets: ${failed[*]} (logs in $logs)"
	exit 1
fi
