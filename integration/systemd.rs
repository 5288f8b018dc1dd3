//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient
//! scope, its limits are unit properties as well as cgroup files, later commands find the
//! unit without the flag, and delete removes it. These need systemd as PID 1 (the test VM,
//! `make test-v2`); elsewhere they print `skip:`.

use crate::common::*;
use crate::require_root;
use serde_json::json;
use std::fs;
use std::path::Path;
use std::process::Command;

fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

macro_rules! require_systemd {
    () => {
        require_root!();
        if !systemd_runs() {
            eprintln!("skip: systemd is not PID 1 on this host");
            return;
        }
    };
}

/// `systemctl show UNIT -p NAME --value`
fn unit_prop(unit: &str, name: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", unit, "-p", name, "--value"])
        .output()
        .expect("systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A container whose cgroupsPath is `system.slice:rt-it:<id>`, so its unit is
/// `rt-it-<id>.scope` under any runtime.
fn sd_ctr(tag: &str, mut cfg: serde_json::Value) -> (Ctr, String) {
    let mut c = Ctr::new(tag, cfg.clone());
    cfg["linux"]["cgroupsPath"] = json!(format!("system.slice:rt-it:{}", c.id));
    c.write_config(&cfg);
    let unit = format!("rt-it-{}.scope", c.id);
    c.cgroup = format!("/system.slice/{unit}");
    (c, unit)
}

fn sd_create(c: &Ctr) {
    c.rt(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        c.bundle_str(),
        &c.id,
    ])
    .ok();
    c.track_pid();
}

fn host_dir(c: &Ctr) -> String {
    format!("/sys/fs/cgroup{}", c.cgroup)
}

fn read(dir: &str, file: &str) -> String {
    fs::read_to_string(format!("{dir}/{file}"))
        .unwrap_or_else(|e| panic!("{dir}/{file}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn systemd_scope_carries_the_limits() {
    require_systemd!();
    let mut cfg = config_with_args(&["sleep", "300"]);
    cfg["linux"]["resources"] = json!({
        "memory": {"limit": 64 << 20},
        "pids": {"limit": 42},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000}
    });
    let (c, unit) = sd_ctr("sdlim", cfg);
    sd_create(&c);
    assert_eq!(unit_prop(&unit, "ActiveState"), "active");
    assert_eq!(unit_prop(&unit, "Slice"), "system.slice");
    assert_eq!(unit_prop(&unit, "Delegate"), "yes");
    assert_eq!(unit_prop(&unit, "MemoryMax"), (64u64 << 20).to_string());
    assert_eq!(unit_prop(&unit, "TasksMax"), "42");
    assert_eq!(unit_prop(&unit, "CPUQuotaPerSecUSec"), "500ms");
    let pid = c.state()["pid"].as_i64().unwrap();
    let dir = host_dir(&c);
    assert!(
        read(&dir, "cgroup.procs")
            .lines()
            .any(|l| l == pid.to_string()),
        "init {pid} is not in {dir}"
    );
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(read(&dir, "memory.max"), (64u64 << 20).to_string());
        assert_eq!(read(&dir, "pids.max"), "42");
        assert_eq!(read(&dir, "cpu.max"), "50000 100000");
        // shares 512 as runc converts them
        assert_eq!(unit_prop(&unit, "CPUWeight"), "20");
        assert_eq!(read(&dir, "cpu.weight"), "20");
    }
    c.start().ok();

    // No --systemd-cgroup from here on: the container remembers its driver.
    c.rt(&["update", "--memory", "128M", "--pids-limit", "50", &c.id])
        .ok();
    assert_eq!(unit_prop(&unit, "MemoryMax"), (128u64 << 20).to_string());
    assert_eq!(unit_prop(&unit, "TasksMax"), "50");
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(read(&dir, "memory.max"), (128u64 << 20).to_string());
    }

    let pf = c.bundle.path().join("exec.pid");
    c.exec(
        &["-d", "--pid-file", pf.to_str().unwrap()],
        &["sleep", "300"],
    )
    .ok();
    let epid = fs::read_to_string(&pf).unwrap();
    assert!(
        read(&dir, "cgroup.procs").lines().any(|l| l == epid.trim()),
        "exec'd {epid} is not in {dir}"
    );
    c.rt(&["pause", &c.id]).ok();
    assert_eq!(c.raw_status(), "paused");
    c.rt(&["resume", &c.id]).ok();

    c.kill(false, Some("KILL")).ok();
    c.wait_status("stopped");
    c.delete(false).ok();
    assert!(!Path::new(&dir).exists(), "{dir} is left");
    let load = unit_prop(&unit, "LoadState");
    let active = unit_prop(&unit, "ActiveState");
    assert!(
        load == "not-found" || active == "inactive",
        "{unit} is left: LoadState={load} ActiveState={active}"
    );
}

#[test]
fn systemd_annotations_become_unit_properties() {
    require_systemd!();
    let mut cfg = config_with_args(&["sleep", "300"]);
    cfg["annotations"] = json!({
        "org.systemd.property.TimeoutStopSec": "uint64 7",
        "org.systemd.property.CollectMode": "'inactive-or-failed'",
    });
    let (c, unit) = sd_ctr("sdann", cfg);
    sd_create(&c);
    assert_eq!(unit_prop(&unit, "TimeoutStopUSec"), "7s");
    assert_eq!(unit_prop(&unit, "CollectMode"), "inactive-or-failed");
    c.delete(true).ok();
    assert!(!Path::new(&host_dir(&c)).exists());
}

/// `delete --force` of a running container stops its unit; nothing is left in systemd.
#[test]
fn systemd_force_delete_stops_the_unit() {
    require_systemd!();
    let (c, unit) = sd_ctr("sdfd", config_with_args(&["sleep", "300"]));
    sd_create(&c);
    c.start().ok();
    c.delete(true).ok();
    assert!(!Path::new(&host_dir(&c)).exists());
    assert_ne!(unit_prop(&unit, "ActiveState"), "active");
    assert_ne!(unit_prop(&unit, "ActiveState"), "failed");
}

/// A cgroupsPath that is not slice:prefix:name is refused with runc's words, before
/// anything exists (on any host: the path is read before systemd is asked).
#[test]
fn systemd_path_must_have_three_fields() {
    require_root!();
    let mut cfg = config_with_args(&["true"]);
    let c = Ctr::new("sdbad", cfg.clone());
    cfg["linux"]["cgroupsPath"] = json!(format!("/rt-it-{}", c.id));
    c.write_config(&cfg);
    let out = c.rt(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        c.bundle_str(),
        &c.id,
    ]);
    out.fails_with(
        "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups",
    )
    .one_error_line();
    assert!(!c.root.path().join(&c.id).exists());
}
