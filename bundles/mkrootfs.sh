#!/bin/bash
# Fill DIR with a minimal busybox root filesystem (from Debian's busybox-static).
# Usage: mkrootfs.sh DIR
# Idempotent: a complete DIR whose busybox matches the host's is left untouched,
# so callers may run it on every test run. /etc/group is written last and serves
# as the "complete" marker: an interrupted run is simply redone.
set -euo pipefail
DIR=${1:?usage: mkrootfs.sh DIR}
BB=/bin/busybox
if [ ! -x "$BB" ] || ! "$BB" --list-full >/dev/null 2>&1; then
  echo "mkrootfs.sh: $BB missing: apt-get install busybox-static" >&2
  exit 1
fi
if cmp -s "$BB" "$DIR/bin/busybox" && [ -s "$DIR/etc/group" ]; then
  exit 0
fi
mkdir -p "$DIR"
cd "$DIR"
rm -f etc/group
mkdir -p bin sbin usr/bin usr/sbin etc root tmp proc sys dev
chmod 1777 tmp
chmod 0700 root
cp "$BB" bin/busybox.new && mv -f bin/busybox.new bin/busybox
# Absolute link targets resolve inside the container, relative ones would differ
# per directory depth; busybox picks the applet from argv[0] either way.
while read -r p; do
  [ "$p" = bin/busybox ] || ln -sfn /bin/busybox "$p"
done < <("$BB" --list-full)
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > etc/passwd
printf '%s\n' 'root:x:0:' 'tty:x:5:' 'nogroup:x:65534:' > etc/group.new
mv -f etc/group.new etc/group
