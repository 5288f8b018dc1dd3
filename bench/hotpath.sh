#!/bin/bash
# Regenerates bench/hot-functions.txt, the order build.rs gives the linker (see hotpath.py).
# Run it (as root) after changes to what create/start/exec/delete run; a stale list still links,
# it just packs less of the hot code together.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$HERE/..
HOST=$(rustc -vV | sed -n 's/^host: //p')
make -C "$REPO" --no-print-directory build >/dev/null
RT=$REPO/target/$HOST/release/rt
# build.rs has lld write the link map next to its other outputs.
MAP=$(ls -t "$REPO"/target/"$HOST"/release/build/rt-*/out/rt.map | head -1)
W=$(mktemp -d /tmp/rt-hotpath.XXXXXX)
trap 'rm -rf "$W"' EXIT
bash "$REPO/bundles/mkrootfs.sh" "$W/rootfs" >/dev/null
python3 "$HERE/hotpath.py" --rt "$RT" --map "$MAP" --rootfs "$W/rootfs" --out "$HERE/hot-functions.txt"
