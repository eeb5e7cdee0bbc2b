#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite (all four workflows)
# against Gantry's registry and fails on any failed case.
#
#   scripts/conformance.sh                 # starts a throw-away `gantry server`
#   OCI_ROOT_URL=http://127.0.0.1:7070 OCI_USERNAME=u OCI_PASSWORD=p scripts/conformance.sh
#                                          # tests a running registry
#
# The default run tests the product itself: a static gantry binary serving
# /v2/ on a free loopback port, with a temporary data dir (it needs the
# Docker Engine, as every gantry server does), and a user created through the
# API with the admin token from DATA/admin-token. The suite is built from the
# module cache (go mod download), never vendored.
set -euo pipefail

CONFORMANCE_MOD=github.com/opencontainers/distribution-spec/conformance
CONFORMANCE_VER=v0.0.0-20260831232431-97274622c111

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
# shellcheck source=scripts/gantry-server.sh
source "$root/scripts/gantry-server.sh"
cleanup() {
	stop_gantry
	rm -rf "$work"
}
trap cleanup EXIT

cd "$root"
moddir=$(go mod download -json "$CONFORMANCE_MOD@$CONFORMANCE_VER" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "$moddir" ]] || { echo "conformance: could not download $CONFORMANCE_MOD@$CONFORMANCE_VER" >&2; exit 2; }
# Build in a writable copy: the module cache is read-only and the suite's
# module has its own go.mod and go.sum.
cp -r "$moddir" "$work/src"
chmod -R u+w "$work/src"
(cd "$work/src" && GOFLAGS=-mod=mod go test -c -o "$work/conformance.test" .) >"$work/build.log" 2>&1 || {
	cat "$work/build.log" >&2; echo "conformance: building the suite failed" >&2; exit 2; }

if [[ -z "${OCI_ROOT_URL:-}" ]]; then
	user=conformer
	pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
	start_gantry "$work" || { echo "conformance: gantry server did not start" >&2; exit 2; }
	gantry_user "$user" "$pass" || { echo "conformance: could not create user $user" >&2; exit 2; }
	gantry_user other "$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" || exit 2
	echo "conformance: testing gantry server at $GANTRY_URL (pid $GANTRY_PID)"
	export OCI_ROOT_URL="$GANTRY_URL" OCI_USERNAME="$user" OCI_PASSWORD="$pass"
fi
: "${OCI_USERNAME:?set OCI_USERNAME}" "${OCI_PASSWORD:?set OCI_PASSWORD}"
export OCI_NAMESPACE="${OCI_NAMESPACE:-$OCI_USERNAME/conformance}"
export OCI_CROSSMOUNT_NAMESPACE="${OCI_CROSSMOUNT_NAMESPACE:-$OCI_USERNAME/other}"
export OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1
# Gantry supports these optional APIs too, so test them.
export OCI_API_BLOBS_UPLOAD_CANCEL="${OCI_API_BLOBS_UPLOAD_CANCEL:-true}" OCI_API_MANIFESTS_TAG_PARAM="${OCI_API_MANIFESTS_TAG_PARAM:-true}"
export OCI_LOG="${OCI_LOG:-error}"
results="${CONFORMANCE_RESULTS:-$root/results}"
mkdir -p "$results"
export OCI_RESULTS_DIR="$results"

set +e
(cd "$work" && ./conformance.test -test.v >"$work/run.log" 2>&1)
rc=$?
set -e
junit="$results/junit.xml"
if [[ ! -s "$junit" ]]; then
	tail -50 "$work/run.log" >&2
	echo "conformance: no $junit (exit $rc)" >&2
	exit 2
fi
tests=$(grep -o '<testsuite [^>]*' "$junit" | head -1 | grep -o 'tests="[0-9]*"' | tr -dc 0-9)
failures=$(grep -c '<failure' "$junit" || true)
errors=$(grep -c '<error' "$junit" || true)
skipped=$(grep -c '<skipped' "$junit" || true)
echo "conformance: $tests cases, $failures failures, $errors errors, $skipped skipped (results in $results)"
if [[ "$failures" != 0 || "$errors" != 0 ]]; then
	grep -B1 -A3 '<failure' "$junit" | head -80 >&2
	exit 1
fi
