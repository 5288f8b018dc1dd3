#!/bin/bash
# The job vm/test-v2.sh runs in the guest: the integration tests of /share/scenarios against
# each runtime (the rt of /share/bin/rt, the guest's own runc) with each cgroup driver, one
# test process per round. Raw libtest output goes to /share/results/RUNTIME-DRIVER.log and the
# guest-wide leftover check after each round to RUNTIME-DRIVER.left; the host makes the table.
set -euo pipefail
S=/share
# what the host asked for: RT_VM_RUNTIMES, RT_VM_DRIVERS, RT_VM_TESTS (see vm/test-v2.sh)
set -a; [ -f $S/env ] && . $S/env; set +a
mkdir -p $S/results
rm -f $S/results/*
# Binaries on the guest's own disk, not run off the 9p share.
install -m 755 $S/bin/rt /usr/local/bin/rt
install -m 755 $S/bin/integration /usr/local/bin/rt-integration
# The tests read bundles/ from the share; their busybox rootfs, made on the host, goes where
# they look for it (mkrootfs.sh finds it complete), on the guest's disk.
export RT_TEST_REPO=$S/repo CARGO_TARGET_DIR=/var/tmp/rt-test RUST_BACKTRACE=0
# the callers' images, made on the host (peers::images)
export RT_TEST_IMAGES=$S/images
mkdir -p $CARGO_TARGET_DIR
tar -C $CARGO_TARGET_DIR -xf $S/rt-test-rootfs.tar
echo "guest: $(uname -r), $(systemctl --version | head -1), cgroup $(stat -fc %T /sys/fs/cgroup), up $(cut -d' ' -f1 /proc/uptime) s"

# Everything a round may have left in the guest, whatever the runtime: cgroups and units of
# the tests' names, processes other than this job's own in its cgroup, tests' temp dirs.
# The callers' (integration/peers.rs, cri.rs): their test cgroups and slices, the scopes
# each caller names its containers (and podman its conmons) by, their temp dirs.
leftovers() {
  find /sys/fs/cgroup -type d \( -name 'rt-it-*' -o -name 'rt-test-*' -o -name 'it-*' \
    -o -name 'rt-peers-*' -o -name 'rt_peers_*' -o -name 'kubepods*' \) 2>/dev/null
  systemctl list-units --all --plain --no-legend 'rt-test-*' 'runc-*' 'rt_peers_*' \
    'rt-peers-*' 'libpod-*' 'docker-*.scope' 'cri-containerd-*' 'kubepods*' 2>/dev/null
  ls -d /run/systemd/transient/rt-test-* /run/systemd/transient/rt_peers_* \
    /run/systemd/transient/libpod-* /run/systemd/transient/cri-containerd-* 2>/dev/null
  ls -d /tmp/rt-it-* /tmp/rt-root-* /tmp/rt-rl-* /tmp/rt-peers-* 2>/dev/null
  # the rootless tests' users, their systemd and runtime dirs
  getent passwd | grep '^rtrl' | cut -d: -f1 | sed 's/^/user /'
  ls -d /run/user/* /var/lib/systemd/linger/rtrl* 2>/dev/null
  local p cmd ppid
  for p in $(cat /sys/fs/cgroup/system.slice/rt-vm-job.service/cgroup.procs); do
    # this shell, the unit's sh -c above it, and this function's own command substitutions
    [ "$p" = $$ ] || [ "$p" = "$PPID" ] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null < /proc/$p/cmdline) && [ -n "$cmd" ] || continue  # gone
    ppid=$(cut -d' ' -f4 2>/dev/null < /proc/$p/stat) || continue
    [ "$ppid" = $$ ] || echo "process $p: $cmd"
  done
}

set +e  # from here on a failure is a result, not the end of the job
for runtime in ${RT_VM_RUNTIMES:-rt runc}; do
  bin=$(command -v "$runtime")
  for driver in ${RT_VM_DRIVERS:-cgroupfs systemd}; do
    tests=$(awk -v d="$driver" '!/^#/ && NF >= 3 && ("," $2 ",") ~ ("," d ",") {
      for (i = 3; i <= NF; i++) print $i }' $S/scenarios)
    if [ -n "${RT_VM_TESTS:-}" ]; then
      tests=$(for t in $tests; do [[ " $RT_VM_TESTS " != *" $t "* ]] || echo "$t"; done)
    fi
    round=$runtime-$driver
    [ -n "$tests" ] || continue  # (no names would mean every test)
    t0=$SECONDS
    echo "${EPOCHREALTIME/./} start" > $S/results/$round.log
    # one test process per round, one test at a time (the timing-sensitive ones stay calm),
    # with the output of passing tests too (that is where a test says "skip:"); libtest prints
    # a test's line when it ends, so stamping those lines as they come times each test
    RT_BIN=$bin RT_TEST_CGROUP_DRIVER=$driver timeout -s KILL 1500 \
      rt-integration --exact --test-threads=1 --show-output $tests 2>&1 |
      while IFS= read -r l; do
        case $l in
          "test "*" ... "*) echo "${EPOCHREALTIME/./} $l" ;;
          *) echo "$l" ;;
        esac
      done >> $S/results/$round.log
    echo "${PIPESTATUS[0]}" > $S/results/$round.rc
    sleep 1  # asynchronous cgroup removal by systemd
    leftovers > $S/results/$round.left
    printf 'guest: %-14s %4d s, %2d failed, %s leftovers\n' "$round" $((SECONDS - t0)) \
      "$(grep -c '^[0-9]* test .* FAILED$' $S/results/$round.log)" "$(wc -l < $S/results/$round.left)"
  done
done
exit 0
