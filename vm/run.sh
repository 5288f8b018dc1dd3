#!/bin/bash
# Run one ad-hoc script in the v2 guest as root, for debugging and measuring: it sees the share
# as /share, with rt as /share/bin/rt (RT, default the release build; also installed as
# /usr/local/bin/rt before the script runs) and each FILE as /share/NAME; what it writes under
# /share stays in target/vm/run after the guest powers off. Builds the guest when not cached.
#   usage: vm/run.sh SCRIPT [FILE...]      vm/run.sh -c 'COMMANDS' [FILE...]
#   env: RT, RT_VM_TIMEOUT (seconds, default 600), RT_VM_SMP
set -euo pipefail
cd "$(dirname "$0")/.."
SHARE=target/vm/run
RT=${RT:-target/x86_64-unknown-linux-gnu/release/rt}
case "${1:-}" in
  -c) script=$2; shift 2 ;;
  ""|-h|--help) sed -n '2,7p' "$0"; exit 2 ;;
  *) script=$(cat "$1"); shift ;;
esac
bash vm/build-guest.sh target/vm/guest >&2
rm -rf "$SHARE"
mkdir -p "$SHARE/bin"
[ ! -x "$RT" ] || cp "$RT" "$SHARE/bin/rt"
for f in "$@"; do cp -a "$f" "$SHARE/"; done
printf '%s\n' '[ ! -x /share/bin/rt ] || install -m 755 /share/bin/rt /usr/local/bin/rt' \
  "$script" > "$SHARE/job"
exec bash vm/boot.sh "$SHARE"
