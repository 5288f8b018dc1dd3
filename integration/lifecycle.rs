//! create → start → state → kill → delete, list, run, spec and the global flags.

use crate::common::*;
use crate::require_root;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A process that runs until the test creates /tmp/go in its rootfs, so each state is
/// observed deterministically, and that leaves /tmp/ran to prove it ran at all.
fn gated_config() -> Value {
    let mut c = config_with_args(&[
        "sh",
        "-c",
        "touch /tmp/ran; while [ ! -e /tmp/go ]; do sleep 0.02; done",
    ]);
    c["root"]["readonly"] = json!(false);
    c
}

fn is_timestamp(s: &str) -> bool {
    // RFC 3339 as runc writes it: 2026-11-23T15:51:32.162199088Z
    let b = s.as_bytes();
    s.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && s[..4].bytes().all(|c| c.is_ascii_digit())
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

#[test]
fn create_start_stop_delete() {
    require_root!();
    let c = Ctr::new("life", gated_config());
    c.create().ok();

    let s = c.state();
    assert_eq!(s["status"], "created", "{s}");
    assert_eq!(s["id"], c.id.as_str());
    assert_eq!(s["bundle"], c.bundle_str());
    assert_eq!(
        s["rootfs"],
        c.bundle.path().join("rootfs").to_str().unwrap()
    );
    assert!(!s["ociVersion"].as_str().unwrap().is_empty());
    let created = s["created"]
        .as_str()
        .unwrap_or_else(|| panic!("no created: {s}"));
    assert!(is_timestamp(created), "created is not RFC 3339: {created}");
    let pid = s["pid"].as_i64().unwrap();
    assert!(pid > 0, "{s}");
    // In every hierarchy, v1 and cgroup2 alike, before start (init is born in the cgroup2 one
    // and moves itself into the v1 ones).
    assert_in_cgroup_everywhere(pid, &c.cgroup, "init");

    // The user's process must not run before `start`.
    std::thread::sleep(Duration::from_millis(200));
    let ran = c.bundle.path().join("rootfs/tmp/ran");
    assert!(!ran.exists(), "process ran before start");

    c.start().ok();
    let s = c.state();
    assert_eq!(s["status"], "running", "{s}");
    assert_eq!(s["pid"].as_i64().unwrap(), pid, "pid changed on start");
    assert_eq!(s["created"], created);
    let deadline = Instant::now() + TIMEOUT;
    while !ran.exists() {
        assert!(Instant::now() < deadline, "process never ran");
        std::thread::sleep(Duration::from_millis(10));
    }

    // start of a running container is an error, and changes nothing
    let again = c.start();
    assert_ne!(again.code(), 0, "second start succeeded: {again:#?}");
    assert_eq!(c.status(), "running");

    fs::write(c.bundle.path().join("rootfs/tmp/go"), "").unwrap();
    let s = c.wait_status("stopped");
    // runc reports pid 0 once the init is gone; callers treat 0 as "no process".
    assert_eq!(s["pid"], 0, "{s}");

    c.delete(false).ok();
    c.rt(&["state", &c.id]).fails_with("does not exist");
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

fn kill_with(signal: &str) {
    let c = Ctr::new("kill", example("sleep"));
    c.create().ok();
    c.start().ok();
    assert_eq!(c.status(), "running");
    c.kill(false, Some(signal)).ok();
    c.wait_status("stopped");
}

#[test]
fn kill_number() {
    require_root!();
    kill_with("9");
}

#[test]
fn kill_name() {
    require_root!();
    kill_with("KILL");
}

#[test]
fn kill_sig_name() {
    require_root!();
    kill_with("SIGKILL");
}

#[test]
fn kill_default_is_sigterm() {
    require_root!();
    // pid 1 ignores signals it has no handler for, so the trap is what makes TERM count.
    let mut cfg = config_with_args(&[
        "sh",
        "-c",
        "trap 'echo TERM > /tmp/sig; exit 0' TERM; touch /tmp/ready; while :; do sleep 0.02; done",
    ]);
    cfg["root"]["readonly"] = json!(false);
    let c = Ctr::new("term", cfg);
    c.create().ok();
    c.start().ok();
    wait_file(&c.bundle.path().join("rootfs/tmp/ready"));
    c.kill(false, None).ok();
    c.wait_status("stopped");
    let sig = fs::read_to_string(c.bundle.path().join("rootfs/tmp/sig")).unwrap();
    assert_eq!(sig.trim(), "TERM");
}

fn wait_file(p: &Path) {
    let deadline = Instant::now() + TIMEOUT;
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_all_reaches_every_process() {
    require_root!();
    // Without a pid namespace, killing the init alone would leave its child running:
    // only --all empties the cgroup.
    let mut cfg = config_with_args(&["sh", "-c", "sleep 1000 & exec sleep 1001"]);
    let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    let c = Ctr::new("killall", cfg);
    c.create().ok();
    c.start().ok();
    let procs = || -> Vec<String> {
        let mut all = vec![];
        for d in cgroup_dirs(&c.cgroup) {
            if let Ok(s) = fs::read_to_string(format!("{d}/cgroup.procs")) {
                all.extend(s.lines().map(String::from));
            }
        }
        all.sort();
        all.dedup();
        all
    };
    let deadline = Instant::now() + TIMEOUT;
    while procs().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "never saw 2 processes: {:?}",
            procs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    c.kill(true, Some("KILL")).ok();
    c.wait_status("stopped");
    let deadline = Instant::now() + TIMEOUT;
    while !procs().is_empty() {
        assert!(Instant::now() < deadline, "left in cgroup: {:?}", procs());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_stopped_container_fails() {
    require_root!();
    let c = Ctr::new("killstopped", config_with_args(&["true"]));
    c.create().ok();
    c.start().ok();
    c.wait_status("stopped");
    c.kill(false, Some("9"))
        .fails_with("container not running")
        .one_error_line();
    // --all is the exception, as in runc: nothing left to signal is not an error.
    c.kill(true, Some("9")).ok();
}

#[test]
fn delete_running_needs_force() {
    require_root!();
    let c = Ctr::new("delrun", example("sleep"));
    c.create().ok();
    c.start().ok();
    // runc: `cannot delete container X that is not stopped: running`
    c.delete(false).fails_with("not stopped").one_error_line();
    assert_eq!(
        c.status(),
        "running",
        "a refused delete must change nothing"
    );
    c.delete(true).ok();
    c.rt(&["state", &c.id]).fails_with("does not exist");
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

#[test]
fn delete_created_without_force() {
    require_root!();
    let c = Ctr::new("delcreated", example("sleep"));
    c.create().ok();
    c.delete(false).ok();
    c.rt(&["state", &c.id]).fails_with("does not exist");
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

#[test]
fn delete_after_init_died() {
    require_root!();
    let c = Ctr::new("deldead", example("sleep"));
    c.create().ok();
    c.start().ok();
    let pid = c.state()["pid"].as_i64().unwrap() as i32;
    // killed behind the runtime's back, as the OOM killer would
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    c.wait_status("stopped");
    c.delete(false).ok();
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

#[test]
fn delete_unknown() {
    require_root!();
    let c = Ctr::new("delunknown", example("sleep"));
    // runc treats a forced delete of a missing container as done: callers retry deletes.
    c.delete(true).ok();
    c.delete(false)
        .fails_with("does not exist")
        .one_error_line();
}

#[test]
fn list_formats() {
    require_root!();
    let c = Ctr::new("list", example("sleep"));
    let empty = c.rt(&["list"]);
    empty.ok();
    let lines: Vec<_> = empty.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{empty:#?}");
    let header: Vec<_> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );

    c.create().ok();
    let s = c.state();
    let out = c.rt(&["list"]);
    out.ok();
    let lines: Vec<_> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:#?}");
    let row: Vec<_> = lines[1].split_whitespace().collect();
    let pid = s["pid"].to_string();
    assert_eq!(
        row,
        [
            c.id.as_str(),
            pid.as_str(),
            "created",
            c.bundle_str(),
            s["created"].as_str().unwrap(),
            "root"
        ],
        "{out:#?}"
    );

    let q = c.rt(&["list", "-q"]);
    q.ok();
    assert_eq!(q.stdout, format!("{}\n", c.id));

    let j = c.rt(&["list", "--format", "json"]);
    j.ok();
    let v: Value = serde_json::from_str(&j.stdout).unwrap_or_else(|e| panic!("{e}: {j:#?}"));
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 1, "{v}");
    check_state_schema(&arr[0]);
    assert_eq!(arr[0]["id"], c.id.as_str());
    assert_eq!(arr[0]["status"], "created");
    assert_eq!(arr[0]["pid"], s["pid"]);
    assert_eq!(arr[0]["bundle"], c.bundle_str());
    assert_eq!(arr[0]["owner"], "root");
}

#[test]
fn run_prints_and_passes_exit_status() {
    require_root!();
    let c = Ctr::new("run0", example("hello"));
    let out = c.run();
    out.ok();
    assert_eq!(out.stdout, "hello from rt\n");

    let c = Ctr::new("run3", config_with_args(&["sh", "-c", "exit 3"]));
    assert_eq!(c.run().code(), 3);
    // a foreground run removes the container when it ends
    c.rt(&["state", &c.id]).fails_with("does not exist");
}

#[test]
fn run_killed_by_signal_is_128_plus_n() {
    require_root!();
    let c = Ctr::new("runsig", example("sleep"));
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = c.cmd(&["run", "--bundle", c.bundle_str(), &c.id]);
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(dir.path().join("o")).unwrap())
        .stderr(fs::File::create(dir.path().join("e")).unwrap());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let o = c.rt(&["state", &c.id]);
        if o.status.success() && o.stdout.contains("\"running\"") {
            break;
        }
        assert!(Instant::now() < deadline, "never running: {o:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    c.track_pid();
    c.kill(false, Some("KILL")).ok();
    let st = wait_timeout(&mut child, "run");
    assert_eq!(st.code(), Some(128 + 9));
}

#[test]
fn run_detach() {
    require_root!();
    let c = Ctr::new("rund", example("sleep"));
    let out = c.rt(&["run", "--detach", "--bundle", c.bundle_str(), &c.id]);
    out.ok();
    c.track_pid();
    let s = c.state();
    assert_eq!(s["status"], "running", "{s}");
    assert!(s["pid"].as_i64().unwrap() > 0);
    c.delete(true).ok();
}

#[test]
fn create_pid_file() {
    require_root!();
    let c = Ctr::new("pidfile", example("sleep"));
    let pf = c.bundle.path().join("init.pid");
    let out = c.rt(&[
        "create",
        "--bundle",
        c.bundle_str(),
        "--pid-file",
        pf.to_str().unwrap(),
        &c.id,
    ]);
    out.ok();
    let pid = c.state()["pid"].as_i64().unwrap();
    let text = fs::read_to_string(&pf).unwrap();
    assert_eq!(text.trim(), pid.to_string(), "pid file {text:?}");
    // runc writes the bare number, no newline
    if is_runc() {
        assert_eq!(text, pid.to_string());
    }
}

#[test]
fn spec_writes_config_and_refuses_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let out = run_cmd(rt_cmd(root.path(), dir.path(), &["spec"]), Stdio::null());
    out.ok();
    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    assert!(
        v["ociVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{v}"
    );
    assert_eq!(v["root"]["path"], "rootfs");
    assert!(v["process"]["args"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    // current runc's default (libcontainer/specconv's example)
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(v["process"]["capabilities"][set], caps, "{set}");
    }
    if !is_runc() {
        // runc 1.1.5 still lists them; current runc dropped both
        assert!(v["process"]["capabilities"].get("ambient").is_none(), "{v}");
        assert!(
            v["process"]["capabilities"].get("inheritable").is_none(),
            "{v}"
        );
    }
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    let mut want = vec!["pid", "network", "ipc", "uts", "mount"];
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        want.push("cgroup");
    }
    assert_eq!(ns, want);
    assert_eq!(
        v["linux"]["maskedPaths"],
        json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ])
    );
    assert_eq!(
        v["linux"]["readonlyPaths"],
        json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ])
    );

    let again = run_cmd(rt_cmd(root.path(), dir.path(), &["spec"]), Stdio::null());
    // runc: `File config.json exists. Remove it first`
    again.fails_with("exists").one_error_line();

    let other = tempfile::tempdir().unwrap();
    let b = run_cmd(
        rt_cmd(
            root.path(),
            dir.path(),
            &["spec", "--bundle", other.path().to_str().unwrap()],
        ),
        Stdio::null(),
    );
    b.ok();
    assert!(other.path().join("config.json").is_file());
}

#[test]
fn version_shape() {
    let root = tempfile::tempdir().unwrap();
    let out = run_cmd(
        rt_cmd(root.path(), root.path(), &["--version"]),
        Stdio::null(),
    );
    out.ok();
    let lines: Vec<_> = out.stdout.lines().collect();
    let first: Vec<_> = lines[0].split(' ').collect();
    assert_eq!(first.len(), 3, "{out:#?}");
    assert_eq!(first[1], "version", "{out:#?}");
    assert!(!first[2].is_empty());
    let spec = lines
        .iter()
        .find_map(|l| l.strip_prefix("spec: "))
        .unwrap_or_else(|| panic!("no spec line: {out:#?}"));
    let parts: Vec<_> = spec.split(['.', '-']).collect();
    assert!(parts.len() >= 3 && parts[0] == "1", "spec {spec}");
    assert!(
        parts[1].parse::<u32>().is_ok() && parts[2].parse::<u32>().is_ok(),
        "spec {spec}"
    );
}

#[test]
fn log_json_error_line() {
    require_root!();
    let c = Ctr::new("logjson", example("sleep"));
    let log = c.bundle.path().join("log.json");
    let out = c.rt(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        &c.id,
    ]);
    // the log gets the error, and so does stderr: a person running it sees it too
    out.fails_with("does not exist").one_error_line();
    let text = fs::read_to_string(&log).unwrap();
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains("\"error\""))
        .unwrap_or_else(|| {
            panic!("no error line in log: {text:?}");
        });
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert_eq!(v["level"], "error", "{v}");
    assert!(v["msg"].as_str().unwrap().contains("does not exist"), "{v}");
    assert!(v["time"].as_str().is_some_and(is_timestamp), "{v}");
}

#[test]
fn root_flag_both_forms() {
    require_root!();
    let c = Ctr::new("rootform", example("sleep"));
    c.create().ok();
    let eq = format!("--root={}", c.root.path().display());
    let out = run_cmd(
        {
            let mut cmd = std::process::Command::new(rt_bin());
            cmd.args([eq.as_str(), "list", "-q"]);
            cmd
        },
        Stdio::null(),
    );
    out.ok();
    assert_eq!(out.stdout, format!("{}\n", c.id));
}

#[test]
fn annotations_in_state_and_list() {
    require_root!();
    let mut cfg = example("sleep");
    cfg["annotations"] = json!({"org.rt.test": "yes"});
    let c = Ctr::new("annot", cfg);
    c.create().ok();
    assert_eq!(c.state()["annotations"], json!({"org.rt.test": "yes"}));
    let j = c.rt(&["list", "--format", "json"]);
    j.ok();
    let v: Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v[0]["annotations"], json!({"org.rt.test": "yes"}), "{v}");
}

#[test]
fn state_json_field_order_and_owner() {
    require_root!();
    let c = Ctr::new("fields", example("sleep"));
    c.create().ok();
    let out = c.rt(&["state", &c.id]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    // runc's exact set when there are no annotations; callers decode these by name
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "bundle",
            "created",
            "id",
            "ociVersion",
            "owner",
            "pid",
            "rootfs",
            "status"
        ],
        "{v}"
    );
    // runc leaves owner empty in `state` but fills it in `list`
    assert_eq!(v["owner"], "", "{v}");
    // pretty-printed with two-space indents, as runc does
    assert!(out.stdout.starts_with("{\n  \"ociVersion\""), "{out:#?}");
}

#[test]
fn kill_created_then_start_fails() {
    require_root!();
    let c = Ctr::new("killcreated", example("sleep"));
    c.create().ok();
    // a created container's init can be signalled before start
    c.kill(false, Some("KILL")).ok();
    c.wait_status("stopped");
    c.start()
        .fails_with("cannot start a container that has stopped")
        .one_error_line();
}

#[test]
fn start_twice_and_after_exit() {
    require_root!();
    let c = Ctr::new("starttwice", gated_config());
    c.create().ok();
    c.start().ok();
    c.start()
        .fails_with("cannot start an already running container")
        .one_error_line();
    fs::write(c.bundle.path().join("rootfs/tmp/go"), "").unwrap();
    c.wait_status("stopped");
    c.start()
        .fails_with("cannot start a container that has stopped")
        .one_error_line();
}

#[test]
fn kill_bad_signal() {
    require_root!();
    let c = Ctr::new("badsig", example("sleep"));
    c.create().ok();
    c.kill(false, Some("NOSUCH"))
        .fails_with("unknown signal \"NOSUCH\"")
        .one_error_line();
    // runc passes unknown numbers to the kernel: `unable to signal init: invalid argument`
    c.kill(false, Some("99"))
        .fails_with("invalid argument")
        .one_error_line();
    // signal 0 only probes
    c.kill(false, Some("0")).ok();
    assert_eq!(c.status(), "created");
}

#[test]
fn log_text_error_line() {
    require_root!();
    let c = Ctr::new("logtext", example("sleep"));
    let log = c.bundle.path().join("log.txt");
    let out = c.rt(&["--log", log.to_str().unwrap(), "state", &c.id]);
    out.fails_with("does not exist");
    let text = fs::read_to_string(&log).unwrap();
    // logrus text: time="…" level=error msg="container does not exist"
    let line = text
        .lines()
        .find(|l| l.contains("level=error"))
        .unwrap_or_else(|| panic!("no error line in log: {text:?}"));
    assert!(line.starts_with("time=\""), "{line}");
    assert!(
        line.contains(" msg=\"") && line.contains("does not exist"),
        "{line}"
    );
}

#[test]
fn root_dir_made_on_demand() {
    require_root!();
    let c = Ctr::new("rootdir", example("sleep"));
    let nested = c.root.path().join("a/b");
    // rt_cmd, not c.cmd: one --root only
    let rt = |args: &[&str]| run_cmd(rt_cmd(&nested, c.bundle.path(), args), Stdio::null());
    // a missing root is an empty one
    let out = rt(&["list", "-q"]);
    out.ok();
    assert_eq!(out.stdout, "");
    rt(&["create", "--bundle", c.bundle_str(), &c.id]).ok();
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&nested).unwrap().permissions().mode() & 0o777;
    // state holds host paths and pids: only root may read the root dir
    assert_eq!(mode, 0o700, "root dir mode {mode:o}");
    rt(&["delete", "--force", &c.id]).ok();
    assert!(!nested.join(&c.id).exists());
}

#[test]
fn run_passes_stdin() {
    require_root!();
    let c = Ctr::new("runstdin", config_with_args(&["cat"]));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::write(&input, "fed through stdin\n").unwrap();
    let out = run_cmd(
        c.cmd(&["run", "--bundle", c.bundle_str(), &c.id]),
        Stdio::from(fs::File::open(&input).unwrap()),
    );
    out.ok();
    assert_eq!(out.stdout, "fed through stdin\n");
}

#[test]
fn run_missing_binary_exits_1() {
    require_root!();
    let c = Ctr::new("runnobin", config_with_args(&["nope"]));
    let out = c.run();
    assert_eq!(out.code(), 1, "{out:#?}");
    out.fails_with("exec: \"nope\": executable file not found in $PATH")
        .one_error_line();
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}
