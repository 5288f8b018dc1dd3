#!/bin/bash
# Build the test guest: Debian 12 with systemd as PID 1 on a pure cgroup v2 hierarchy, as
# an ext4 disk image plus its kernel and initrd, in OUT (default target/vm/guest). Cached:
# when OUT holds a build of the same recipe (this script, guest/, the host's apt sources),
# it returns at once. Needs root, mmdebstrap and e2fsprogs; no loop mounts.
#   usage: vm/build-guest.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/vm/guest}
# What the tests need in the guest: systemd, dbus (runc's systemd driver talks to it), runc
# (the reference runtime), busybox-static (the test containers' rootfs), iproute2 and kmod
# (handy when debugging), the kernel.
PKGS=systemd-sysv,udev,dbus,runc,busybox-static,iproute2,kmod,linux-image-amd64
# The callers with their default systemd drivers (containerd, podman, dockerd), CRI's CNI
# plugins, criu and the iptables it locks the network with, and a user session for rootless
# (logind, the user's bus, subordinate ids).
PKGS=$PKGS,containerd,podman,docker.io,containernetworking-plugins,criu,iptables
PKGS=$PKGS,libpam-systemd,dbus-user-session,uidmap
# The host's own Debian sources (a snapshot or mirror it is set up for), else Debian's CDN.
SOURCES=/etc/apt/sources.list.d/debian.sources
[ -f "$SOURCES" ] || SOURCES=

key=$( (cat vm/build-guest.sh vm/guest/rt-vm-job.service vm/guest/fstab; echo "$PKGS";
        [ -z "$SOURCES" ] || cat "$SOURCES") | sha256sum | cut -c1-16)
if [ "$(cat "$OUT/key" 2>/dev/null)" = "$key" ]; then
  echo "guest: cached in $OUT"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "build-guest.sh: needs root" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
root=$OUT/rootfs
trap 'rm -rf "$root"' EXIT

# Docs, man pages and locales are most of a minbase's files: keep them out.
# MODULES=list with just the root disk's drivers makes a 7 MB initrd in seconds (the default
# "most" copies hundreds of modules); it is set before the kernel's postinst builds it. The
# 9p modules for the share load from the root fs once it is mounted.
mmdebstrap --variant=minbase --mode=root --include="$PKGS" \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"
    echo MODULES=list > "$1/etc/initramfs-tools/conf.d/rt-vm.conf"
    printf "%s\n" virtio_pci virtio_blk ext4 > "$1/usr/share/initramfs-tools/modules.d/rt-vm"' \
  --customize-hook='cp vm/guest/fstab "$1/etc/fstab"; mkdir -p "$1/share"
    cp vm/guest/rt-vm-job.service "$1/etc/systemd/system/"
    chroot "$1" systemctl enable -q rt-vm-job.service
    # not a first boot (no firstboot prompts on the console); nothing periodic during tests
    echo 7e5c0c5e4b1d4a7f9d7b6a6c2e1f0a9b > "$1/etc/machine-id"
    echo rt-vm > "$1/etc/hostname"
    chroot "$1" systemctl mask -q apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
      fstrim.timer dpkg-db-backup.timer serial-getty@ttyS0.service getty@tty1.service
    # the callers start when a test starts them, not at every boot (minutes under emulation)
    chroot "$1" systemctl disable -q docker.service docker.socket containerd.service' \
  --customize-hook='rm -rf "$1/var/cache/apt/"*.bin "$1/var/lib/apt/lists/"*' \
  bookworm "$root" ${SOURCES:+"$SOURCES"}

cp -L "$root/vmlinuz" "$OUT/vmlinuz"
cp -L "$root/initrd.img" "$OUT/initrd.img"
# The disk is made from the directory (no loop mount); snapshot=on in qemu keeps it pristine.
mkfs.ext4 -q -L rt-vm -d "$root" "$OUT/disk.ext4" 3G
echo "$key" > "$OUT/key"
echo "guest: built in $OUT ($(du -sh --apparent-size "$OUT/disk.ext4" | cut -f1) disk, $(du -h "$OUT/initrd.img" | cut -f1) initrd)"
