//! Rootless `--systemd-cgroup`: the container's scope is made by the user's own systemd (its
//! user@UID.service, reached on the user's session bus), in user.slice of that systemd's tree,
//! as runc makes it. Needs systemd as PID 1 with logind (the v2 guest of `make test-v2`); the
//! user is made per test and lingers while it runs (`User::with_systemd`). Elsewhere the
//! tests print `skip:`, but for the refusal where systemd is not running.

use super::harness::{RlCtr, User};
use crate::common::*;
use serde_json::json;
use std::fs;
use std::path::Path;
use std::process::Stdio;

/// The user's systemd's tree below /sys/fs/cgroup.
fn manager_cgroup(u: &User) -> String {
    format!("/user.slice/user-{0}.slice/user@{0}.service", u.uid)
}

/// `systemctl --user show UNIT -p NAME --value`, as the user.
fn unit_prop(u: &User, unit: &str, name: &str) -> String {
    let out = u.systemctl(&["show", unit, "-p", name, "--value"]);
    out.stdout.trim().to_string()
}

/// Whether the user's systemd still knows the unit (a failed or stopped one stays loaded
/// until reset).
fn unit_loaded(u: &User, unit: &str) -> bool {
    let out = u.systemctl(&["list-units", "--all", "--plain", "--no-legend", unit]);
    !out.stdout.trim().is_empty()
}

/// The cgroup2 path of a process, from /proc.
fn cgroup_of_pid(pid: i64) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup2 line in {text}"))
        .to_string()
}

fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.procs").exists()
}

/// Where there is no systemd, the flag is refused as for root, before anything is made.
#[test]
fn rootless_systemd_cgroup_needs_systemd() {
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("skip: systemd is PID 1 here (the refusal is for hosts without it)");
        return;
    }
    let Some(u) = User::new() else { return };
    let mut c = RlCtr::new(&u, "nosd").with_args(&["true"]);
    c.flags = vec!["--systemd-cgroup"];
    let out = c.run();
    out.fails_with("systemd not running on this host, cannot use systemd cgroups manager");
    if !is_runc() {
        out.one_error_line();
    }
    assert!(c.leftovers().is_empty(), "{:?}", c.leftovers());
}

/// Without the user's bus (no `$DBUS_SESSION_BUS_ADDRESS`, nothing at `$XDG_RUNTIME_DIR/bus`),
/// the user is told where the bus should be; nothing is left behind.
#[test]
fn rootless_systemd_cgroup_without_a_user_bus_fails_clearly() {
    if !Path::new("/run/systemd/system").is_dir() {
        eprintln!("skip: systemd is not PID 1 on this host");
        return;
    }
    if !pure_v2() {
        eprintln!("skip: not a pure cgroup v2 host");
        return;
    }
    let Some(u) = User::new() else { return };
    let mut c = RlCtr::new(&u, "nobus").with_args(&["true"]);
    c.flags = vec!["--systemd-cgroup"];
    let mut cmd = c.cmd(&["run", "--bundle", c.bundle_str(), &c.id]);
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
    let out = run_cmd(cmd, Stdio::null());
    // both name the package that gives a user its bus
    out.fails_with("dbus-user-session");
    if !is_runc() {
        out.one_error_line();
    }
    assert!(c.leftovers().is_empty(), "{:?}", c.leftovers());
}

/// The whole life of a container on the user's systemd, the runtime run by the user from
/// outside that systemd's tree (as from a login session): the scope with its limits, exec,
/// ps, update (unit and files), pause/resume, kill --all, delete (unit and cgroup gone). And
/// exec from inside the user's tree (a scope of the user's systemd, where podman runs conmon),
/// whose process joins the container's scope.
#[test]
fn user_systemd_scope_lifecycle() {
    let Some(u) = User::with_systemd() else {
        return;
    };
    let mut c = RlCtr::new(&u, "usd").with_args(&["sleep", "1000"]);
    c.flags = vec!["--systemd-cgroup"];
    let mut cfg = c.config();
    cfg["linux"]["cgroupsPath"] = json!(format!("user.slice:rt-it:{}", c.id));
    cfg["linux"]["resources"] = json!({"pids": {"limit": 40}, "memory": {"limit": 200 << 20}});
    c.write_config(&cfg);
    let unit = format!("rt-it-{}.scope", c.id);
    let cg = format!("{}/user.slice/{unit}", manager_cgroup(&u));
    let dir = format!("/sys/fs/cgroup{cg}");
    let read = |f: &str| {
        fs::read_to_string(format!("{dir}/{f}"))
            .unwrap_or_else(|e| panic!("{dir}/{f}: {e}"))
            .trim()
            .to_string()
    };

    c.create().ok();
    let pid = c.state()["pid"].as_i64().unwrap();
    assert_eq!(cgroup_of_pid(pid), cg);
    // the user's systemd made it: the user's, delegated, with the limits as properties
    assert_eq!(unit_prop(&u, &unit, "Delegate"), "yes");
    assert_eq!(unit_prop(&u, &unit, "Slice"), "user.slice");
    assert_eq!(unit_prop(&u, &unit, "TasksMax"), "40");
    assert_eq!(unit_prop(&u, &unit, "MemoryMax"), (200 << 20).to_string());
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&fs::metadata(&dir).unwrap()),
        u.uid
    );
    assert_eq!(read("pids.max"), "40");
    assert_eq!(read("memory.max"), (200 << 20).to_string());
    c.rt(&["start", &c.id]).ok();

    // exec from outside the user's tree: the kernel refuses the move into the scope (the
    // common ancestor, user-UID.slice, is root's), which a rootless runtime lives with
    let out = c.rt(&["exec", &c.id, "sh", "-c", "echo hi"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "hi");

    let out = c.rt(&["ps", "--format", "json", &c.id]);
    out.ok();
    let pids: Vec<i64> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(pids, [pid], "{out:#?}");

    // systemd-run --user --scope: the user's systemd moves the caller into a scope of its own;
    // the exec'd process is looked at from the host (the container may have a cgroup namespace)
    let rt = rt_bin();
    let pid_file = u.xdg.join(format!("exec-{}.pid", c.id));
    let args = [
        "--user",
        "--scope",
        "--quiet",
        "--",
        rt.to_str().unwrap(),
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
        "sleep",
        "100",
    ];
    let cmd = u.command(
        Path::new("/usr/bin/systemd-run"),
        &args,
        c.bundle.path(),
        &[],
    );
    let out = run_cmd(cmd, Stdio::null());
    out.ok();
    let exec_pid: i64 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    fs::remove_file(&pid_file).unwrap();
    assert_eq!(cgroup_of_pid(exec_pid), cg, "{out:#?}");

    c.rt(&["update", "--memory", "300M", "--pids-limit", "50", &c.id])
        .ok();
    assert_eq!(read("pids.max"), "50");
    assert_eq!(read("memory.max"), (300 << 20).to_string());
    assert_eq!(unit_prop(&u, &unit, "TasksMax"), "50");
    assert_eq!(unit_prop(&u, &unit, "MemoryMax"), (300 << 20).to_string());

    c.rt(&["pause", &c.id]).ok();
    assert_eq!(c.state()["status"], "paused");
    assert_eq!(read("cgroup.freeze"), "1");
    c.rt(&["resume", &c.id]).ok();
    assert_eq!(c.state()["status"], "running");

    c.rt(&["kill", "--all", &c.id, "KILL"]).ok();
    wait_for("the container to stop", || {
        (c.state()["status"] == "stopped").then_some(())
    });
    c.rt(&["delete", &c.id]).ok();
    assert!(c.leftovers().is_empty(), "{:?}", c.leftovers());
    wait_for("the scope to go", || {
        (!unit_loaded(&u, &unit) && !Path::new(&dir).exists()).then_some(())
    });
    assert!(!u.xdg.join("systemd/transient").join(&unit).exists());
}

/// Root in a user namespace of the user's (podman's way of running the runtime), with the
/// default cgroupsPath: rootless because the user's bus is owned by the user (runc asks busctl
/// for its OwnerUID), authenticated as that uid, and the scope is `<runtime>-<id>.scope` in
/// user.slice of the user's systemd.
#[test]
fn user_systemd_root_in_a_user_namespace() {
    let Some(u) = User::with_systemd() else {
        return;
    };
    let c = RlCtr::new(&u, "usdns");
    // podman's config: no user namespace of its own, only the ids podman's namespace maps
    fs::remove_file(c.bundle.path().join("config.json")).unwrap();
    c.rt(&["spec"]).ok();
    let mut cfg = c.config();
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["args"] = json!(["sleep", "1000"]);
    for m in cfg["mounts"].as_array_mut().unwrap() {
        if let Some(o) = m["options"].as_array_mut() {
            o.retain(|o| o != "gid=5");
        }
    }
    c.write_config(&cfg);
    let in_ns = |args: &[&str]| {
        let rt = rt_bin();
        let mut a = vec![
            "--user",
            "--map-root-user",
            "--",
            rt.to_str().unwrap(),
            "--systemd-cgroup",
        ];
        a.extend_from_slice(args);
        let mut cmd = u.command(Path::new("/usr/bin/unshare"), &a, c.bundle.path(), &[]);
        cmd.env("USER", &u.name);
        run_cmd(cmd, Stdio::null())
    };
    in_ns(&["run", "-d", "--bundle", c.bundle_str(), &c.id]).ok();
    let out = in_ns(&["state", &c.id]);
    out.ok();
    let pid = serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["pid"]
        .as_i64()
        .unwrap();
    let prefix = if is_runc() { "runc" } else { "rt" };
    let unit = format!("{prefix}-{}.scope", c.id);
    assert_eq!(
        cgroup_of_pid(pid),
        format!("{}/user.slice/{unit}", manager_cgroup(&u))
    );
    assert_eq!(unit_prop(&u, &unit, "ActiveState"), "active");
    let start = proc_start_time(pid as i32).unwrap();
    in_ns(&["delete", "--force", &c.id]).ok();
    wait_for("the scope to go", || {
        (!unit_loaded(&u, &unit)).then_some(())
    });
    assert!(!process_alive(pid as i32, start));
    // its state went to the user's runtime dir, and is gone
    assert!(!u.state_root().join(&c.id).exists());
}

/// Rootless podman with its default cgroup manager (systemd, on the user's bus) and
/// `--runtime`: podman runs the runtime as root in its user namespace with `--systemd-cgroup`
/// and cgroupsPath `user.slice:libpod:<id>`, so the runtime must find the user's bus and
/// authenticate as the bus owner. run --rm, run -d, exec, stop, rm; the container's scope is
/// `libpod-<id>.scope` in user.slice of the user's systemd; nothing of it stays.
#[test]
fn rootless_podman_with_the_systemd_cgroup_manager() {
    if !Path::new("/usr/bin/podman").exists() || !Path::new("/usr/bin/newuidmap").exists() {
        eprintln!("skip: podman or newuidmap (uidmap) is not installed");
        return;
    }
    // before the user: it goes after the user's processes (podman's pause process, conmon)
    let dir = tempfile::Builder::new()
        .prefix("rt-rl-podman-")
        .tempdir()
        .unwrap();
    let Some(u) = User::with_systemd() else {
        return;
    };
    if u.subids().is_none() {
        eprintln!("skip: useradd gave {} no subordinate ids", u.name);
        return;
    }
    let d = dir.path();
    // the image: the tests' busybox rootfs as a tarball podman imports (no registry needed)
    let tar = d.join("busybox.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(rootfs_cache())
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of the rootfs");
    let wrapper = d.join("rt-wrapper");
    let argv_log = d.join("argv.log");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            argv_log.display(),
            rt_bin().display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    fs::write(&argv_log, "").unwrap();
    let st = std::process::Command::new("chown")
        .args(["-R", &format!("{}:{}", u.uid, u.gid)])
        .arg(d)
        .status()
        .unwrap();
    assert!(st.success());
    let podman = |args: &[&str]| {
        let at = |rel: &str| d.join(rel).display().to_string();
        let mut all: Vec<String> = vec![
            "--root".into(),
            at("root"),
            "--runroot".into(),
            at("runroot"),
            "--tmpdir".into(),
            at("tmp"),
            "--cgroup-manager".into(),
            "systemd".into(),
            "--events-backend".into(),
            "file".into(),
            "--storage-driver".into(),
            "vfs".into(),
            "--runtime".into(),
            wrapper.display().to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut c = u.command(Path::new("/usr/bin/podman"), &all, d, &[]);
        c.env("HOME", d.join("home"))
            .env("XDG_CONFIG_HOME", d.join("home/.config"))
            .env("XDG_DATA_HOME", d.join("home/.local/share"));
        run_cmd(c, Stdio::null())
    };
    let ok = |args: &[&str]| {
        let out = podman(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {out:#?}\n--- runtime argv:\n{}",
            fs::read_to_string(&argv_log).unwrap_or_default()
        );
        out.stdout
    };
    let tar_s = tar.display().to_string();
    let image = ok(&["import", "-q", &tar_s, "localhost/rt-busybox"])
        .trim()
        .to_string();
    let run = |pre: &[&str], post: &[&str]| {
        let mut a: Vec<&str> = pre.to_vec();
        a.extend(["--network", "none", image.as_str()]);
        a.extend_from_slice(post);
        ok(&a)
    };
    assert_eq!(run(&["run", "--rm"], &["echo", "ok"]), "ok\n");
    let id = run(
        &["run", "-d", "--name", "p1"],
        &["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"],
    )
    .trim()
    .to_string();
    let pid: i64 = ok(&["inspect", "-f", "{{.State.Pid}}", "p1"])
        .trim()
        .parse()
        .unwrap();
    let unit = format!("libpod-{id}.scope");
    assert_eq!(
        cgroup_of_pid(pid),
        format!("{}/user.slice/{unit}", manager_cgroup(&u))
    );
    assert_eq!(unit_prop(&u, &unit, "ActiveState"), "active");
    assert_eq!(ok(&["exec", "p1", "echo", "from-exec"]), "from-exec\n");
    ok(&["stop", "-t", "10", "p1"]);
    assert_eq!(
        ok(&["inspect", "-f", "{{.State.ExitCode}}", "p1"]).trim(),
        "0"
    );
    ok(&["rm", "p1"]);
    wait_for("the scope to go", || {
        (!unit_loaded(&u, &unit)).then_some(())
    });
    ok(&["rmi", "-a"]);
    let argv = fs::read_to_string(&argv_log).unwrap();
    assert!(
        argv.lines()
            .any(|l| l.contains("--systemd-cgroup") && l.contains("create")),
        "{argv}"
    );
    // the runtime's state went to the user's runtime dir, and is gone
    assert!(!u.state_root().join(&id).exists(), "{argv}");
    eprintln!("runtime argv under rootless podman (systemd):\n{argv}");
}
