//! Rootless: the runtime run by a real unprivileged user (made per test, see `harness`), and by
//! root inside a user namespace, as podman runs it. Each test is proven against runc 1.1.5 run
//! the same way (`RT_BIN=/usr/sbin/runc`).

pub mod harness;
mod user_systemd;

use crate::common::*;
use crate::require_root;
use harness::{RlCtr, User};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

#[test]
fn rootless_flag_takes_runc_values() {
    require_root!();
    let c = Ctr::new("rlflag", config_with_args(&["true"]));
    // both forms, as urfave/cli takes a string flag
    let out = c.rt(&["--rootless", "true", "state", "nonexistent"]);
    out.fails_with("does not exist");
    let out = c.rt(&["--rootless=auto", "state", "nonexistent"]);
    out.fails_with("does not exist");
    // a bad value fails the command that would use it, before anything is made
    let out = c.rt(&[
        "--rootless",
        "bogus",
        "create",
        "--bundle",
        c.bundle_str(),
        &c.id,
    ]);
    out.fails_with("bogus");
    assert!(c.leftovers().is_empty(), "{:?}", c.leftovers());
}

#[test]
fn state_root_is_the_users_runtime_dir() {
    let Some(u) = User::new() else { return };
    u.rt(&["list"], Path::new("/")).ok();
    let meta = fs::metadata(u.state_root()).unwrap();
    // 0700 with the sticky bit (runc's: the session's cleaner leaves it alone)
    assert_eq!(meta.permissions().mode() & 0o7777, 0o1700);
    assert_eq!((meta.uid(), meta.gid()), (u.uid, u.gid));

    // Root in a user namespace (podman's way of running the runtime) is rootless too, unless
    // $USER says it is root.
    for (user, wants) in [(u.name.as_str(), true), ("root", false)] {
        let xdg = u.xdg.join("inns");
        fs::create_dir(&xdg).unwrap();
        std::os::unix::fs::chown(&xdg, Some(u.uid), Some(u.gid)).unwrap();
        let mut cmd = u.command(
            Path::new("/usr/bin/unshare"),
            &[
                "--user",
                "--map-root-user",
                "--",
                rt_bin().to_str().unwrap(),
                "list",
            ],
            Path::new("/"),
            &[],
        );
        cmd.env("XDG_RUNTIME_DIR", &xdg).env("USER", user);
        let out = run_cmd(cmd, Stdio::null());
        let root = xdg.join(u.state_root().file_name().unwrap());
        assert_eq!(root.is_dir(), wants, "USER={user}: {out:#?}");
        fs::remove_dir_all(&xdg).unwrap();
    }
}

#[test]
fn spec_rootless_is_runcs_and_valid() {
    let Some(u) = User::new() else { return };
    let c = harness::RlCtr::new(&u, "spec");
    let spec = c.config();
    let dir = crate::schema::spec_schema_dir();
    if dir.join("config-schema.json").is_file() {
        let v = crate::schema::Validator::new(dir);
        let errs = v.check(&spec, "config-schema.json");
        assert!(
            errs.is_empty(),
            "spec --rootless does not validate: {errs:#?}"
        );
        // the validator can fail on a config: each of these breaks one rule
        let mut bad = spec.clone();
        bad["linux"]["uidMappings"][0]["size"] = "one".into();
        bad["mounts"][0]["destination"] = 7.into();
        bad["process"]["rlimits"][0]["type"] = "NOFILE".into();
        assert_eq!(v.check(&bad, "config-schema.json").len(), 3);
    } else {
        eprintln!("skip: no runtime-spec schema at {}", dir.display());
    }
    let types: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"user") && !types.contains(&"network"),
        "{types:?}"
    );
    // a cgroup namespace on a pure cgroup v2 host only (runc's example keeps it rootless)
    assert_eq!(
        types.contains(&"cgroup"),
        Path::new("/sys/fs/cgroup/cgroup.procs").exists(),
        "{types:?}"
    );
    let own = |id: u32| serde_json::json!([{"containerID": 0, "hostID": id, "size": 1}]);
    assert_eq!(spec["linux"]["uidMappings"], own(u.uid));
    assert_eq!(spec["linux"]["gidMappings"], own(u.gid));
    assert!(spec["linux"].get("resources").is_none(), "{spec}");
    let mounts = spec["mounts"].as_array().unwrap();
    let sys = mounts
        .iter()
        .position(|m| m["destination"] == "/sys")
        .unwrap();
    assert_eq!(mounts[sys]["source"], "/sys");
    assert_eq!(
        mounts[sys]["options"],
        serde_json::json!(["rbind", "nosuid", "noexec", "nodev", "ro"])
    );
    // the cgroup mount stays, after /sys
    assert!(mounts[sys + 1..]
        .iter()
        .any(|m| m["destination"] == "/sys/fs/cgroup"));
    let text = spec["mounts"].to_string();
    assert!(!text.contains("uid=") && !text.contains("gid="), "{text}");
}

/// What the container printed, one run as the user.
fn run_ok(c: &RlCtr) -> String {
    let out = c.run();
    out.ok();
    out.stdout
}

/// The lines of /proc/self/cgroup of the test process: what a runtime it starts runs in.
fn own_cgroups() -> String {
    fs::read_to_string("/proc/self/cgroup").unwrap()
}

#[test]
fn run_with_a_self_mapping() {
    let Some(u) = User::new() else { return };
    let c = RlCtr::new(&u, "selfmap").with_args(&[
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; \
         echo x > /dev/null && echo devnull; cat /proc/self/cgroup",
    ]);
    let out = run_ok(&c);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"], "{out}");
    assert_eq!(lines[1], ["0"], "{out}");
    let (uid, gid) = (u.uid.to_string(), u.gid.to_string());
    assert_eq!(lines[2], ["0", uid.as_str(), "1"], "{out}");
    assert_eq!(lines[3], ["0", gid.as_str(), "1"], "{out}");
    // the kernel's condition for an unprivileged gid map
    assert_eq!(lines[4], ["deny"], "{out}");
    assert_eq!(lines[5], ["devnull"], "{out}");
    // no cgroup permission, no cgroupsPath, no limits: it runs where its runtime ran (the
    // root of its cgroup namespace, where the spec has one: a pure v2 host)
    let cgroups: Vec<&str> = out.lines().skip(6).collect();
    let cgroupns = c.config()["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "cgroup");
    if cgroupns {
        assert_eq!(cgroups, ["0::/"], "{out}");
    } else {
        assert_eq!(cgroups.join("\n") + "\n", own_cgroups(), "{out}");
    }
    assert!(own_cgroup_dirs(&c.id)
        .iter()
        .all(|d| !Path::new(d).exists()));
}

#[test]
fn range_mapping_through_newuidmap() {
    let Some(u) = User::new() else { return };
    let Some(((su, su_n), (sg, sg_n))) = u.subids() else {
        eprintln!("skip: useradd gave {} no subordinate ids", u.name);
        return;
    };
    if !Path::new("/usr/bin/newuidmap").exists() {
        eprintln!("skip: newuidmap is not installed (Debian package uidmap)");
        return;
    }
    let c = RlCtr::new(&u, "range").with_args(&[
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map",
    ]);
    let mut cfg = c.config();
    let maps = |own: u32, sub: u32, n: u32| {
        serde_json::json!([{"containerID": 0, "hostID": own, "size": 1},
                           {"containerID": 1, "hostID": sub, "size": n.min(65536)}])
    };
    cfg["linux"]["uidMappings"] = maps(u.uid, su, su_n);
    cfg["linux"]["gidMappings"] = maps(u.gid, sg, sg_n);
    cfg["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    c.write_config(&cfg);
    let out = run_ok(&c);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let n = su_n.min(65536);
    assert_eq!(lines[..2], ["1000", "1000"], "{out}");
    assert_eq!(lines[2], format!("0 {} 1", u.uid), "{out}");
    assert_eq!(lines[3], format!("1 {su} {n}"), "{out}");
    assert_eq!(lines[4], format!("0 {} 1", u.gid), "{out}");
    assert_eq!(lines[5], format!("1 {sg} {}", sg_n.min(65536)), "{out}");
}

#[test]
fn range_mapping_errors_are_clear() {
    let Some(u) = User::new() else { return };
    let c = RlCtr::new(&u, "badrange").with_args(&["true"]);
    let mut cfg = c.config();
    // far outside any range useradd hands out
    cfg["linux"]["uidMappings"] = serde_json::json!([
        {"containerID": 0, "hostID": u.uid, "size": 1},
        {"containerID": 1, "hostID": 4000000000u32, "size": 10}]);
    c.write_config(&cfg);
    if Path::new("/usr/bin/newuidmap").exists() {
        let out = c.run();
        if is_runc() {
            // runc 1.1.5: "failed to use newuid map on PID", with newuidmap's own line
            assert_ne!(out.code(), 0, "{out:#?}");
        } else {
            out.fails_with("newuidmap")
                .fails_with("/etc/subuid")
                .one_error_line();
        }
        assert!(c.leftovers().is_empty(), "{:?}", c.leftovers());
    }
    // without the helpers in $PATH
    let mut cmd = c.cmd(&["run", "--bundle", c.bundle_str(), &c.id]);
    cmd.env("PATH", "/nonexistent");
    let out = run_cmd(cmd, Stdio::null());
    if is_runc() {
        // runc 1.1.5: "mapping tool not present"
        assert_ne!(out.code(), 0, "{out:#?}");
    } else {
        out.fails_with("needs newuidmap (Debian package uidmap)")
            .one_error_line();
    }
    assert!(c.leftovers().is_empty(), "{:?}", c.leftovers());
}

#[test]
fn lifecycle_without_cgroup_permission() {
    let Some(u) = User::new() else { return };
    let c = RlCtr::new(&u, "life").with_args(&["sleep", "1000"]);
    c.create().ok();
    assert_eq!(c.state()["status"], "created");
    c.rt(&["start", &c.id]).ok();
    assert_eq!(c.state()["status"], "running");
    let pid = c.state()["pid"].as_i64().unwrap();
    assert!(c.user.state_root().join(&c.id).is_dir());
    let out = c.rt(&["exec", &c.id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    out.ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", &u.uid.to_string(), "1"],
        "{out:#?}"
    );
    let out = c.rt(&["ps", "--format", "json", &c.id]);
    if is_runc() {
        // runc 1.1.5 lists a container's processes from its cgroup, and it has none
        out.fails_with("pids");
    } else {
        out.ok();
        let pids: Vec<i64> = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(pids, [pid], "{out:#?}");
    }
    // no freezer without a cgroup, in runc's words
    let out = c.rt(&["pause", &c.id]);
    if is_runc() && Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        // runc 1.1.5 on cgroup v2 looks for the cgroup it did not make: "freezer not
        // supported: openat2 …/cgroup.freeze: no such file or directory"
        out.fails_with("freezer not supported");
    } else {
        out.fails_with("cannot toggle freezer: cgroups not configured for container");
    }
    assert_eq!(c.state()["status"], "running");
    let out = c.rt(&["kill", "--all", &c.id, "KILL"]);
    if is_runc() {
        // runc 1.1.5 finds the processes to signal in the cgroup, and it has none
        assert_ne!(out.code(), 0, "{out:#?}");
        c.rt(&["kill", &c.id, "KILL"]).ok();
    } else {
        out.ok();
    }
    wait_for("the container to stop", || {
        (c.state()["status"] == "stopped").then_some(())
    });
    c.rt(&["delete", &c.id]).ok();
    assert!(c.leftovers().is_empty(), "{:?}", c.leftovers());
}

#[test]
fn limits_without_cgroup_permission_fail_clearly() {
    let Some(u) = User::new() else { return };
    let c = RlCtr::new(&u, "limits").with_args(&["true"]);
    let mut cfg = c.config();
    cfg["linux"]["resources"] = serde_json::json!({"pids": {"limit": 10}});
    c.write_config(&cfg);
    let out = c.run();
    if !is_runc() {
        out.one_error_line();
    }
    // v1 and hybrid hosts, and pure v2 (the runc bats accept either)
    let msg = out.message();
    assert!(
        msg.contains("cannot set pids limit: container could not join or create cgroup")
            || msg.contains("rootless needs no limits + no cgrouppath when no permission is granted for cgroups"),
        "{out:#?}"
    );
    assert_ne!(out.code(), 0);
    assert!(c.leftovers().is_empty(), "{:?}", c.leftovers());
}

#[test]
fn cgroups_path_without_permission_fails_clearly() {
    let Some(u) = User::new() else { return };
    let c = RlCtr::new(&u, "cgpath").with_args(&["true"]);
    let mut cfg = c.config();
    let path = format!("/rt-rl-{}", c.id);
    cfg["linux"]["cgroupsPath"] = path.clone().into();
    c.write_config(&cfg);
    let out = c.run();
    out.fails_with("unable to apply cgroup configuration")
        .fails_with("permission denied");
    if !is_runc() {
        out.one_error_line();
    }
    assert!(c.leftovers().is_empty(), "{:?}", c.leftovers());
    assert!(cgroup_dirs(&path).is_empty());
}

#[test]
fn delegated_cgroup_is_used() {
    let Some(u) = User::new() else { return };
    let deleg = harness::Delegated::new(&u);
    let mut c = RlCtr::new(&u, "deleg").with_args(&["sleep", "1000"]);
    c.join = deleg.procs();
    let path = format!("{}/ctr", deleg.path);
    let mut cfg = c.config();
    cfg["linux"]["cgroupsPath"] = path.clone().into();
    cfg["linux"]["resources"] = serde_json::json!({"pids": {"limit": 10}});
    c.write_config(&cfg);
    c.create().ok();
    let pid = c.state()["pid"].as_i64().unwrap();
    assert_in_cgroup_everywhere(pid, &path, "delegated");
    let max = cgroup_dirs(&path)
        .iter()
        .find_map(|d| fs::read_to_string(format!("{d}/pids.max")).ok())
        .expect("a pids.max in the delegated cgroup");
    assert_eq!(max.trim(), "10");
    c.rt(&["start", &c.id]).ok();
    c.rt(&["exec", &c.id, "true"]).ok();
    // a freezer of its own: pause and resume work
    c.rt(&["pause", &c.id]).ok();
    let status = |c: &RlCtr| c.state()["status"].as_str().unwrap().to_string();
    assert_eq!(status(&c), "paused");
    c.rt(&["resume", &c.id]).ok();
    assert_eq!(status(&c), "running");
    c.rt(&["delete", "--force", &c.id]).ok();
    assert!(cgroup_dirs(&path).is_empty(), "{:?}", cgroup_dirs(&path));
}

#[test]
fn root_in_a_user_namespace_as_podman_runs_it() {
    let Some(u) = User::new() else { return };
    let c = RlCtr::new(&u, "inns");
    // podman's config: no user namespace of its own (the runtime is already in podman's), and
    // only the ids that namespace maps
    fs::remove_file(c.bundle.path().join("config.json")).unwrap();
    c.rt(&["spec"]).ok();
    let mut cfg = c.config();
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["args"] = serde_json::json!(["sh", "-c",
        "id -u; cat /proc/self/uid_map; echo x > /dev/null && echo devnull; stat -c %t:%T /dev/null"]);
    for m in cfg["mounts"].as_array_mut().unwrap() {
        if let Some(o) = m["options"].as_array_mut() {
            o.retain(|o| o != "gid=5");
        }
    }
    c.write_config(&cfg);
    let mut cmd = u.command(
        Path::new("/usr/bin/unshare"),
        &[
            "--user",
            "--map-root-user",
            "--",
            rt_bin().to_str().unwrap(),
            "run",
            "--bundle",
            c.bundle_str(),
            &c.id,
        ],
        c.bundle.path(),
        &[],
    );
    cmd.env("USER", &u.name);
    let out = run_cmd(cmd, Stdio::null());
    out.ok();
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[0], "0", "{out:#?}");
    assert_eq!(lines[1], format!("0 {} 1", u.uid), "{out:#?}");
    // mknod is refused in a user namespace: the node is the host's, bound
    assert_eq!(lines[2..], ["devnull", "1:3"], "{out:#?}");
    // its state went to the user's runtime dir (and is gone after run)
    assert!(u.state_root().is_dir());
}

/// A bind whose source has ro (or nosuid, nodev, noexec) locked on it, as the host's mount flags
/// are in the user's namespace, gets the flags back instead of failing with EPERM.
#[test]
fn bind_keeps_the_sources_locked_flags() {
    let Some(u) = User::new() else { return };
    let c = RlCtr::new(&u, "locked").with_args(&[
        "sh",
        "-c",
        "grep ' /mnt/locked ' /proc/self/mountinfo",
    ]);
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    use nix::mount::{mount, MsFlags};
    let base = c.config();
    let (ro, all) = (
        MsFlags::MS_RDONLY,
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    );
    // (the source's flags, the options asked for)
    for (i, (locked, options)) in [
        (ro, ["bind", "nosuid", "nodev", "noexec"].as_slice()),
        (all, &["bind", "ro"]),
    ]
    .into_iter()
    .enumerate()
    {
        let src = c.bundle.path().join(format!("src{i}"));
        fs::create_dir(&src).unwrap();
        std::os::unix::fs::chown(&src, Some(u.uid), Some(u.gid)).unwrap();
        mount(
            Some(&src),
            &src,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        let _guard = Unmount(src.clone());
        mount(
            None::<&str>,
            &src,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | locked,
            None::<&str>,
        )
        .unwrap();
        let mut cfg = base.clone();
        cfg["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!(
            {"destination": "/mnt/locked", "type": "bind", "source": src, "options": options}));
        c.write_config(&cfg);
        let out = c.run();
        if is_runc() && locked == all {
            // runc 1.1.5 retries such a remount with ro alone, which the kernel refuses too
            // (current runc adds every locked flag, as rt does)
            assert_ne!(out.code(), 0, "{out:#?}");
            continue;
        }
        out.ok();
        let opts = out
            .stdout
            .split_whitespace()
            .nth(5)
            .unwrap_or_default()
            .to_string();
        for f in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(
                opts.split(',').any(|o| o == f),
                "{options:?}: {f} missing: {out:#?}"
            );
        }
    }
}
