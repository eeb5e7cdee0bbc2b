#!/usr/bin/env bash
# Installs Gantry on this machine: the binary in /usr/local/bin, the data
# directory, a systemd unit running `gantry server`. Idempotent: run it again
# to upgrade the binary; data and credentials are kept.
#
#   sudo ./install.sh                 # build from this checkout (needs Go) or use ./gantry
#   GANTRY_HTTP=:7070 GANTRY_DATA=/var/lib/gantry sudo -E ./install.sh
#   (GANTRY_UNIT=PATH writes the unit elsewhere and does not touch systemd: tests)
set -euo pipefail

PREFIX=${PREFIX:-/usr/local}
DATA=${GANTRY_DATA:-/var/lib/gantry}
HTTP=${GANTRY_HTTP:-:7070}
CLUSTER=${GANTRY_CLUSTER:-:7071}
UNIT=${GANTRY_UNIT:-/etc/systemd/system/gantry.service}
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo ./install.sh)"
command -v docker >/dev/null 2>&1 || die "Docker is not installed: install Docker Engine first (Gantry runs every task as a container)"
docker info >/dev/null 2>&1 || die "Docker is installed but its engine is not reachable: start it (systemctl start docker)"

# 1. The binary: a prebuilt ./gantry next to this script, or build one.
if [ -x "$here/gantry" ] && file "$here/gantry" 2>/dev/null | grep -q "statically linked"; then
  src="$here/gantry"
elif command -v go >/dev/null 2>&1 && [ -f "$here/go.mod" ]; then
  echo "building gantry from $here ..."
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$here" && CGO_ENABLED=0 go build -o "$tmp/gantry" .)
  src="$tmp/gantry"
else
  die "no static ./gantry binary next to install.sh and no Go toolchain to build one"
fi
install -m 0755 "$src" "$PREFIX/bin/gantry.new"
mv -f "$PREFIX/bin/gantry.new" "$PREFIX/bin/gantry"
echo "installed $PREFIX/bin/gantry"

# 2. The data directory.
install -d -m 0700 "$DATA"

# 3. The admin password: kept in the data dir so a re-run prints the same one.
if [ ! -f "$DATA/admin-password" ] && [ ! -f "$DATA/admin-token" ]; then
  head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DATA/admin-password"
  chmod 600 "$DATA/admin-password"
fi

# 4. The systemd unit.
cat > "$UNIT.new" <<UNIT
[Unit]
Description=Gantry batch-compute node
After=network-online.target docker.service
Requires=docker.service

[Service]
Environment=GANTRY_DATA=$DATA
Environment=GANTRY_HTTP=$HTTP
Environment=GANTRY_CLUSTER=$CLUSTER
EnvironmentFile=-/etc/default/gantry
ExecStart=/bin/sh -c 'if [ -f $DATA/admin-password ]; then export GANTRY_ADMIN_PASSWORD=\$(cat $DATA/admin-password); fi; exec $PREFIX/bin/gantry server'
Restart=on-failure
RestartSec=2
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
UNIT
if ! cmp -s "$UNIT.new" "$UNIT" 2>/dev/null; then mv -f "$UNIT.new" "$UNIT"; else rm -f "$UNIT.new"; fi

port=${HTTP##*:}
host=$(hostname -I 2>/dev/null | awk '{print $1}')
host=${host:-127.0.0.1}
if [ -d /run/systemd/system ] && [ -z "${GANTRY_UNIT:-}" ]; then
  systemctl daemon-reload
  systemctl enable gantry.service >/dev/null 2>&1
  systemctl restart gantry.service
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 || die "gantry did not become healthy: journalctl -u gantry"
  started="started (systemctl status gantry)"
else
  started="NOT started: systemd is not running here. Start it with: GANTRY_DATA=$DATA gantry server"
fi

echo
echo "Gantry is installed and $started."
echo "  Console:        http://$host:$port"
echo "  Admin user:     admin"
if [ -f "$DATA/admin-password" ]; then
  echo "  Admin password: $(cat "$DATA/admin-password")"
fi
echo "  Admin token:    $DATA/admin-token (readable by root)"
if [ -d /run/systemd/system ] && [ -z "${GANTRY_UNIT:-}" ] && [ -f "$DATA/admin-token" ]; then
  join=$(GANTRY_TOKEN=$(cat "$DATA/admin-token") GANTRY_ADDR="http://127.0.0.1:$port" "$PREFIX/bin/gantry" cluster join-command 2>/dev/null || true)
fi
if [ -n "${join:-}" ]; then
  echo "  Join command:   $join"
else
  echo "  Join command:   run 'GANTRY_TOKEN=\$(sudo cat $DATA/admin-token) GANTRY_ADDR=http://$host:$port gantry cluster join-command' once it runs"
fi
