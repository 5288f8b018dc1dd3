#!/bin/bash
# Make an OCI bundle at DIR from bundles/examples/NAME.json and a busybox rootfs.
# Usage: mkbundle.sh NAME DIR        (NAME: hello, sleep or tty)
set -euo pipefail
NAME=${1:?usage: mkbundle.sh NAME DIR}
DIR=${2:?usage: mkbundle.sh NAME DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$HERE/examples/$NAME.json
if [ ! -f "$SRC" ]; then
  echo "mkbundle.sh: no example named $NAME (have: $(cd "$HERE/examples" && ls *.json | sed 's/\.json$//' | tr '\n' ' '))" >&2
  exit 1
fi
mkdir -p "$DIR"
cp "$SRC" "$DIR/config.json"
"$HERE/mkrootfs.sh" "$DIR/rootfs"
