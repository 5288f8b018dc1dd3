//! Tests against the running kernel (need root; skip with a printed reason otherwise).
//! Layout-injected tests that run anywhere are in tests_offline.rs.
//!
//! Every real test uses its own top-level cgroup "/rt-test-<pid>-<n>" and a guard that kills
//! its children and removes the cgroup on drop, so nothing is left behind even on failure.
use super::*;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Tests that change (and restore) the cgroup2 root's subtree_control run one at a time, or
/// one's restore would pull a controller from under the other.
static UNIFIED_ROOT: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(super) fn lock_unified_root() -> std::sync::MutexGuard<'static, ()> {
    UNIFIED_ROOT.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn unique_path() -> String {
    format!(
        "/rt-test-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

pub(super) struct Guard {
    pub(super) m: CgroupManager,
    pub(super) children: Vec<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        let _ = self.m.thaw();
        for c in &mut self.children {
            let _ = c.wait();
        }
        let _ = self.m.remove();
    }
}

impl Guard {
    pub(super) fn spawn_sleep(&mut self) -> i32 {
        let child = Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("spawning sleep");
        let pid = child.id() as i32;
        self.children.push(child);
        self.m.add_pid(pid).expect("add_pid");
        pid
    }
}

/// A created cgroup on this host, or None (after printing why) when the test cannot run.
pub(super) fn setup(test: &str) -> Option<Guard> {
    if !nix::unistd::geteuid().is_root() {
        println!("skip: {test}: needs root to create cgroups");
        return None;
    }
    if Layout::host().is_err() {
        println!("skip: {test}: no cgroup filesystem mounted");
        return None;
    }
    let m = CgroupManager::new(Some(&unique_path()), "unused").expect("new");
    let g = Guard {
        m,
        children: Vec::new(),
    };
    g.m.create().expect("create");
    Some(g)
}

pub(super) fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("resources json")
}

pub(super) fn read(dir: &Path, file: &str) -> String {
    fs::read(dir, file).unwrap().trim().to_string()
}

fn skip_unless(cond: bool, test: &str, reason: &str) -> bool {
    if !cond {
        println!("skip: {test}: {reason}");
    }
    !cond
}

#[test]
fn host_mode_matches_statfs() {
    let expected = match mode::detect_by_statfs(Path::new(mode::CGROUP_ROOT)) {
        Ok(m) => m,
        Err(e) => {
            println!("skip: host_mode_matches_statfs: {e:#}");
            return;
        }
    };
    assert_eq!(CgroupManager::mode(), expected);
    println!("host cgroup mode: {expected:?}");
}

#[test]
fn create_apply_and_read_back() {
    let Some(g) = setup("create_apply_and_read_back") else {
        return;
    };
    let r = res(r#"{"memory":{"limit":67108864},"pids":{"limit":32},"cpu":{"shares":512}}"#);
    g.m.apply(&r).expect("apply");
    match g.m.layout_mode() {
        Mode::V2 => {
            let d = g.m.unified_dir().unwrap();
            assert_eq!(read(d, "memory.max"), "67108864");
            assert_eq!(read(d, "pids.max"), "32");
            assert_eq!(
                read(d, "cpu.weight"),
                convert::shares_to_weight(512).to_string()
            );
        }
        Mode::V1 | Mode::Hybrid => {
            assert_eq!(
                read(g.m.v1_dir("memory").unwrap(), "memory.limit_in_bytes"),
                "67108864"
            );
            assert_eq!(read(g.m.v1_dir("pids").unwrap(), "pids.max"), "32");
            assert_eq!(read(g.m.v1_dir("cpu").unwrap(), "cpu.shares"), "512");
        }
    }
    // Every hierarchy got a directory (hybrid: the unified one too).
    for d in g.m.dirs() {
        assert!(d.is_dir(), "{} missing", d.display());
    }
}

#[test]
fn memory_swap_cpu_details() {
    let Some(g) = setup("memory_swap_cpu_details") else {
        return;
    };
    let mode = g.m.layout_mode();
    let memdir = if mode == Mode::V2 {
        g.m.unified_dir()
    } else {
        g.m.v1_dir("memory")
    }
    .unwrap();
    let swap_file = if mode == Mode::V2 {
        "memory.swap.max"
    } else {
        "memory.memsw.limit_in_bytes"
    };
    if skip_unless(
        fs::exists(memdir, swap_file),
        "memory_swap_cpu_details",
        &format!("no {swap_file} (swap accounting off)"),
    ) {
        return;
    }
    let r = res(
        r#"{"memory":{"limit":33554432,"swap":67108864,"reservation":16777216},
                   "cpu":{"quota":50000,"period":100000}}"#,
    );
    g.m.apply(&r).expect("apply");
    if mode == Mode::V2 {
        assert_eq!(read(memdir, "memory.swap.max"), "33554432");
        assert_eq!(read(memdir, "memory.low"), "16777216");
        assert_eq!(read(memdir, "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read(memdir, "memory.memsw.limit_in_bytes"), "67108864");
        assert_eq!(read(memdir, "memory.soft_limit_in_bytes"), "16777216");
        let cpu = g.m.v1_dir("cpu").unwrap();
        assert_eq!(read(cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(cpu, "cpu.cfs_period_us"), "100000");
        // Shrinking both limits needs the opposite write order; must still work.
        g.m.apply(&res(r#"{"memory":{"limit":16777216,"swap":20971520}}"#))
            .expect("shrink");
        assert_eq!(read(memdir, "memory.limit_in_bytes"), "16777216");
        assert_eq!(read(memdir, "memory.memsw.limit_in_bytes"), "20971520");
        g.m.apply(&res(
            r#"{"memory":{"swappiness":10,"disableOOMKiller":true}}"#,
        ))
        .expect("swappiness");
        assert_eq!(read(memdir, "memory.swappiness"), "10");
        assert!(fs::read(memdir, "memory.oom_control")
            .unwrap()
            .contains("oom_kill_disable 1"));
    }
}

#[test]
fn kernel_memory_where_supported() {
    let Some(g) = setup("kernel_memory_where_supported") else {
        return;
    };
    let Some(dir) = g.m.v1_dir("memory") else {
        println!(
            "skip: kernel_memory_where_supported: no v1 memory hierarchy (v2 has no kmem limits)"
        );
        return;
    };
    let r = res(r#"{"memory":{"kernel":8388608,"kernelTCP":4194304}}"#);
    if !fs::exists(dir, "memory.kmem.limit_in_bytes") {
        g.m.apply(&r)
            .expect("kernel memory is ignored where the kernel has no file, like runc");
        println!("skip: kernel_memory_where_supported: no memory.kmem.limit_in_bytes");
        return;
    }
    g.m.apply(&r).expect("apply kmem");
    if read(dir, "memory.kmem.limit_in_bytes") != "8388608" {
        println!("skip: kernel_memory_where_supported: kernel accepts but ignores memory.kmem.limit_in_bytes");
        return;
    }
    assert_eq!(read(dir, "memory.kmem.tcp.limit_in_bytes"), "4194304");
}

#[test]
fn blkio_weight_where_supported() {
    let Some(g) = setup("blkio_weight_where_supported") else {
        return;
    };
    let r = res(r#"{"blockIO":{"weight":500}}"#);
    let (dir, files): (&Path, &[&str]) = match g.m.layout_mode() {
        Mode::V2 => (g.m.unified_dir().unwrap(), &["io.bfq.weight", "io.weight"]),
        _ => match g.m.v1_dir("blkio") {
            Some(d) => (d, &["blkio.weight", "blkio.bfq.weight"]),
            None => {
                println!("skip: blkio_weight_where_supported: no blkio hierarchy");
                return;
            }
        },
    };
    let Some(file) = files.iter().find(|f| fs::exists(dir, f)) else {
        let e =
            g.m.apply(&r)
                .expect_err("a requested weight without a file must fail");
        assert!(format!("{e:#}").contains(files[0]), "{e:#}");
        println!("skip: blkio_weight_where_supported: kernel has none of {files:?}");
        return;
    };
    g.m.apply(&r).expect("apply weight");
    let got = read(dir, file);
    let want = if *file == "io.weight" {
        convert::blkio_weight_to_io_weight(500).to_string()
    } else {
        "500".into()
    };
    assert!(got.ends_with(&want), "{file}: {got}");
    if *file != "blkio.weight" {
        println!("note: blkio_weight_where_supported: kernel has no blkio.weight; used {file}");
    }
}

#[test]
fn cpuset_is_inherited_and_settable() {
    let Some(g) = setup("cpuset_is_inherited_and_settable") else {
        return;
    };
    let dir = match g.m.layout_mode() {
        Mode::V2 => {
            let d = g.m.unified_dir().unwrap();
            if skip_unless(
                fs::exists(d, "cpuset.cpus"),
                "cpuset_is_inherited_and_settable",
                "cpuset not delegated",
            ) {
                return;
            }
            d
        }
        _ => match g.m.v1_dir("cpuset") {
            Some(d) => d,
            None => {
                println!("skip: cpuset_is_inherited_and_settable: no cpuset hierarchy");
                return;
            }
        },
    };
    if g.m.layout_mode() != Mode::V2 {
        assert!(
            !read(dir, "cpuset.cpus").is_empty(),
            "cpus not copied from the parent"
        );
        assert!(
            !read(dir, "cpuset.mems").is_empty(),
            "mems not copied from the parent"
        );
    }
    g.m.apply(&res(r#"{"cpu":{"cpus":"0","mems":"0"}}"#))
        .expect("apply cpuset");
    assert_eq!(read(dir, "cpuset.cpus"), "0");
}

#[test]
fn pids_freeze_thaw_kill_remove() {
    let Some(mut g) = setup("pids_freeze_thaw_kill_remove") else {
        return;
    };
    let pid = g.spawn_sleep();
    assert_eq!(g.m.pids().unwrap(), vec![pid]);
    // The kernel agrees: every hierarchy (and hybrid's cgroup2 line "0::") shows our path.
    let own =
        mode::parse_proc_cgroup(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap());
    for m in &g.m.layout.v1 {
        let p = mode::own_path(&own, &m.subsystems).unwrap();
        assert!(p.ends_with(g.m.path()), "{}: {p}", m.data());
    }
    if g.m.unified_dir().is_some() {
        assert!(mode::own_path(&own, &[]).unwrap().ends_with(g.m.path()));
    }
    match g.m.freeze() {
        Ok(()) => {
            assert!(g.m.is_frozen().unwrap());
            // Cross-check with the kernel's own file.
            match g.m.freezer().unwrap() {
                Freezer::V1(d) => assert_eq!(read(d, "freezer.state"), "FROZEN"),
                Freezer::V2(d) => assert!(read(d, "cgroup.events").contains("frozen 1")),
            }
            g.m.thaw().unwrap();
            assert!(!g.m.is_frozen().unwrap());
        }
        Err(e) => println!("skip: freeze part of pids_freeze_thaw_kill_remove: {e:#}"),
    }
    g.m.kill_all(Signal::SIGKILL).expect("kill_all");
    let status = g.children[0].wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    g.children.clear();
    assert!(g.m.pids().unwrap().is_empty());
    g.m.remove().expect("remove");
    for d in g.m.dirs() {
        assert!(!d.exists(), "{} still exists", d.display());
    }
    // Removing twice is fine.
    g.m.remove().expect("second remove");
}

#[test]
fn kill_all_sends_other_signals() {
    let Some(mut g) = setup("kill_all_sends_other_signals") else {
        return;
    };
    g.spawn_sleep();
    g.spawn_sleep();
    assert_eq!(g.m.pids().unwrap().len(), 2);
    g.m.kill_all(Signal::SIGTERM).expect("kill_all");
    use std::os::unix::process::ExitStatusExt;
    for c in &mut g.children {
        assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGTERM));
    }
    g.children.clear();
    // A frozen-then-thawed cgroup must not stay frozen.
    if let Ok(f) = g.m.is_frozen() {
        assert!(!f);
    }
}

#[test]
fn nested_path_inherits_cpuset_at_every_level() {
    let Some(top) = setup("nested_path_inherits_cpuset_at_every_level") else {
        return;
    };
    let nested = format!("{}/a/b", top.m.path());
    let g = Guard {
        m: CgroupManager::new(Some(&nested), "unused").unwrap(),
        children: Vec::new(),
    };
    g.m.create().expect("create nested");
    let mut g = g;
    g.spawn_sleep();
    assert_eq!(g.m.pids().unwrap().len(), 1);
    drop(g);
    // `top`'s guard removes the whole tree, the intermediate "a" included.
    top.m.remove().unwrap();
    for d in top.m.dirs() {
        assert!(!d.exists(), "{} still exists", d.display());
    }
    assert!(
        !top.m.is_frozen().unwrap(),
        "a removed cgroup is not frozen"
    );
}

#[test]
fn remove_takes_nested_cgroups_leaf_first() {
    let Some(g) = setup("remove_takes_nested_cgroups_leaf_first") else {
        return;
    };
    for d in g.m.dirs() {
        std::fs::create_dir_all(d.join("inner/deeper")).unwrap();
    }
    g.m.remove().expect("remove");
    for d in g.m.dirs() {
        assert!(!d.exists(), "{} still exists", d.display());
    }
}

#[test]
fn devices_rules_v1() {
    let Some(g) = setup("devices_rules_v1") else {
        return;
    };
    let rules = r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":4,"minor":64,"access":"rw"}]}"#;
    if g.m.layout_mode() == Mode::V2 {
        let e =
            g.m.apply(&res(rules))
                .expect_err("custom v2 device rules are refused");
        assert!(format!("{e:#}").contains("eBPF"));
        println!("skip: devices_rules_v1: v2 host (device eBPF not implemented)");
        return;
    }
    let Some(dir) = g.m.v1_dir("devices") else {
        println!("skip: devices_rules_v1: no devices hierarchy");
        return;
    };
    g.m.apply(&res(rules)).expect("apply devices");
    let list = read(dir, "devices.list");
    assert!(list.contains("c 4:64 rw"), "{list}");
    assert!(
        list.contains("c 1:3 rwm"),
        "default /dev/null rule missing: {list}"
    );
    assert!(!list.contains("a *:* rwm"), "{list}");
}

#[test]
fn unified_and_hugetlb() {
    let Some(g) = setup("unified_and_hugetlb") else {
        return;
    };
    let r = res(r#"{"unified":{"cgroup.max.descendants":"10"}}"#);
    if g.m.layout_mode() == Mode::V2 {
        g.m.apply(&r).expect("apply unified");
        let u = g.m.unified_dir().unwrap();
        assert_eq!(read(u, "cgroup.max.descendants"), "10");
        assert!(g.m.apply(&res(r#"{"unified":{"../x":"1"}}"#)).is_err());
    } else {
        // As runc: unified keys need a cgroup v2 only host, hybrid included.
        let e =
            g.m.apply(&r)
                .expect_err("unified keys on a v1 or hybrid host");
        assert!(
            format!("{e:#}").contains("cannot use unified on cgroup v1"),
            "{e:#}"
        );
        // an empty map asks for nothing
        g.m.apply(&res(r#"{"unified":{}}"#)).unwrap();
    }
    if g.m.layout_mode() == Mode::V1 {
        println!("skip: hugetlb part of unified_and_hugetlb: pure v1 host");
        return;
    }
    let u = g.m.unified_dir().unwrap();

    let sizes = stats::hugepage_sizes();
    // Limits are rounded down to whole pages, so use a multiple of the page size.
    let Some(size) = sizes.iter().find(|s| *s == "2MB").or(sizes.first()) else {
        println!("skip: hugetlb part of unified_and_hugetlb: no huge page sizes");
        return;
    };
    let hybrid_v2_hugetlb = g.m.layout_mode() == Mode::Hybrid && g.m.v1_dir("hugetlb").is_none();
    let base = g.m.layout.unified.as_ref().unwrap().mountpoint.clone();
    let available = read(&base, "cgroup.controllers")
        .split_whitespace()
        .any(|c| c == "hugetlb");
    if g.m.v1_dir("hugetlb").is_none() && !available {
        println!("skip: hugetlb part of unified_and_hugetlb: no hugetlb controller");
        return;
    }
    let was_on = read(&base, "cgroup.subtree_control")
        .split_whitespace()
        .any(|c| c == "hugetlb");
    let unit: u64 = match &size[size.len() - 2..] {
        "GB" => 1 << 30,
        "MB" => 1 << 20,
        _ => 1 << 10,
    };
    let limit = size[..size.len() - 2].parse::<u64>().unwrap() * unit * 4;
    let r = res(&format!(
        r#"{{"hugepageLimits":[{{"pageSize":"{size}","limit":{limit}}}]}}"#
    ));
    let applied = g.m.apply(&r);
    let file = match g.m.v1_dir("hugetlb") {
        Some(d) => d.join(format!("hugetlb.{size}.limit_in_bytes")),
        None => u.join(format!("hugetlb.{size}.max")),
    };
    let got = std::fs::read_to_string(&file);
    if hybrid_v2_hugetlb {
        // Leave the host as we found it: turning hugetlb on for our test was our doing.
        let _ = g.m.remove();
        if !was_on {
            let _ = fs::write(&base, "cgroup.subtree_control", "-hugetlb");
        }
    }
    applied.expect("apply hugetlb");
    assert_eq!(got.unwrap().trim(), limit.to_string());
}

#[test]
fn missing_controller_is_an_error() {
    let Some(g) = setup("missing_controller_is_an_error") else {
        return;
    };
    if g.m.layout_mode() == Mode::V2 {
        let e = g.m.apply(&res(r#"{"network":{"classID":1}}"#)).unwrap_err();
        assert!(format!("{e:#}").contains("net_cls"));
        return;
    }
    if g.m.v1_dir("net_cls").is_some() {
        g.m.apply(&res(r#"{"network":{"classID":1048577}}"#))
            .expect("classid");
        assert_eq!(
            read(g.m.v1_dir("net_cls").unwrap(), "net_cls.classid"),
            "1048577"
        );
        return;
    }
    let e = g.m.apply(&res(r#"{"network":{"classID":1}}"#)).unwrap_err();
    assert!(format!("{e:#}").contains("net_cls"), "{e:#}");
}

#[test]
fn stats_and_oom() {
    let Some(mut g) = setup("stats_and_oom") else {
        return;
    };
    g.m.apply(&res(r#"{"pids":{"limit":100}}"#)).expect("apply");
    g.spawn_sleep();
    let s = g.m.stats().expect("stats");
    assert!(s.pids.current >= 1, "{s:?}");
    assert_eq!(s.pids.limit, 100);
    assert!(s.memory.usage.limit > 0);
    let v = serde_json::to_value(&s).unwrap();
    assert!(v["cpu"]["usage"].is_object() && v["memory"]["usage"].is_object());
    assert_eq!(g.m.oom_kills().expect("oom count"), 0);
}

#[test]
fn container_mounts_on_host() {
    let Some(g) = setup("container_mounts_on_host") else {
        return;
    };
    let mounts = g.m.container_mounts().unwrap();
    match g.m.layout_mode() {
        Mode::V2 => {
            assert_eq!(mounts.len(), 1);
            assert_eq!(mounts[0].fstype, "cgroup2");
        }
        mode => {
            assert_eq!(
                mounts.iter().filter(|m| m.fstype == "cgroup").count(),
                g.m.layout.v1.len()
            );
            assert_eq!(
                mounts.iter().any(|m| m.fstype == "cgroup2"),
                mode == Mode::Hybrid
            );
            for m in &mounts {
                assert!(m.host_dir.is_dir(), "{}", m.host_dir.display());
                assert!(
                    Path::new(mode::CGROUP_ROOT).join(&m.name).exists(),
                    "{}",
                    m.name
                );
            }
        }
    }
}

/// Rough cost of a container's cgroup lifetime; run with --ignored --nocapture.
#[test]
#[ignore]
fn timing_create_apply_remove() {
    let Some(g) = setup("timing") else { return };
    drop(g);
    let r = res(
        r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":67108864},"pids":{"limit":100},"cpu":{"shares":512}}"#,
    );
    let n = 50;
    let zero = std::time::Duration::ZERO;
    let (mut tc, mut ta, mut tr) = (zero, zero, zero);
    let start = std::time::Instant::now();
    for _ in 0..n {
        let m = CgroupManager::new(Some(&unique_path()), "x").unwrap();
        let t = std::time::Instant::now();
        m.create().unwrap();
        tc += t.elapsed();
        let t = std::time::Instant::now();
        m.apply(&r).unwrap();
        ta += t.elapsed();
        let t = std::time::Instant::now();
        m.remove().unwrap();
        tr += t.elapsed();
    }
    println!("create {:?} apply {:?} remove {:?}", tc / n, ta / n, tr / n);
    println!("create+apply+remove: {:?} per cgroup", start.elapsed() / n);
}
