#!/bin/bash
# Benchmarks: rt against runc and crun on one busybox bundle, interleaved, as ratios.
# Usage: [RT=path/to/rt] [RT_BASE=path/to/other/rt] bench/run.sh [ROUNDS]
#   (as root; `make bench` builds rt first; RT_BASE, e.g. the build before a change, is timed in
#   the same rounds and shows up as the column rt/rt-base)
# Not a test: nothing here passes or fails on speed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$HERE/..
ROUNDS=${1:-30}
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }

need=()
for p in runc crun hyperfine python3 busybox-static time; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ -z "${RT:-}" ]; then  # `make bench` builds and passes it; alone, build the same static rt
  make -C "$REPO" --no-print-directory build >/dev/null
  RT=$REPO/target/$(rustc -vV | sed -n 's/^host: //p')/release/rt
fi

WORK=$(mktemp -d /tmp/rt-bench.XXXXXX)
HUGETLB_MOVED=
restore_hugetlb() {
  [ -n "$HUGETLB_MOVED" ] || return 0
  # Give hugetlb back to cgroup2. A v1 hierarchy outlives its unmount while it has child
  # cgroups, so those (all made during the run) go first; the kernel may still need a moment,
  # and sometimes a second mount/unmount, before cgroup2 lists the controller again.
  for _ in $(seq 10); do
    if mountpoint -q /sys/fs/cgroup/hugetlb; then
      find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
      umount /sys/fs/cgroup/hugetlb 2>/dev/null || true
    fi
    sleep 0.5
    if grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers; then
      rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true
      return 0
    fi
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null || true
  done
  echo "bench: warning: hugetlb did not return to cgroup2" >&2
}
cleanup() {
  for r in rt rt-base runc crun; do
    for id in $("$(command -v $r || echo "$RT")" --root "$WORK/root-$r" list -q 2>/dev/null || true); do
      "$(command -v $r || echo "$RT")" --root "$WORK/root-$r" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  # An older rt given as RT_BASE still makes the shared /rt parent its default path used.
  if [ -n "${RT_BASE:-}" ]; then rmdir /sys/fs/cgroup/rt /sys/fs/cgroup/*/rt 2>/dev/null || true; fi
  restore_hugetlb
  rm -rf "$WORK"
}
trap cleanup EXIT

# crun 1.8 refuses a hybrid host whose cgroup2 holds a controller: lend it hugetlb on v1.
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers; then
  mkdir -p /sys/fs/cgroup/hugetlb
  mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb && HUGETLB_MOVED=1
fi

bash "$REPO/bundles/mkrootfs.sh" "$WORK/bundle/rootfs" >/dev/null
python3 "$HERE/bench.py" --rt "$RT" ${RT_BASE:+--rt-base "$RT_BASE"} --work "$WORK" --rounds "$ROUNDS"
