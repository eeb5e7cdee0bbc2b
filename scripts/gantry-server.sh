# Sourced by scripts that need a real, throw-away `gantry server`:
#
#   start_gantry WORKDIR   # builds gantry (static), starts it on free loopback
#                          # ports with data in WORKDIR/gantry-data; sets
#                          # GANTRY_URL, GANTRY_HOSTPORT, GANTRY_ADMIN_TOKEN,
#                          # GANTRY_PID
#   gantry_user NAME PASS  # creates an account through the API
#   stop_gantry            # SIGTERM, then SIGKILL after 20 s
#
# The caller removes WORKDIR (and calls stop_gantry) in its EXIT trap.

GANTRY_PID=""

_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_gantry() {
	local work=$1 root
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	(cd "$root" && CGO_ENABLED=0 go build -o "$work/gantry" .)
	local hport cport
	hport=$(_free_port)
	cport=$(_free_port)
	GANTRY_HOSTPORT="127.0.0.1:$hport"
	GANTRY_URL="http://$GANTRY_HOSTPORT"
	GANTRY_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=') \
		"$work/gantry" server --data "$work/gantry-data" --http "$GANTRY_HOSTPORT" \
		--cluster "127.0.0.1:$cport" --name "script-$hport" >"$work/gantry.log" 2>&1 &
	GANTRY_PID=$!
	for _ in $(seq 1 1200); do
		curl -fs -o /dev/null "$GANTRY_URL/healthz" && [[ -s "$work/gantry-data/admin-token" ]] && break
		kill -0 "$GANTRY_PID" 2>/dev/null || { cat "$work/gantry.log" >&2; echo "gantry server exited during start-up" >&2; return 1; }
		read -rt 0.05 <> <(:) || true
	done
	curl -fs -o /dev/null "$GANTRY_URL/healthz" || { tail -50 "$work/gantry.log" >&2; echo "gantry server did not become healthy" >&2; return 1; }
	GANTRY_ADMIN_TOKEN=$(tr -d '[:space:]' <"$work/gantry-data/admin-token")
	export GANTRY_URL GANTRY_HOSTPORT GANTRY_ADMIN_TOKEN GANTRY_PID
}

gantry_user() {
	curl -fsS -o /dev/null -X POST "$GANTRY_URL/api/v1/users" -H "Authorization: Bearer $GANTRY_ADMIN_TOKEN" \
		-H 'Content-Type: application/json' -d "{\"username\":\"$1\",\"password\":\"$2\"}"
}

stop_gantry() {
	[[ -n "$GANTRY_PID" ]] || return 0
	kill "$GANTRY_PID" 2>/dev/null || true
	for _ in $(seq 1 400); do kill -0 "$GANTRY_PID" 2>/dev/null || break; read -rt 0.05 <> <(:) || true; done
	kill -9 "$GANTRY_PID" 2>/dev/null || true
	wait "$GANTRY_PID" 2>/dev/null || true
	GANTRY_PID=""
	# Untag what Docker pulled from this server's registry (the runner
	# pre-pulls the toolbox): its names start with this host:port.
	docker images --digests --format '{{.Repository}} {{.Tag}} {{.Digest}}' 2>/dev/null |
		awk -v p="$GANTRY_HOSTPORT/" 'index($1, p) == 1 { if ($2 != "<none>") print $1 ":" $2; else if ($3 != "<none>") print $1 "@" $3 }' |
		xargs -r docker rmi >/dev/null 2>&1 || true
}
