#!/bin/bash
# The main job, end to end on this machine: a registry on 127.0.0.1, a busybox image pushed to
# it, then rt pull → rt bundle → create → start → state → delete, and rt run --image.
# Usage: demo.sh [RT]     (as root; `make demo` builds rt and installs what this needs)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RT=${1:-$HERE/../target/$(rustc -vV | sed -n 's/^host: //p')/release/rt}
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }

WORK=$(mktemp -d /tmp/rt-demo.XXXXXX)
ROOT=$WORK/state
STORE=$WORK/store
ID=demo-$$
REG_PID=
cleanup() {
  "$RT" --root "$ROOT" delete --force "$ID" >/dev/null 2>&1 || true
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n$ %s\n' "$*"; "$@"; }

# A free port on loopback for the registry.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: 127.0.0.1:$PORT}
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && break
  sleep 0.1
done
echo "registry: docker-registry on 127.0.0.1:$PORT (pid $REG_PID)"

bash "$HERE/mkimage.sh" "$WORK/image" >/dev/null
step skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/image:latest" "docker://127.0.0.1:$PORT/demo/busybox:latest"

IMAGE=127.0.0.1:$PORT/demo/busybox:latest
step "$RT" pull --store "$STORE" "$IMAGE"
step "$RT" images --store "$STORE"
step "$RT" bundle --store "$STORE" "$IMAGE" "$WORK/bundle" -- sh -c 'echo "hello from a container pulled by rt: $(hostname), pid $$"'

printf '\n$ %s\n' "$RT --root $ROOT create --bundle $WORK/bundle $ID > $WORK/out"
"$RT" --root "$ROOT" create --bundle "$WORK/bundle" "$ID" >"$WORK/out"
step "$RT" --root "$ROOT" state "$ID"
step "$RT" --root "$ROOT" start "$ID"
for _ in $(seq 100); do
  "$RT" --root "$ROOT" state "$ID" | grep -q '"stopped"' && break
  sleep 0.05
done
step "$RT" --root "$ROOT" state "$ID"
printf '\ncontainer output:\n'
cat "$WORK/out"
step "$RT" --root "$ROOT" delete "$ID"

step "$RT" --root "$ROOT" run --store "$STORE" --image "$IMAGE" --rm -- sh -c 'echo "and again with rt run --image: $(cat /etc/hostname 2>/dev/null || hostname)"'
printf '\ndemo: ok\n'
