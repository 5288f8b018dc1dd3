//! linux.resources and the commands that act on a container's cgroup (events, pause,
//! resume, update, ps, kill --all, delete --force). Values are read back both from
//! inside (the container's /sys/fs/cgroup) and from the host's hierarchy.

use crate::common::*;
use crate::require_root;
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const MIB: i64 = 1024 * 1024;

fn is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// `controller/file` relative to /sys/fs/cgroup: v1 has a hierarchy per controller,
/// v2 one directory with every file.
fn rel(controller: &str, v1: &str, v2: &str) -> String {
    if is_v2() {
        v2.to_string()
    } else {
        format!("{controller}/{v1}")
    }
}

/// The host's copy of a cgroup file of container `c`.
fn host_file(c: &Ctr, rel: &str) -> String {
    let (dir, file) = match rel.split_once('/') {
        Some((ctrl, f)) => (format!("/sys/fs/cgroup/{ctrl}{}", c.cgroup), f),
        None => (format!("/sys/fs/cgroup{}", c.cgroup), rel),
    };
    let p = format!("{dir}/{file}");
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}

fn sh(cmd: &str) -> Value {
    config_with_args(&["sh", "-c", cmd])
}

/// The `sleep` example running `args`, with `resources` merged into linux.resources.
fn with_resources(args: &[&str], resources: Value) -> Value {
    let mut cfg = config_with_args(args);
    for (k, v) in resources.as_object().unwrap() {
        cfg["linux"]["resources"][k] = v.clone();
    }
    cfg
}

fn host_has(rel: &str) -> bool {
    Path::new("/sys/fs/cgroup").join(rel).exists()
}

/// Swap accounting is on: memory.memsw.* in v1's memory hierarchy; v2's memory.swap.max,
/// which the root cgroup lacks, in the cgroup this test runs in.
fn host_has_swap() -> bool {
    if !is_v2() {
        return host_has("memory/memory.memsw.limit_in_bytes");
    }
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    own.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .is_some_and(|p| host_has(&format!("{}/memory.swap.max", p.trim_start_matches('/'))))
}

/// The highest CPU this host has online: a cpuset other than the default where there are
/// two, and one that exists where there is one.
fn last_cpu() -> String {
    let online = fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let last = online.trim().rsplit([',', '-']).next().unwrap();
    last.to_string()
}

/// A v1 hierarchy with `controller` is mounted: /sys/fs/cgroup is a tmpfs where
/// anyone may create a directory of that name, so its existence proves nothing.
fn v1_mounted(controller: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(" - cgroup "))
        .any(|(_, post)| {
            post.split(' ')
                .nth(1)
                .is_some_and(|o| o.split(',').any(|x| x == controller))
        })
}

#[test]
fn resources_read_back() {
    require_root!();
    let swap = host_has_swap();
    let mut memory = json!({"limit": 64 * MIB, "reservation": 32 * MIB});
    if swap {
        memory["swap"] = json!(128 * MIB);
    } else {
        eprintln!("skip: memory.swap (no swap accounting on this host)");
    }
    let resources = json!({
        "memory": memory,
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 42},
    });
    let mut files = vec![
        (
            rel("memory", "memory.limit_in_bytes", "memory.max"),
            (64 * MIB).to_string(),
        ),
        (
            rel("memory", "memory.soft_limit_in_bytes", "memory.low"),
            (32 * MIB).to_string(),
        ),
        (rel("cpuset", "cpuset.cpus", "cpuset.cpus"), "0".into()),
        (rel("pids", "pids.max", "pids.max"), "42".into()),
    ];
    if is_v2() {
        // runc's shares→weight conversion: 1 + (shares-2)*9999/262142
        files.push(("cpu.weight".into(), "20".into()));
        files.push(("cpu.max".into(), "50000 100000".into()));
        if swap {
            files.push(("memory.swap.max".into(), (64 * MIB).to_string()));
        }
    } else {
        files.push(("cpu/cpu.shares".into(), "512".into()));
        files.push(("cpu/cpu.cfs_quota_us".into(), "50000".into()));
        files.push(("cpu/cpu.cfs_period_us".into(), "100000".into()));
        if swap {
            files.push((
                "memory/memory.memsw.limit_in_bytes".into(),
                (128 * MIB).to_string(),
            ));
        }
    }
    let c = Ctr::new("cg-res", with_resources(&["sleep", "1000"], resources));
    c.create().ok();
    // create applies the limits before the user's process can run
    for (f, want) in &files {
        assert_eq!(&host_file(&c, f), want, "host {f}");
    }
    c.start().ok();
    // an exec'd process is in the same cgroup: the container's own view of the files
    let script: Vec<_> = files
        .iter()
        .map(|(f, _)| format!("cat /sys/fs/cgroup/{f}"))
        .collect();
    let out = c.exec(&[], &["sh", "-c", &script.join("; ")]);
    out.ok();
    let want: Vec<_> = files.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), want, "{out:#?}");
}

#[test]
fn resources_seen_inside() {
    require_root!();
    let resources = json!({
        "memory": {"limit": 48 * MIB},
        "cpu": {"shares": 256, "quota": 20000, "period": 50000},
        "pids": {"limit": 17},
    });
    let files = if is_v2() {
        vec![
            ("memory.max", (48 * MIB).to_string()),
            ("cpu.max", "20000 50000".to_string()),
            ("pids.max", "17".to_string()),
        ]
    } else {
        vec![
            ("memory/memory.limit_in_bytes", (48 * MIB).to_string()),
            ("cpu/cpu.shares", "256".to_string()),
            ("cpu/cpu.cfs_quota_us", "20000".to_string()),
            ("cpu/cpu.cfs_period_us", "50000".to_string()),
            ("pids/pids.max", "17".to_string()),
        ]
    };
    let script: Vec<_> = files
        .iter()
        .map(|(f, _)| format!("cat /sys/fs/cgroup/{f}"))
        .collect();
    let c = Ctr::new(
        "cg-inside",
        with_resources(&["sh", "-c", &script.join("; ")], resources),
    );
    let out = c.run();
    out.ok();
    let want: Vec<_> = files.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), want, "{out:#?}");
}

#[test]
fn pids_limit_stops_fork_bomb() {
    require_root!();
    let pids_current = if is_v2() {
        "/sys/fs/cgroup/pids.current"
    } else {
        "/sys/fs/cgroup/pids/pids.current"
    };
    // The loop runs in a child shell: ash gives up on a failed fork, and the outer
    // shell must survive to report. `read` is a builtin, so reporting needs no fork.
    let script = format!(
        "sh -c 'for i in $(seq 100); do sleep 10 & done' 2>&1; \
         read n < {pids_current}; echo count=$n"
    );
    let c = Ctr::new(
        "cg-forkbomb",
        with_resources(&["sh", "-c", &script], json!({"pids": {"limit": 10}})),
    );
    let out = c.run();
    out.ok();
    assert!(
        out.stdout.contains("Resource temporarily unavailable"),
        "no fork failed: {out:#?}"
    );
    let n: u32 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("count="))
        .unwrap_or_else(|| panic!("{out:#?}"))
        .parse()
        .unwrap();
    // the outer shell plus the sleeps the inner one got to start before hitting 10
    assert!((2..=10).contains(&n), "pids.current {n}: {out:#?}");
}

/// `rt events …` in the background, its stdout in a file; killed on drop.
struct Events {
    child: std::process::Child,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Events {
    fn start(c: &Ctr, args: &[&str]) -> Events {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events");
        let mut cmd = c.cmd(&["events"]);
        cmd.args(args)
            .arg(&c.id)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(dir.path().join("err")).unwrap());
        Events {
            child: cmd.spawn().unwrap(),
            out,
            _dir: dir,
        }
    }
    /// The complete lines so far: the last one may still be half written.
    fn lines(&self) -> Vec<Value> {
        let text = fs::read_to_string(&self.out).unwrap();
        let done = text.rfind('\n').map_or("", |i| &text[..i]);
        done.lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn oom_kill_and_event() {
    require_root!();
    let c = Ctr::started(
        "cg-oom",
        with_resources(
            &["sleep", "1000"],
            json!({"memory": {"limit": 32 * MIB, "swap": 32 * MIB}}),
        ),
    );
    let ev = Events::start(&c, &["--interval", "100ms"]);
    // let events register for OOM notifications before the allocation
    std::thread::sleep(Duration::from_millis(500));
    // dd's one 128 MiB block is filled by the read: more than the limit
    let out = c.exec(
        &[],
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
    );
    assert_eq!(
        out.status.code(),
        Some(137),
        "dd not SIGKILLed by the OOM killer: {out:#?}"
    );
    let oom = wait_for("an oom event", || {
        ev.lines().into_iter().find(|e| e["type"] == "oom")
    });
    assert_eq!(oom["id"], c.id.as_str(), "{oom}");
    // the kernel's own count of OOM kills in the container's memory cgroup
    let ctl = host_file(&c, &rel("memory", "memory.oom_control", "memory.events"));
    let kills = ctl
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap_or_else(|| panic!("no oom_kill count: {ctl}"));
    assert_eq!(kills, "1", "{ctl}");
    // the container itself survives its exec'd process's OOM
    assert_eq!(c.status(), "running");
}

#[test]
fn events_stats_once() {
    require_root!();
    let c = Ctr::started(
        "cg-stats",
        with_resources(&["sleep", "1000"], json!({"memory": {"limit": 64 * MIB}})),
    );
    let out = c.rt(&["events", "--stats", &c.id]);
    out.ok();
    let lines: Vec<_> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{out:#?}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], c.id.as_str(), "{v}");
    let d = &v["data"];
    assert_eq!(d["pids"]["current"], 1, "{v}");
    assert_eq!(d["memory"]["usage"]["limit"], 64 * MIB, "{v}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{v}");
    assert!(d["cpu"]["usage"]["total"].as_u64().is_some(), "{v}");
}

#[test]
fn events_stream_at_interval() {
    require_root!();
    let c = Ctr::started("cg-evstream", example("sleep"));
    let ev = Events::start(&c, &["--interval", "100ms"]);
    let stats = wait_for("three stats events", || {
        let s: Vec<_> = ev
            .lines()
            .into_iter()
            .filter(|e| e["type"] == "stats")
            .collect();
        (s.len() >= 3).then_some(s)
    });
    for e in &stats {
        assert_eq!(e["id"], c.id.as_str(), "{e}");
        assert_eq!(e["data"]["pids"]["current"], 1, "{e}");
    }
}

/// How far the container's writer got: the size of the file it appends to.
fn read_counter(c: &Ctr) -> u64 {
    let p = c.bundle.path().join("rootfs/tmp/count");
    wait_for("the counter file", || {
        fs::metadata(&p).ok().map(|m| m.len())
    })
}

#[test]
fn pause_freezes_resume_thaws() {
    require_root!();
    // appending (no truncation) so that the size only grows, and without a fork
    let mut cfg = sh("exec >> /tmp/count; while :; do echo x; done");
    cfg["root"]["readonly"] = json!(false);
    let c = Ctr::started("cg-pause", cfg);
    let first = read_counter(&c);
    wait_for("the counter to advance", || {
        (read_counter(&c) > first).then_some(())
    });
    c.rt(&["pause", &c.id]).ok();
    assert_eq!(c.raw_status(), "paused");
    let frozen = read_counter(&c);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        read_counter(&c),
        frozen,
        "the counter advanced while paused"
    );
    c.rt(&["resume", &c.id]).ok();
    assert_eq!(c.raw_status(), "running");
    wait_for("the counter to advance after resume", || {
        (read_counter(&c) > frozen).then_some(())
    });
}

#[test]
fn update_memory_then_pids_keeps_memory() {
    require_root!();
    let c = Ctr::started("cg-update", example("sleep"));
    let mem = rel("memory", "memory.limit_in_bytes", "memory.max");
    let pids = rel("pids", "pids.max", "pids.max");

    c.rt(&["update", "--memory", "64m", &c.id]).ok();
    assert_eq!(host_file(&c, &mem), (64 * MIB).to_string());
    let inside = c.exec(&[], &["cat", &format!("/sys/fs/cgroup/{mem}")]);
    inside.ok();
    assert_eq!(inside.stdout.trim(), (64 * MIB).to_string());

    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("r.json");
    fs::File::create(&json_path)
        .unwrap()
        .write_all(
            json!({"memory": {"limit": 96 * MIB}})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    let out = run_cmd(
        c.cmd(&["update", "--resources", "-", &c.id]),
        Stdio::from(fs::File::open(&json_path).unwrap()),
    );
    out.ok();
    assert_eq!(host_file(&c, &mem), (96 * MIB).to_string());

    c.rt(&["update", "--pids-limit", "20", &c.id]).ok();
    assert_eq!(host_file(&c, &pids), "20");
    assert_eq!(host_file(&c, &mem), (96 * MIB).to_string(), "memory lost");
}

#[test]
fn update_every_flag() {
    require_root!();
    let c = Ctr::started(
        "cg-updflags",
        with_resources(&["sleep", "1000"], json!({"memory": {"limit": 64 * MIB}})),
    );
    let swap = host_has_swap();
    let cpu = last_cpu();
    let mut args = vec![
        "update",
        "--cpu-share",
        "300",
        "--cpu-period",
        "60000",
        "--cpu-quota",
        "30000",
        "--cpuset-cpus",
        &cpu,
        "--memory",
        "80m",
        "--memory-reservation",
        "40m",
        "--pids-limit",
        "33",
    ];
    if swap {
        args.extend(["--memory-swap", "160m"]);
    }
    args.push(&c.id);
    c.rt(&args).ok();
    let mut want = vec![
        (
            rel("memory", "memory.limit_in_bytes", "memory.max"),
            (80 * MIB).to_string(),
        ),
        (
            rel("memory", "memory.soft_limit_in_bytes", "memory.low"),
            (40 * MIB).to_string(),
        ),
        (rel("cpuset", "cpuset.cpus", "cpuset.cpus"), cpu.clone()),
        (rel("pids", "pids.max", "pids.max"), "33".into()),
    ];
    if is_v2() {
        want.push(("cpu.max".into(), "30000 60000".into()));
        // runc's conversion: cpu.weight from shares, swap.max the part of memory+swap over memory
        want.push(("cpu.weight".into(), "12".into()));
        if swap {
            want.push(("memory.swap.max".into(), (80 * MIB).to_string()));
        }
    } else {
        want.push(("cpu/cpu.shares".into(), "300".into()));
        want.push(("cpu/cpu.cfs_period_us".into(), "60000".into()));
        want.push(("cpu/cpu.cfs_quota_us".into(), "30000".into()));
    }
    if swap && !is_v2() {
        want.push((
            "memory/memory.memsw.limit_in_bytes".into(),
            (160 * MIB).to_string(),
        ));
    }
    for (f, v) in &want {
        assert_eq!(&host_file(&c, f), v, "{f}");
    }
}

#[test]
fn ps_json_lists_exactly_the_container() {
    require_root!();
    let c = Ctr::started("cg-ps", sh("sleep 1000 & sleep 1001 & wait"));
    let procs = wait_for("three processes in the cgroup", || {
        let p = cgroup_procs(&c.cgroup);
        (p.len() == 3).then_some(p)
    });
    let out = c.rt(&["ps", "--format", "json", &c.id]);
    out.ok();
    let mut listed: Vec<i32> =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ps json: {e}: {out:#?}"));
    listed.sort();
    assert_eq!(listed, procs);
    let init = c.state()["pid"].as_i64().unwrap() as i32;
    assert!(listed.contains(&init));
}

#[test]
fn kill_all_reaches_exec_and_children() {
    require_root!();
    // Without a pid namespace, killing the init alone leaves the rest alive: only
    // --all reaches the init's children and an exec'd process (not the init's child).
    let mut cfg = sh("sleep 1000 & exec sleep 1001");
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    let c = Ctr::started("cg-killall", cfg);
    c.exec(&["-d"], &["sleep", "1002"]).ok();
    let procs = wait_for("three processes", || {
        let p = cgroup_procs(&c.cgroup);
        (p.len() == 3).then_some(p)
    });
    let starts: Vec<_> = procs
        .iter()
        .map(|&p| (p, proc_start_time(p).unwrap()))
        .collect();
    c.kill(true, Some("KILL")).ok();
    c.wait_status("stopped");
    wait_for("every process gone", || {
        starts
            .iter()
            .all(|&(p, t)| !process_alive(p, t))
            .then_some(())
    });
}

#[test]
fn delete_force_with_children() {
    require_root!();
    let mut cfg = sh("sleep 1000 & sleep 1001 & wait");
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    let c = Ctr::started("cg-delforce", cfg);
    let procs = wait_for("three processes", || {
        let p = cgroup_procs(&c.cgroup);
        (p.len() == 3).then_some(p)
    });
    let starts: Vec<_> = procs
        .iter()
        .map(|&p| (p, proc_start_time(p).unwrap()))
        .collect();
    c.delete(true).ok();
    wait_for("every process gone", || {
        starts
            .iter()
            .all(|&(p, t)| !process_alive(p, t))
            .then_some(())
    });
    if is_runc() {
        // runc 1.1.5 stops retrying the cgroup's removal after ~0.3 s of EBUSY; under
        // emulation (vm/) the killed processes can take longer to leave it: only report that
        std::thread::sleep(Duration::from_secs(1));
        if !cgroup_dirs(&c.cgroup).is_empty() {
            eprintln!("runc left the cgroup of a force-deleted container with children");
            c.tolerate_leaks.set(true);
        }
    } else {
        wait_for("the cgroup removed", || {
            cgroup_dirs(&c.cgroup).is_empty().then_some(())
        });
    }
    assert!(!c.root.path().join(&c.id).exists(), "state dir left");
}

#[test]
fn blkio_weight() {
    require_root!();
    if is_v2() || !v1_mounted("blkio") {
        eprintln!("skip: blkio.weight is a v1 test (v2 has io.weight)");
        return;
    }
    let c = Ctr::new(
        "cg-blkio",
        with_resources(&["true"], json!({"blockIO": {"weight": 300}})),
    );
    c.create().ok();
    // Kernels whose default I/O scheduler is BFQ have only blkio.bfq.weight, which
    // runc writes instead; it reads `300` or, on some kernels, `default 300`.
    let dir = format!("/sys/fs/cgroup/blkio{}", c.cgroup);
    let file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| Path::new(&dir).join(f).exists());
    let Some(file) = file else {
        eprintln!("skip: blkio weight (neither blkio.weight nor blkio.bfq.weight)");
        return;
    };
    let got = host_file(&c, &format!("blkio/{file}"));
    assert_eq!(got.trim_start_matches("default "), "300", "{file}: {got}");
}

#[test]
fn kernel_memory_ignored() {
    require_root!();
    // Kernel memory limits are gone from the kernel (v1 keeps the file, unlimited):
    // runc warns and ignores the setting; the rest of the memory settings still apply.
    let c = Ctr::new(
        "cg-kmem",
        with_resources(
            &["true"],
            json!({"memory": {"limit": 64 * MIB, "kernel": 32 * MIB}}),
        ),
    );
    c.create().ok();
    assert_eq!(
        host_file(&c, &rel("memory", "memory.limit_in_bytes", "memory.max")),
        (64 * MIB).to_string()
    );
}

#[test]
fn hugetlb_limit() {
    require_root!();
    let sizes: Vec<String> = fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    if !sizes.iter().any(|s| s == "hugepages-2048kB") || is_v2() || !v1_mounted("hugetlb") {
        eprintln!("skip: hugetlb (no v1 hugetlb hierarchy with 2MB pages on this host)");
        return;
    }
    let c = Ctr::new(
        "cg-huge",
        with_resources(
            &["true"],
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}]}),
        ),
    );
    c.create().ok();
    assert_eq!(
        host_file(&c, "hugetlb/hugetlb.2MB.limit_in_bytes"),
        (4 * MIB).to_string()
    );
}

/// However init gets into its cgroup it must end up there in every hierarchy, v1 and cgroup2,
/// before start: born in the cgroup2 directory and moving itself into v1 (the default, checked
/// in lifecycle.rs), moved by the runtime because it sits in a new user namespace, or moved by
/// the runtime because a tight memory limit keeps it from being born there.
#[test]
fn init_in_every_hierarchy_on_each_path() {
    require_root!();
    let mut userns = config_with_args(&["sleep", "1000"]);
    userns["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    userns["linux"]["uidMappings"] = map.clone();
    userns["linux"]["gidMappings"] = map;
    let mut tight = config_with_args(&["sleep", "1000"]);
    tight["linux"]["resources"]["memory"] = json!({"limit": 16 * MIB});
    for (tag, cfg) in [("cgpath-userns", userns), ("cgpath-tight", tight)] {
        let c = Ctr::new(tag, cfg);
        c.create().ok();
        assert_in_cgroup_everywhere(c.state()["pid"].as_i64().unwrap(), &c.cgroup, tag);
        c.start().ok();
        assert_eq!(c.status(), "running", "{tag}");
        c.delete(true).ok();
    }
}

/// A 512 KiB memory limit is enough to start /bin/true: rt's own start-up in init is not charged
/// to the container (crun's published claim; runc needs several MiB).
#[test]
fn runs_under_a_512_kib_memory_limit() {
    require_root!();
    if is_runc() {
        eprintln!("skip: runc needs several MiB of memory limit to start a container");
        return;
    }
    let mut cfg = config_with_args(&["true"]);
    cfg["linux"]["resources"]["memory"] = json!({"limit": 512 * 1024});
    let c = Ctr::new("tiny-mem", cfg);
    c.run().ok();
}

/// Without linux.cgroupsPath the container's cgroup is its id below the runtime's own cgroup,
/// as runc makes it: no shared parent (whose realtime budget and limits would bind every
/// container) is made, and nothing is left once it is deleted, even by a `delete` run from
/// another cgroup.
#[test]
fn default_cgroup_path_is_the_id_below_our_own_cgroup() {
    require_root!();
    if systemd_driver() {
        eprintln!("skip: the systemd driver's default cgroup is a unit, not a path below ours");
        return;
    }
    let mut cfg = config_with_args(&["sleep", "1000"]);
    let c = Ctr::new("defaultcg", cfg.clone());
    cfg["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    c.write_config(&cfg);
    let shared_parents: Vec<String> = cgroup_dirs("/rt");
    let want = own_cgroup_dirs(&c.id);
    assert!(!want.is_empty());
    c.create().ok();
    let pid = c.state()["pid"].as_i64().unwrap();
    for d in &want {
        let procs = fs::read_to_string(format!("{d}/cgroup.procs")).unwrap_or_else(|e| {
            panic!(
                "{d}: {e} (cgroups of init: {})",
                fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()
            )
        });
        assert!(
            procs.lines().any(|p| p == pid.to_string()),
            "init {pid} not in {d}"
        );
    }
    // delete from another cgroup: what it removes must not depend on where it runs
    let other = if is_v2() {
        format!("/sys/fs/cgroup/rt-it-elsewhere-{}", std::process::id())
    } else {
        format!("/sys/fs/cgroup/pids/rt-it-elsewhere-{}", std::process::id())
    };
    let moved = fs::create_dir(&other).is_ok();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "[ -d {other} ] && echo $$ > {other}/cgroup.procs; exec \"$0\" --root \"$1\" delete --force \"$2\""
        ))
        .arg(rt_bin())
        .arg(c.root.path())
        .arg(&c.id);
    let out = run_cmd(cmd, Stdio::null());
    if moved {
        let _ = fs::remove_dir(&other);
    }
    out.ok();
    for d in &want {
        wait_for(&format!("{d} to go"), || {
            (!Path::new(d).exists()).then_some(())
        });
    }
    assert_eq!(
        cgroup_dirs("/rt"),
        shared_parents,
        "a shared parent cgroup was made"
    );
}

/// An unlimited value reads back as "max" (v2) or as the page-rounded i64::MAX (v1).
#[track_caller]
fn assert_unlimited(c: &Ctr, rel: &str) {
    let v = host_file(c, rel);
    assert!(
        v.starts_with("max") || v.parse::<u64>().is_ok_and(|n| n > 1 << 62),
        "{rel} = {v}, not unlimited"
    );
}

#[test]
fn update_unlimited_memory_and_negative_values() {
    require_root!();
    let swap = !is_v2() && host_has("memory/memory.memsw.limit_in_bytes");
    let mut res = json!({"memory": {"limit": 64 * MIB}});
    if swap {
        res["memory"]["swap"] = json!(128 * MIB);
    }
    let c = Ctr::started("cg-unlimit", with_resources(&["sleep", "1000"], res));
    // -1 lifts the memory limit, and on v1 the memory+swap limit with it (which must never
    // be below the memory limit, so keeping it would make the kernel refuse)
    c.rt(&["update", "--memory", "-1", &c.id]).ok();
    assert_unlimited(&c, &rel("memory", "memory.limit_in_bytes", "memory.max"));
    if swap {
        assert_unlimited(&c, "memory/memory.memsw.limit_in_bytes");
    }
    // the new values are what later updates build on
    c.rt(&["update", "--pids-limit", "20", &c.id]).ok();
    assert_unlimited(&c, &rel("memory", "memory.limit_in_bytes", "memory.max"));

    // negative numbers are values, not flags
    c.rt(&[
        "update",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "20000",
        &c.id,
    ])
    .ok();
    c.rt(&["update", "--cpu-quota", "-1", &c.id]).ok();
    if is_v2() {
        assert_unlimited(&c, "cpu.max");
    } else {
        assert_eq!(host_file(&c, "cpu/cpu.cfs_quota_us"), "-1");
    }
    c.exec(&[], &["true"]).ok();
}

#[test]
fn unified_needs_a_cgroup_v2_host() {
    require_root!();
    let unified = json!({"unified": {"pids.max": "10"}});
    let c = Ctr::new(
        "cg-unified",
        with_resources(&["sleep", "1000"], unified.clone()),
    );
    if is_v2() {
        c.create().ok();
        assert_eq!(host_file(&c, "pids.max"), "10");
        return;
    }
    // runc 1.1 and current runc alike refuse it unless the host is cgroup v2 only, hybrid
    // hosts included: `invalid configuration: cannot use unified on cgroup v1`
    c.create()
        .fails_with("invalid configuration: cannot use unified on cgroup v1")
        .one_error_line();
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
    // an empty map asks for nothing
    let mut cfg = with_resources(&["sleep", "1000"], json!({"unified": {}}));
    cfg["linux"]["cgroupsPath"] = json!(c.cgroups_path);
    c.write_config(&cfg);
    c.create().ok();
    // update refuses it as well
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    fs::write(&file, unified.to_string()).unwrap();
    c.rt(&["update", "--resources", file.to_str().unwrap(), &c.id])
        .fails_with("invalid configuration: cannot use unified on cgroup v1");
    assert_eq!(c.status(), "created");
}

/// The freezers that can hold a container's cgroup on this host: the v1 freezer hierarchy
/// and the cgroup2 tree (a hybrid host has both), as (directory, file, frozen value).
fn freezers(cgroup: &str) -> Vec<(String, &'static str, &'static str)> {
    let mut out = vec![];
    if is_v2() {
        out.push((format!("/sys/fs/cgroup{cgroup}"), "cgroup.freeze", "1"));
        return out;
    }
    if Path::new("/sys/fs/cgroup/freezer").is_dir() {
        out.push((
            format!("/sys/fs/cgroup/freezer{cgroup}"),
            "freezer.state",
            "FROZEN",
        ));
    }
    if Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        out.push((
            format!("/sys/fs/cgroup/unified{cgroup}"),
            "cgroup.freeze",
            "1",
        ));
    }
    out
}

/// A cgroup someone froze before the container came: create and run refuse it with runc's
/// message instead of hanging, and leave nothing (today's `run -d` hung in it for ever).
#[test]
fn create_refuses_a_frozen_cgroup() {
    require_root!();
    if systemd_driver() {
        eprintln!(
            "skip: a frozen cgroup made beforehand is a cgroupfs case (systemd makes the scope)"
        );
        return;
    }
    for (dir, file, value) in freezers(&format!("/rt-it-frozen-{}", std::process::id())) {
        if is_runc() && file == "cgroup.freeze" && !is_v2() {
            // runc 1.1.5 only looks at the v1 freezer on a hybrid host: it would hang.
            continue;
        }
        let c = Ctr::new("frozen", config_with_args(&["true"]));
        let cgroup = dir.rsplit('/').next().unwrap().to_string();
        let mut cfg = config_with_args(&["true"]);
        cfg["linux"]["cgroupsPath"] = json!(format!("/{cgroup}"));
        c.write_config(&cfg);
        fs::create_dir_all(&dir).unwrap();
        let _made = Unfreeze(dir.clone(), file);
        fs::write(format!("{dir}/{file}"), value).unwrap();
        for args in [
            vec!["run", "-d", "--bundle", c.bundle_str(), &c.id],
            vec!["create", "--bundle", c.bundle_str(), &c.id],
        ] {
            let out = c.rt(&args);
            out.fails_with("container's cgroup unexpectedly frozen");
            assert!(
                !c.root.path().join(&c.id).exists(),
                "{file}: state left after a refused {}",
                args[0]
            );
        }
        fs::write(format!("{dir}/{file}"), thawed(file)).unwrap();
        for d in cgroup_dirs(&format!("/{cgroup}")) {
            fs::remove_dir(&d).unwrap_or_else(|e| panic!("{d}: {e} (a process left in it?)"));
        }
    }
}

fn thawed(freezer_file: &str) -> &'static str {
    if freezer_file == "cgroup.freeze" {
        "0"
    } else {
        "THAWED"
    }
}

/// A cgroup the test froze itself: thawed and removed however the test ends.
struct Unfreeze(String, &'static str);

impl Drop for Unfreeze {
    fn drop(&mut self) {
        if Path::new(&self.0).exists() {
            let _ = fs::write(format!("{}/{}", self.0, self.1), thawed(self.1));
            let _ = fs::remove_dir(&self.0);
        }
    }
}

/// Paused, or frozen behind rt's back through the other freezer of a hybrid host: delete
/// --force thaws what holds the processes and kills them all.
#[test]
fn delete_force_of_a_frozen_container() {
    require_root!();
    for (i, (_, file, value)) in freezers("/x").into_iter().enumerate() {
        let c = Ctr::started(
            "delfrozen",
            config_with_args(&["sh", "-c", "sleep 1000 & sleep 1000"]),
        );
        c.rt(&["pause", &c.id]).ok();
        if i > 0 {
            // the freezer rt's pause does not use
            let dir = freezers(&c.cgroup)[i].0.clone();
            fs::write(format!("{dir}/{file}"), value).unwrap();
        }
        let t = std::time::Instant::now();
        c.delete(true).ok();
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{file}: delete took {:?}",
            t.elapsed()
        );
    }
}

/// A second container in a cgroup that already has processes: runc 1.1.5 warns and goes on
/// (newer runc refuses it); so does rt, naming how many it found.
#[test]
fn create_warns_about_a_busy_cgroup() {
    require_root!();
    let first = Ctr::started("busy1", config_with_args(&["sleep", "1000"]));
    let second = Ctr::new("busy2", config_with_args(&["sleep", "1000"]));
    let mut cfg = config_with_args(&["sleep", "1000"]);
    cfg["linux"]["cgroupsPath"] = json!(first.cgroups_path);
    second.write_config(&cfg);
    let out = second.create();
    out.ok();
    assert!(
        out.stderr.contains("container's cgroup is not empty"),
        "{out:#?}"
    );
    second.delete(true).ok();
    drop(first);
}

/// `--systemd-cgroup` where systemd is not PID 1: runc's refusal, before anything is made.
#[test]
fn systemd_driver_refused_without_systemd() {
    require_root!();
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("skip: systemd runs this host; the refusal is for hosts without it");
        return;
    }
    let mut cfg = config_with_args(&["true"]);
    let c = Ctr::new("sdnone", cfg.clone());
    cfg["linux"]["cgroupsPath"] = json!(format!("system.slice:rt-it:{}", c.id));
    c.write_config(&cfg);
    for cmd in ["create", "run"] {
        let out = c.rt(&["--systemd-cgroup", cmd, "--bundle", c.bundle_str(), &c.id]);
        out.fails_with("systemd not running on this host, cannot use systemd cgroups manager")
            .one_error_line();
        assert!(!c.root.path().join(&c.id).exists(), "{cmd}: state dir made");
        assert!(
            cgroup_dirs(&format!("/system.slice/rt-it-{}.scope", c.id)).is_empty(),
            "{cmd}: a cgroup was made"
        );
    }
}

/// runc's own test shape: access letters beyond r, w and m ("rwa") are ignored, not refused,
/// and `update` of other limits keeps the device rules in force (the container's /dev/null
/// keeps working, /dev/kmsg stays denied).
#[test]
fn device_rule_letters_and_update() {
    require_root!();
    let mut cfg = with_resources(
        &[
            "sh",
            "-c",
            "while :; do echo x 2>/dev/null >/dev/null || echo null >> /denied; \
             head -c 1 /dev/kmsg >/dev/null 2>&1 && echo kmsg >> /allowed; done",
        ],
        json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwa"}
        ]}),
    );
    cfg["linux"]["devices"] = json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]);
    let c = Ctr::started("updev", cfg);
    for n in 0..30 {
        c.rt(&["update", "--pids-limit", &(100 + n).to_string(), &c.id])
            .ok();
    }
    let root = c.bundle.path().join("rootfs");
    for (f, what) in [
        ("denied", "/dev/null was denied"),
        ("allowed", "/dev/kmsg was readable"),
    ] {
        assert!(
            !root.join(f).exists(),
            "{what} {} time(s)",
            fs::read_to_string(root.join(f))
                .unwrap_or_default()
                .lines()
                .count()
        );
    }
}
