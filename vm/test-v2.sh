#!/bin/bash
# make test-v2: the integration tests of vm/scenarios on a pure cgroup v2 host with systemd as
# PID 1 (a Debian 12 guest under qemu), against rt and the guest's runc, each with the cgroupfs
# and the systemd cgroup driver. Prints the scenario table; fails when an enforced round fails.
#   usage: vm/test-v2.sh [RT]   (RT: the rt to test, default the static release build)
#   env: RT_VM_RUNTIMES="rt runc", RT_VM_DRIVERS="cgroupfs systemd": the rounds to run;
#        RT_VM_TESTS="cgroups::oom_kill_and_event ...": only these tests of vm/scenarios;
#        RT_VM_MORE=1: vm/scenarios.more too (the scenarios too slow for every CI run; its
#        rows replace those of vm/scenarios of the same name);
#        RT_V2_ENFORCE: the rounds that must pass (below); RT_VM_TIMEOUT: the guest's bound
set -euo pipefail
cd "$(dirname "$0")/.."
RT=${1:-target/x86_64-unknown-linux-gnu/release/rt}
# The rounds whose failures fail make test-v2: all four.
ENFORCE=${RT_V2_ENFORCE:-rt-cgroupfs rt-systemd runc-cgroupfs runc-systemd}
OUT=target/vm
SHARE=$OUT/share

t=$SECONDS
bash vm/build-guest.sh "$OUT/guest"
echo "test-v2: guest ready in $((SECONDS - t)) s"

# The integration tests as one binary (dynamically linked against glibc: host and guest are
# both Debian 12).
t=$SECONDS
bin=$(cargo test --test integration --no-run --message-format=json-render-diagnostics |
  sed -n 's/.*"executable":"\([^"]*integration-[^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "test-v2: no integration test binary" >&2; exit 1; }
[ -x "$RT" ] || { echo "test-v2: no $RT (make build)" >&2; exit 1; }
echo "test-v2: test binary in $((SECONDS - t)) s"

rm -rf "$SHARE"
mkdir -p "$SHARE/bin" "$SHARE/repo"
cp "$RT" "$SHARE/bin/rt"
cp "$bin" "$SHARE/bin/integration"
cp -a bundles "$SHARE/repo/"
cp README.md "$SHARE/repo/"  # the CRI tests run containerd on its Kubernetes section's config
# The tests' busybox rootfs, made here: mkrootfs.sh's 400 links are a minute of forks under
# emulation. The guest's busybox-static is the host's (same sources), so the guest takes it.
bash bundles/mkrootfs.sh target/rt-test-rootfs
tar -C target -cf "$SHARE/rt-test-rootfs.tar" rt-test-rootfs
# The callers' images (busybox, the CRI pause tag, a docker-archive): the guest has neither
# umoci nor skopeo nor a registry, so the tests' own image code builds them here.
RT_TEST_EXPORT_IMAGES=$SHARE/images "$bin" --ignored --exact --quiet \
  peers::images::export_images_for_the_guest > "$OUT/images.log" 2>&1 ||
  { cat "$OUT/images.log" >&2; echo "test-v2: cannot build the callers' images" >&2; exit 1; }
if [ -n "${RT_VM_MORE:-}" ]; then
  awk '!/^#/ && NF >= 3 { if (!($1 in row)) order[++n] = $1; row[$1] = $0 }
    END { for (i = 1; i <= n; i++) print row[order[i]] }' \
    vm/scenarios vm/scenarios.more > "$SHARE/scenarios"
else
  cp vm/scenarios "$SHARE/scenarios"
fi
cp vm/guest/tests.sh "$SHARE/job"
for v in RT_VM_RUNTIMES RT_VM_DRIVERS RT_VM_TESTS; do
  [ -z "${!v:-}" ] || printf '%s=%q\n' "$v" "${!v}"
done > "$SHARE/env"

t=$SECONDS
st=0
# the rounds take 5-9 min under emulation on a loaded 2-core host, the callers' scenarios
# add ~10 min, vm/scenarios.more's ~35 min (README)
RT_VM_TIMEOUT=${RT_VM_TIMEOUT:-2400} bash vm/boot.sh "$SHARE" || st=$?
echo "test-v2: guest ran in $((SECONDS - t)) s (boot to job: $(sed -n 's/.* up \([0-9.]*\) s$/\1/p' "$SHARE/job.log") s)"
# enforced: the rounds of ENFORCE that were asked for
enforce=()
for r in ${RT_VM_RUNTIMES:-rt runc}; do
  for d in ${RT_VM_DRIVERS:-cgroupfs systemd}; do
    [[ " $ENFORCE " != *" $r-$d "* ]] || enforce+=("$r-$d")
  done
done
# the table even when the guest did not finish: what ran is shown
python3 vm/report.py "$SHARE/results" "$SHARE/scenarios" "${enforce[@]}" || exit 1
# what a benchmark among the tests printed (cri::latency, with RT_VM_MORE)
grep -h -A2 '^cri pod start latency' "$SHARE"/results/*.log 2>/dev/null | sed 's/^/  /' || true
if [ "$st" != 0 ]; then
  case $st in
    124) why="the guest timed out" ;;
    125) why="the guest stopped before its job finished" ;;
    *) why="the guest's job failed (exit $st)" ;;
  esac
  echo "test-v2: FAILED: $why" >&2
  exit 1
fi
