#!/bin/bash
# Build a one-layer busybox OCI image layout at DIR (tag "latest") with umoci:
# busybox-static with every applet linked, /etc/passwd and /etc/group, cmd "sh".
# Usage: mkimage.sh DIR
set -euo pipefail
IMG=${1:?usage: mkimage.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
rm -rf "$IMG"
umoci init --layout "$IMG"
umoci new --image "$IMG:latest"
umoci unpack --image "$IMG:latest" "$W/b" >/dev/null
# The same rootfs the runtime tests use.
rm -rf "$W/b/rootfs"
bash "$HERE/mkrootfs.sh" "$W/b/rootfs"
umoci repack --image "$IMG:latest" "$W/b"
umoci config --image "$IMG:latest" --config.cmd sh --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  --config.workingdir / --architecture amd64 --os linux
