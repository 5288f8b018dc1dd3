//! Real-kernel tests of the pure-v2 code paths against whatever cgroup2 tree the host has
//! (the whole hierarchy on v2, /sys/fs/cgroup/unified on hybrid), by describing a host whose
//! only cgroup mount is that tree.
use super::tests::{lock_unified_root, read, res, unique_path, Guard};
use super::*;
use std::process::Command;

/// On a hybrid host the cgroup2 tree is real, so the pure-v2 code paths (cgroup.freeze with
/// cgroup.events polling, cgroup.kill, subtree_control delegation, v2 stats) can run against
/// it by describing a host whose only cgroup mount is that tree.
#[test]
fn v2_code_paths_on_the_cgroup2_mount() {
    if !nix::unistd::geteuid().is_root() {
        println!("skip: v2_code_paths_on_the_cgroup2_mount: needs root");
        return;
    }
    let Ok(host) = Layout::host() else {
        println!("skip: v2_code_paths_on_the_cgroup2_mount: no cgroups");
        return;
    };
    let Some(u) = host.unified.as_ref().filter(|_| host.mode == Mode::Hybrid) else {
        println!("skip: v2_code_paths_on_the_cgroup2_mount: not hybrid (pure v2 hosts run these paths in every test)");
        return;
    };
    let _root = lock_unified_root();
    let base = u.mountpoint.clone();
    let before = read(&base, "cgroup.subtree_control");
    let mountinfo = format!(
        "1 1 0:1 {} {} rw - cgroup2 cgroup2 rw\n",
        u.root,
        base.display()
    );
    let m = CgroupManager::with_host(&mountinfo, None, Some(&unique_path()), "unused").unwrap();
    assert_eq!(m.layout_mode(), Mode::V2);
    let mut g = Guard {
        m,
        children: Vec::new(),
    };
    g.m.create().expect("create");
    // Whatever the tree offers is delegated to the new cgroup.
    let offered = read(&base, "cgroup.controllers");
    let got = read(g.m.unified_dir().unwrap(), "cgroup.controllers");
    assert_eq!(got, offered);
    let pid = g.spawn_sleep();
    assert_eq!(g.m.pids().unwrap(), vec![pid]);
    g.m.freeze().expect("v2 freeze");
    assert!(g.m.is_frozen().unwrap());
    g.m.thaw().unwrap();
    assert!(!g.m.is_frozen().unwrap());
    let s = g.m.stats().expect("v2 stats");
    assert!(s.cpu.usage.total > 0 || s.cpu.usage.user == 0, "{s:?}");
    let mounts = g.m.container_mounts().unwrap();
    assert_eq!(
        (mounts[0].name.as_str(), mounts[0].fstype.as_str()),
        ("", "cgroup2")
    );
    use std::os::unix::process::ExitStatusExt;
    // Other signals go through freeze / signal / thaw.
    g.m.kill_all(Signal::SIGTERM).expect("kill_all TERM");
    assert_eq!(g.children[0].wait().unwrap().signal(), Some(libc::SIGTERM));
    assert!(!g.m.is_frozen().unwrap());
    g.children.clear();
    // SIGKILL goes through cgroup.kill where the kernel has it.
    g.spawn_sleep();
    g.m.kill_all(Signal::SIGKILL).expect("kill_all");
    assert_eq!(g.children[0].wait().unwrap().signal(), Some(libc::SIGKILL));
    g.children.clear();
    g.m.remove().expect("remove");
    assert!(!g.m.unified_dir().unwrap().exists());
    drop(g);
    // Leave the host's delegation as it was.
    for c in read(&base, "cgroup.subtree_control").split_whitespace() {
        if !before.split_whitespace().any(|b| b == c) {
            let _ = fs::write(&base, "cgroup.subtree_control", &format!("-{c}"));
        }
    }
}

/// The v2 device eBPF program, attached to a cgroup in the real cgroup2 tree (pure v2, or the
/// hybrid host's unified mount), must deny what the rules deny to a process inside it.
#[test]
fn v2_device_program_is_enforced() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    if !nix::unistd::geteuid().is_root() {
        println!("skip: v2_device_program_is_enforced: needs root");
        return;
    }
    let Some(u) = Layout::host().ok().and_then(|h| h.unified.clone()) else {
        println!("skip: v2_device_program_is_enforced: no cgroup2 mount");
        return;
    };
    if !Path::new("/dev/kmsg").exists() {
        println!("skip: v2_device_program_is_enforced: no /dev/kmsg to probe with");
        return;
    }
    // Nothing is delegated (Enable::All would change the root's subtree_control): device
    // programs need no controller.
    let mountinfo = format!(
        "1 1 0:1 {} {} rw - cgroup2 cgroup2 rw\n",
        u.root,
        u.mountpoint.display()
    );
    let m = CgroupManager::with_host(&mountinfo, None, Some(&unique_path()), "unused").unwrap();
    let mut g = Guard {
        m,
        children: Vec::new(),
    };
    v2::create(
        &u.mountpoint,
        g.m.unified_dir().unwrap(),
        v2::Enable::Nothing,
    )
    .unwrap();
    let rules = res(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#);
    if let Err(e) = resources_v2::apply(g.m.unified_dir().unwrap(), &rules) {
        println!("skip: v2_device_program_is_enforced: kernel refused the program: {e:#}");
        return;
    }
    let script = "read x; (exec 3</dev/kmsg) 2>/dev/null && echo kmsg-open; \
                  (exec 3>/dev/null) && echo null-open";
    let mut child = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    g.children.push(child);
    g.m.add_pid(pid).unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    g.children[0].wait().unwrap();
    g.children.clear();
    assert!(
        !out.contains("kmsg-open"),
        "/dev/kmsg must be denied: {out}"
    );
    assert!(
        out.contains("null-open"),
        "/dev/null must stay allowed: {out}"
    );
    // Re-applying replaces the program instead of stacking a second one.
    let allow_kmsg = res(r#"{"devices":[{"allow":false,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]}"#);
    resources_v2::apply(g.m.unified_dir().unwrap(), &allow_kmsg).unwrap();
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "echo $$ > {}/cgroup.procs; (exec 3</dev/kmsg) && echo kmsg-open",
                g.m.unified_dir().unwrap().display()
            ),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("kmsg-open"),
        "{out:?}"
    );
}
