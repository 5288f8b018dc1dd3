#!/bin/bash
# Boot the guest (vm/build-guest.sh) once on a share: the guest's rt-vm-job.service runs
# SHARE/job with bash as root, its output goes to SHARE/job.log (shown here as it grows) and its
# exit status to SHARE/job.rc, then the guest powers off. The disk is a snapshot: every boot
# starts from the same pristine guest and nothing of it is kept.
#   usage: vm/boot.sh SHARE      (env: RT_VM_TIMEOUT seconds, default 600; RT_VM_SMP, default 2
#                                 where the host has 2 CPUs;
#                                 RT_VM_GUEST, default target/vm/guest; RT_VM_QUIET=1: no live log)
# Exit status: the job's; 124 when the guest did not finish in time (qemu is killed), 125 when
# it stopped without finishing (a panic, say).
set -euo pipefail
SHARE=$(realpath "${1:?usage: vm/boot.sh SHARE}")
GUEST=${RT_VM_GUEST:-$(dirname "$0")/../target/vm/guest}
TIMEOUT=${RT_VM_TIMEOUT:-600}
# Two emulated CPUs run on two host threads: runc (Go) and the tests' helpers overlap, and a
# round takes about half the time of -smp 1 (measured: README).
SMP=${RT_VM_SMP:-$(( $(nproc) >= 2 ? 2 : 1 ))}
[ -f "$SHARE/job" ] || { echo "boot.sh: no $SHARE/job" >&2; exit 2; }
for f in disk.ext4 vmlinuz initrd.img; do
  [ -f "$GUEST/$f" ] || { echo "boot.sh: no $GUEST/$f: run vm/build-guest.sh" >&2; exit 2; }
done
rm -f "$SHARE/job.log" "$SHARE/job.rc" "$SHARE/serial.log"
: > "$SHARE/job.log"

# KVM does not boot the stock kernel on these (nested) hosts: software emulation, a plain
# CPU model. No network: the job gets everything through the share.
qemu=(qemu-system-x86_64 -accel tcg -cpu qemu64 -smp "$SMP" -m 1536
  -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initrd.img"
  -append "console=ttyS0 root=/dev/vda rw panic=1 quiet mitigations=off systemd.unified_cgroup_hierarchy=1"
  -drive "file=$GUEST/disk.ext4,format=raw,if=virtio,snapshot=on"
  -virtfs "local,path=$SHARE,mount_tag=share,security_model=none"
  -serial "file:$SHARE/serial.log" -nic none -display none -no-reboot)
# qemu has no children and snapshot=on's overlay is an unlinked temp file: killing it leaves
# nothing behind. (Not timeout(1): its SIGKILL goes to its own process group, itself included,
# which leaves qemu a zombie nobody reaps on a host whose PID 1 does not.)
"${qemu[@]}" &
pid=$!
trap 'kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
if [ "${RT_VM_QUIET:-}" != 1 ]; then
  tail -n +1 -f --pid=$pid "$SHARE/job.log" &
fi
deadline=$((SECONDS + TIMEOUT))
timed_out=
running() {  # and not yet a zombie (comm "qemu-system-x86" has no space: field 3 is the state)
  local st
  st=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) && [ "$st" != Z ]
}
while running; do
  if [ $SECONDS -ge $deadline ]; then
    kill -KILL $pid 2>/dev/null || true
    timed_out=1
    break
  fi
  sleep 0.5
done
wait $pid 2>/dev/null || true
wait  # the tail
trap - EXIT INT TERM
if [ ! -f "$SHARE/job.rc" ]; then
  if [ -n "$timed_out" ]; then
    echo "boot.sh: guest timed out after ${TIMEOUT}s (qemu killed); last of the console:" >&2
  else
    echo "boot.sh: guest stopped before its job finished; last of the console:" >&2
  fi
  tail -n 30 "$SHARE/serial.log" >&2 || true
  [ -n "$timed_out" ] && exit 124 || exit 125
fi
exit "$(cat "$SHARE/job.rc")"
