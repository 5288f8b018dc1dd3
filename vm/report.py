#!/usr/bin/env python3
"""The scenario table of a v2 guest run: vm/report.py RESULTS SCENARIOS ENFORCED...

RESULTS holds, per round (RUNTIME-DRIVER), the .log vm/guest/tests.sh writes (libtest's
output with --show-output, each "test NAME ... RESULT" line stamped with the microsecond it
came) and .left (the guest-wide leftover check after the round). Prints one row per scenario and a column per round, then
what failed; exits 1 when an ENFORCED round (e.g. runc-systemd) has a failed scenario or
leftovers. A scenario passes when all of its tests pass."""
import re
import sys
from pathlib import Path

results, scenarios, enforced = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
# rt refuses --systemd-cgroup until its systemd driver lands: a failure naming that is
# reported as such, not as a bug of the scenario
NO_DRIVER = re.compile(r"systemd cgroup driver.*not supported")


def parse(log):
    """{test: (status, note, ms)} from a round's log."""
    status, out, ms, cur, last = {}, {}, {}, None, None
    for line in log.splitlines():
        if m := re.match(r"^(\d+) start$", line):
            last = int(m[1])
        elif m := re.match(r"^(\d+) test (\S+) \.\.\. (ok|FAILED|ignored)$", line):
            status[m[2]] = m[3]
            ms[m[2]] = (int(m[1]) - last) // 1000
            last = int(m[1])
        elif m := re.match(r"^---- (\S+) stdout ----$", line):
            cur = m[1]
            out[cur] = []
        elif line in ("successes:", "failures:") or line.startswith("test result:"):
            cur = None
        elif cur:
            out[cur].append(line)
    res = {}
    for t, st in status.items():
        text = out.get(t, [])
        skip = next((l for l in text if l.startswith("skip:")), None)
        if st == "ok":
            res[t] = ("skip", skip[5:].strip()) if skip else ("pass", "")
        elif st == "ignored":
            res[t] = ("skip", "ignored")
        elif NO_DRIVER.search("\n".join(text)):
            res[t] = ("fail", "systemd driver not supported")
        else:
            # the panic's message: the line after "panicked at"
            i = next((i for i, l in enumerate(text) if "panicked at" in l), None)
            note = text[i + 1].strip() if i is not None and i + 1 < len(text) else "failed"
            # a failed runtime call shows as "expected success: Out {": its stderr says why
            err = next((l.strip() for l in text if l.strip().startswith("stderr: ")), None)
            if note.endswith("Out {") and err:
                note += " " + err + " }"
            res[t] = ("fail", note[:300])
        res[t] += (ms[t],)
    return res


rows = []
for line in scenarios.read_text().splitlines():
    f = line.split()
    if f and not f[0].startswith("#"):
        rows.append((f[0], f[1].split(","), f[2:]))
rounds = [f"{rt}-{d}" for rt in ("rt", "runc") for d in ("cgroupfs", "systemd")]


def driver(rnd):
    return rnd.split("-", 1)[1]


table, failed, details, took = {}, set(), [], {}
for rnd in rounds:
    log = results / f"{rnd}.log"
    if not log.exists():
        continue
    text = log.read_text()
    res = parse(text)
    if "\ntest result: " not in text:
        rcf = results / f"{rnd}.rc"
        rc = rcf.read_text().strip() if rcf.exists() else "none: the guest stopped"
        failed.add(rnd)
        details.append(f"{rnd}: the test process did not finish (exit {rc}): see its log")
    took[rnd] = sum(ms for _, _, ms in res.values())
    for name, drivers, tests in rows:
        if driver(rnd) not in drivers:
            continue
        # a test missing from the log: left out by RT_VM_TESTS, or the test process died
        got = [(t, *res[t]) for t in tests if t in res]
        if not got:
            continue
        fails = [(t, n) for t, s, n, _ in got if s == "fail"]
        skips = [(t, n) for t, s, n, _ in got if s == "skip"]
        secs = sum(ms for *_, ms in got) / 1000
        if fails:
            nodriver = all(n == "systemd driver not supported" for _, n in fails)
            cell = "FAIL (no systemd driver)" if nodriver else "FAIL"
            failed.add(rnd)
            if not nodriver:
                details += [f"{rnd} {name}: {t}: {n}" for t, n in fails]
        elif len(skips) == len(got):
            cell = "skip"
        else:
            cell = "pass"
        details += [f"{rnd} {name}: {t}: skip: {n}" for t, n in skips]
        table[name, rnd] = f"{cell} {secs:.0f}s"
    leftf = results / f"{rnd}.left"
    left = [l for l in leftf.read_text().split("\n") if l] if leftf.exists() else []
    table["leftovers", rnd] = f"FAIL ({len(left)})" if left else "none"
    if left:
        failed.add(rnd)
        details += [f"{rnd} leftover: {l}" for l in left[:10]]

names = [r[0] for r in rows] + ["leftovers"]
ran = [r for r in rounds if r in took]
cols = [f"{r.replace('-', ' x ')}{'' if r in enforced else ' (info)'}" for r in ran]
w0 = max(map(len, names)) + 2
ws = [max(len(c), *(len(table.get((n, r), "-")) for n in names)) + 2 for c, r in zip(cols, ran)]
print("scenario".ljust(w0) + "".join(c.ljust(w) for c, w in zip(cols, ws)))
for n in names:
    print(n.ljust(w0) + "".join(table.get((n, r), "-").ljust(w) for r, w in zip(ran, ws)))
print("time".ljust(w0) + "".join(f"{took[r] / 1000:.0f}s".ljust(w) for r, w in zip(ran, ws)))
for d in details:
    print("  " + d)
bad = sorted(set(enforced) & failed)
if bad:
    print(f"test-v2: FAILED in {', '.join(bad)} (logs: {results}/*.log)")
    sys.exit(1)
print(f"test-v2: ok ({', '.join(enforced) or 'nothing'} enforced)")
