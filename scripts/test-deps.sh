#!/usr/bin/env bash
# Checks and installs what `make test` needs. Under CI=true a missing part
# that cannot be installed is a hard failure, never a skip.
set -euo pipefail

fail() { echo "make test: $*" >&2; exit 1; }
ci() { [ "${CI:-}" = "true" ]; }

command -v go >/dev/null || fail "Go is not installed"

if ! command -v docker >/dev/null; then
  if ci; then fail "the docker CLI is missing: install Docker Engine"; fi
  echo "warning: docker CLI missing; Docker tests will skip" >&2
elif ! docker info >/dev/null 2>&1; then
  if ci; then fail "the Docker Engine is not reachable (docker info failed): start dockerd"; fi
  echo "warning: Docker Engine not reachable; Docker tests will skip" >&2
fi

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    if ci; then fail "need root to apt-get install $*"; fi
    echo "warning: cannot install $* (not root)" >&2; return 0
  fi
  if [ ! -f /tmp/.gantry-apt-updated ]; then
    apt-get update -qq >/dev/null && touch /tmp/.gantry-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v iptables >/dev/null; then
  echo "installing iptables for the cluster partition test..."
  apt_install iptables || { ci && fail "could not install iptables"; }
fi

find_chromium() { command -v chromium || command -v chromium-browser || command -v google-chrome || true; }
if [ -z "$(find_chromium)" ]; then
  echo "installing chromium for the console's browser tests..."
  apt_install chromium || { ci && fail "could not install chromium"; }
fi
if [ -z "$(find_chromium)" ] && ci; then fail "chromium is missing"; fi
# The console shows the service terms' statements in Chinese; without a CJK
# font the screenshots draw them as empty boxes.
if [ ! -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]; then
  echo "installing a CJK font for the console's screenshots..."
  apt_install fonts-wqy-zenhei || { ci && fail "could not install fonts-wqy-zenhei"; }
fi

# The Python client's tests (e2e/python_test.go) install it offline into a
# venv with Debian's python3, whose setuptools and wheel build it.
if ! /usr/bin/python3 -c 'import venv, ensurepip, setuptools, wheel' >/dev/null 2>&1; then
  echo "installing python3 with venv, setuptools and wheel for the Python client's tests..."
  apt_install python3 python3-venv python3-setuptools python3-wheel python3-pip || { ci && fail "could not install python3"; }
fi
if ci && ! /usr/bin/python3 -c 'import venv, ensurepip, setuptools, wheel' >/dev/null 2>&1; then
  fail "python3 with venv, setuptools and wheel is missing"
fi

# The Prometheus rules test (e2e/prometheus_test.go) runs a real Prometheus.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  echo "installing prometheus for the alerting rules test..."
  apt_install prometheus || { ci && fail "could not install prometheus"; }
fi
if ci && { ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; }; then
  fail "prometheus (and promtool) is missing"
fi
exit 0
