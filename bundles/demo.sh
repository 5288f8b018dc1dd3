#!/bin/bash
# Walk one container through its life with RT (default: the release rt):
# create → start → state → delete, printing each step and what the container printed.
# Usage: demo.sh [RUNTIME]     (as root; `make demo` builds rt first)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RT=${1:-$HERE/../target/release/rt}
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }

WORK=$(mktemp -d /tmp/rt-demo.XXXXXX)
ID=demo-$$
ROOT=$WORK/state
BUNDLE=$WORK/bundle
cleanup() {
  "$RT" --root "$ROOT" delete --force "$ID" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n$ %s\n' "$*"; "$@"; }
# runc prints state without a final newline
showstate() { step "$RT" --root "$ROOT" state "$ID"; echo; }
state() { "$RT" --root "$ROOT" state "$ID"; }

"$HERE/mkbundle.sh" hello "$BUNDLE"
echo "bundle: $BUNDLE (busybox rootfs, runs: $(jq -c .process.args "$BUNDLE/config.json"))"
echo "runtime: $("$RT" --version | head -1)"

# The container inherits create's stdout: send it to a file to show it after it ran.
printf '\n$ %s\n' "$RT --root $ROOT create --bundle $BUNDLE $ID > $WORK/out"
"$RT" --root "$ROOT" create --bundle "$BUNDLE" "$ID" >"$WORK/out"
showstate
step "$RT" --root "$ROOT" start "$ID"
for _ in $(seq 100); do
  state | jq -e '.status == "stopped"' >/dev/null && break
  sleep 0.05
done
showstate
printf '\ncontainer output:\n'
cat "$WORK/out"
step "$RT" --root "$ROOT" delete "$ID"
if "$RT" --root "$ROOT" state "$ID" >/dev/null 2>&1; then
  echo "demo: container still there after delete" >&2
  exit 1
fi
printf '\ndemo: ok\n'
