#!/bin/bash
# Install what rt's build, tests and demo need, from Debian's packages. Safe to rerun:
# when everything is present it returns at once without touching apt.
#   busybox-static  the rootfs of every test bundle (bundles/mkrootfs.sh)
#   runc            the reference runtime the integration tests are proven against
#   jq              used by the demo and handy for reading state JSON
#   make            listed so a bare Debian works
#   docker-registry, skopeo, umoci   the registry and peers of the image tests (and make demo)
#   apache2-utils (htpasswd), openssl, zstd, tar   fixtures of the image tests
#   containerd, podman, docker.io   the callers of the peer tests (integration/peers.rs),
#                   which start their own daemons on private sockets, whether or not the
#                   packages' services run
#   uidmap          newuidmap/newgidmap, for rootless id ranges (integration/rootless.rs)
#   containernetworking-plugins, iproute2   the CRI tests' pod network (integration/cri.rs):
#                   a bridge of their own, made by CNI's bridge plugin, removed with ip
#   protobuf-compiler   protoc, which the k8s-cri crate's build script needs: the CRI tests'
#                   gRPC client (a dev-dependency only; the rt binary never links it)
#   qemu-system-x86, mmdebstrap, e2fsprogs   make test-v2's guest (vm/): built from Debian's
#                   packages, its disk made with mkfs.ext4 -d, booted under qemu
set -euo pipefail
PKGS=(busybox-static runc jq make curl python3 docker-registry skopeo umoci apache2-utils openssl zstd tar containerd podman docker.io uidmap containernetworking-plugins iproute2 protobuf-compiler
  qemu-system-x86 mmdebstrap e2fsprogs)

missing=()
for p in "${PKGS[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# One apt-get at a time: concurrent runs of this script queue on the lock, and apt's
# own lock wait covers an unattended upgrade holding dpkg.
exec 9>/var/lock/rt-ci-setup.lock
flock 9
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"
