#!/usr/bin/env python3
"""Interleaved timing of rt, runc and crun: each round runs every runtime once per scenario,
so drift on the machine (other load, caches) hits all of them alike. Prints medians and
rt/peer ratios."""
import argparse, concurrent.futures, json, os, shutil, statistics, subprocess, time

p = argparse.ArgumentParser()
p.add_argument("--rt", required=True)
p.add_argument("--work", required=True)
p.add_argument("--rounds", type=int, default=30)
# Another rt build (say the one before a change) timed in the same rounds: the change's ratio.
p.add_argument("--rt-base")
a = p.parse_args()

RUNTIMES = {"rt": a.rt}
if a.rt_base:
    RUNTIMES["rt-base"] = a.rt_base
for name in ("runc", "crun"):
    if shutil.which(name):
        RUNTIMES[name] = shutil.which(name)
bundle = os.path.join(a.work, "bundle")


def write_config(args, memory_limit=None):
    spec_dir = os.path.join(a.work, "spec")
    os.makedirs(spec_dir, exist_ok=True)
    path = os.path.join(spec_dir, "config.json")
    if os.path.exists(path):
        os.remove(path)
    subprocess.run([a.rt, "spec", "--bundle", spec_dir], check=True)
    cfg = json.load(open(path))
    # crun 1.8 refuses runtime-spec versions newer than it knows.
    cfg["ociVersion"] = "1.0.2"
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    if memory_limit:
        cfg["linux"].setdefault("resources", {})["memory"] = {"limit": memory_limit, "swap": memory_limit}
    json.dump(cfg, open(os.path.join(bundle, "config.json"), "w"))


ERRLOG = open(os.path.join(a.work, "stderr.log"), "w+")


def rt(name, *args, check=True):
    # Never a pipe for the container's stdio: a container keeps it open after the runtime exits.
    r = subprocess.run([RUNTIMES[name], "--root", os.path.join(a.work, "root-" + name), *args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ERRLOG)
    if check and r.returncode != 0:
        ERRLOG.seek(0)
        raise SystemExit(f"bench: {name} {' '.join(args)} failed: {ERRLOG.read()[-500:]}")
    return r


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def cycle(name, i):
    cid = f"c{i}"
    rt(name, "create", "--bundle", bundle, cid)
    rt(name, "start", cid)
    rt(name, "delete", "-f", cid)


def run(name, i):
    rt(name, "run", "--bundle", bundle, f"r{i}")


def measure(label, scenario, rounds, setup=None):
    times = {n: [] for n in RUNTIMES}
    for i in range(rounds):
        for n in RUNTIMES:
            times[n].append(timed(lambda: scenario(n, i)))
    return label, {n: statistics.median(v) for n, v in times.items()}


results = []
write_config(["/bin/true"])
for n in RUNTIMES:  # warm caches
    cycle(n, 999)
results.append(measure("create+start+delete -f /bin/true", cycle, a.rounds))
results.append(measure("run /bin/true", run, a.rounds))

write_config(["sleep", "1000"])
for n in RUNTIMES:
    rt(n, "run", "--detach", "--bundle", bundle, "x")
results.append(measure("exec /bin/true", lambda n, i: rt(n, "exec", "x", "/bin/true"), a.rounds))
for n in RUNTIMES:
    rt(n, "delete", "-f", "x")


def peak_rss_kb(name, *args):
    out = os.path.join(a.work, "rss")
    subprocess.run(["/usr/bin/time", "-o", out, "-f", "%M", RUNTIMES[name], "--root", os.path.join(a.work, "root-" + name), *args],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ERRLOG)
    return int(open(out).read().strip().splitlines()[-1])


write_config(["/bin/true"])
rss = {}
for n in RUNTIMES:
    rss[n] = max(peak_rss_kb(n, "create", "--bundle", bundle, "m"), peak_rss_kb(n, "start", "m"), peak_rss_kb(n, "delete", "-f", "m"))

tiny = {}
write_config(["/bin/true"], memory_limit=512 * 1024)
for n in RUNTIMES:
    r = rt(n, "run", "--bundle", bundle, "tiny", check=False)
    tiny[n] = "ok" if r.returncode == 0 else f"fails (exit {r.returncode})"
    rt(n, "delete", "-f", "tiny", check=False)

# 100 back to back (the first and last 20 compared: the cost must stay flat), then 100 more
# with 10 in flight at once; afterwards nothing may be left.
write_config(["/bin/true"])
flat = {}
parallel = {}
for n in RUNTIMES:
    t = [timed(lambda i=i: cycle(n, 1000 + i)) for i in range(100)]
    flat[n] = (statistics.median(t[:20]), statistics.median(t[-20:]))
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        parallel[n] = timed(lambda: list(pool.map(lambda i: cycle(n, 2000 + i), range(100)))) / 100
    left = os.listdir(os.path.join(a.work, "root-" + n))
    if left:
        print(f"bench: {n} left state behind: {left}")

peers = [n for n in RUNTIMES if n != "rt"]
print(f"\nrt bench: {a.rounds} interleaved rounds, medians in ms; ratio = rt / peer (lower is better)\n")
head = f"{'scenario':36}" + "".join(f"{n:>10}" for n in RUNTIMES) + "".join(f"{'rt/' + n:>10}" for n in peers)
print(head)
for label, med in results:
    row = f"{label:36}" + "".join(f"{med[n] * 1000:10.2f}" for n in RUNTIMES)
    row += "".join(f"{med['rt'] / med[n]:10.2f}" for n in peers)
    print(row)
print(f"{'peak RSS of create/start/delete (KiB)':36}" + "".join(f"{rss[n]:10d}" for n in RUNTIMES)
      + "".join(f"{rss['rt'] / rss[n]:10.2f}" for n in peers))
print(f"{'100 in a row: first 20 / last 20 ms':36}" + "".join(f"{flat[n][0]*1000:5.1f}/{flat[n][1]*1000:4.1f}" for n in RUNTIMES))
print(f"{'100 with 10 in flight: ms each':36}" + "".join(f"{parallel[n]*1000:10.2f}" for n in RUNTIMES)
      + "".join(f"{parallel['rt'] / parallel[n]:10.2f}" for n in peers))
print("512 KiB memory limit running /bin/true: " + ", ".join(f"{n} {v}" for n, v in tiny.items()))
