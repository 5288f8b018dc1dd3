#!/bin/bash
# `make bench-v2` runs this in the guest (vm/run.sh vm/guest/bench.sh bundles): create,
# start and delete of a busybox `true` container, timed for rt (/share/bin/rt) and the
# guest's runc with each cgroup driver, interleaved round by round so both see the same
# guest. The wait for the process to exit (polling `state`) is between start and delete and
# not counted. Prints one line per runtime x driver with the median create+start+delete in
# ms, then the rt/runc ratios.
set -euo pipefail
ROUNDS=${RT_BENCH_ROUNDS:-5}
PER=${RT_BENCH_PER:-4}
B=/var/tmp/bench-bundle
bash /share/bundles/mkbundle.sh sleep $B >/dev/null
cd $B
# the example sleeps; the benchmark container exits at once
sed -i -e 's/"sleep",/"true"/' -e '/"1000"/d' config.json
# cgroupsPath: placeholder replaced per cycle
sed -i 's|"linux": *{|"linux": {"cgroupsPath": "CGPATH",|' config.json
cp config.json config.template

now() { date +%s%N; }
cycle() { # runtime driver id -> ms of create+start+delete on stdout
  local bin=$1 driver=$2 id=$3 flag= path=/rt-bench-$3 t0 t1 t2 t3
  if [ "$driver" = systemd ]; then flag=--systemd-cgroup; path=system.slice:rt-bench:$id; fi
  sed "s|CGPATH|$path|" config.template > config.json
  t0=$(now); $bin $flag create --bundle $B "$id" >/dev/null; $bin start "$id"; t1=$(now)
  until [ "$($bin state "$id" | tr -d ' \n' | grep -o '"status":"[a-z]*"')" = '"status":"stopped"' ]; do :; done
  t2=$(now); $bin delete "$id"; t3=$(now)
  echo $(( (t1 - t0 + t3 - t2) / 1000000 ))
}

declare -A samples
for r in $(seq "$ROUNDS"); do
  for rt in rt runc; do
    for driver in cgroupfs systemd; do
      bin=$(command -v $rt)
      sum=0
      for i in $(seq "$PER"); do sum=$((sum + $(cycle "$bin" $driver "b-$rt-$driver-$r-$i"))); done
      samples[$rt-$driver]+="$((sum / PER)) "
    done
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for k in rt-cgroupfs runc-cgroupfs rt-systemd runc-systemd; do
  echo "bench: $k median $(echo ${samples[$k]} | median) ms per create+start+delete (rounds: ${samples[$k]})"
done
for d in cgroupfs systemd; do
  a=$(echo ${samples[rt-$d]} | median); b=$(echo ${samples[runc-$d]} | median)
  echo "bench: rt/runc $d $(awk -v a=$a -v b=$b 'BEGIN {printf "%.2f", a / b}')"
done
left=$(find /sys/fs/cgroup -name '*rt-bench*' | wc -l)
echo "bench: $left cgroups left"
[ "$left" = 0 ]
