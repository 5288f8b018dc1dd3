//! What confines the container: capabilities, seccomp, sysctls, masked and read-only
//! paths, devices, and bundles built to trick the runtime into touching the host.

use crate::common::*;
use crate::exec::drain_pty;
use crate::require_root;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

fn sh(cmd: &str) -> Value {
    let mut c = config_with_args(&["sh", "-c", cmd]);
    c["root"]["readonly"] = json!(false);
    c
}

/// `run` the container in the foreground and return what it printed.
fn inside(tag: &str, cfg: Value) -> String {
    let c = Ctr::new(tag, cfg);
    let out = c.run();
    out.ok();
    out.stdout
}

fn cap_sets(status: &str) -> HashMap<String, u64> {
    status
        .lines()
        .filter(|l| l.starts_with("Cap"))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), u64::from_str_radix(v.trim(), 16).unwrap()))
        .collect()
}

const CHOWN: u64 = 1 << 0;
const KILL: u64 = 1 << 5;
const NET_BIND: u64 = 1 << 10;

#[test]
fn capabilities_non_root_exact() {
    require_root!();
    // A non-root process keeps after execve exactly its ambient set (as permitted and
    // effective): every set is then determined by the config alone.
    let mut cfg = config_with_args(&["grep", "^Cap", "/proc/self/status"]);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    cfg["process"]["noNewPrivileges"] = json!(false);
    cfg["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_CHOWN", "CAP_KILL"],
        "ambient": ["CAP_KILL"],
    });
    let out = inside("caps-user", cfg);
    let c = cap_sets(&out);
    assert_eq!(c["CapBnd"], CHOWN | KILL | NET_BIND, "{out}");
    assert_eq!(c["CapInh"], CHOWN | KILL, "{out}");
    assert_eq!(c["CapAmb"], KILL, "{out}");
    assert_eq!(c["CapPrm"], KILL, "{out}");
    assert_eq!(c["CapEff"], KILL, "{out}");
}

#[test]
fn capabilities_root_without_inheritable() {
    require_root!();
    // root's execve grants the whole bounding set as permitted and effective
    let mut cfg = config_with_args(&["grep", "^Cap", "/proc/self/status"]);
    cfg["process"]["noNewPrivileges"] = json!(false);
    cfg["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL"],
        "effective": ["CAP_KILL"],
    });
    let out = inside("caps-root", cfg);
    let c = cap_sets(&out);
    assert_eq!(c["CapBnd"], CHOWN | KILL | NET_BIND, "{out}");
    assert_eq!(c["CapInh"], 0, "{out}");
    assert_eq!(c["CapAmb"], 0, "{out}");
    assert_eq!(c["CapPrm"], CHOWN | KILL | NET_BIND, "{out}");
    assert_eq!(c["CapEff"], CHOWN | KILL | NET_BIND, "{out}");
}

#[test]
fn unknown_capabilities_ignored_with_a_warning() {
    require_root!();
    // runc: a name it does not know (a newer kernel's, a typo) is dropped from every set with
    // one warning, "ignoring unknown or unavailable capabilities: [...]"; the rest applies
    let mut cfg = config_with_args(&["grep", "^Cap", "/proc/self/status"]);
    cfg["process"]["noNewPrivileges"] = json!(false);
    cfg["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_RT_TEST_NOPE", "CAP_CHOWN"],
        "permitted": ["CAP_RT_TEST_NOPE", "CAP_KILL"],
        "effective": ["CAP_KILL", "CAP_RT_TEST_ALSO_NOPE"],
    });
    let c = Ctr::new("caps-unknown", cfg);
    let out = c.run();
    out.ok();
    let sets = cap_sets(&out.stdout);
    assert_eq!(sets["CapBnd"], CHOWN | KILL, "{out:#?}");
    assert_eq!(sets["CapEff"], CHOWN | KILL, "{out:#?}");
    let msg = out.message();
    assert!(
        msg.contains(
            "ignoring unknown or unavailable capabilities: [CAP_RT_TEST_ALSO_NOPE CAP_RT_TEST_NOPE]"
        ),
        "{out:#?}"
    );
    drop(c);

    // exec: --cap and a process.json alike
    let c = Ctr::started("caps-unknown-exec", example("sleep"));
    let out = c.exec(
        &["--cap", "CAP_RT_TEST_NOPE"],
        &["grep", "^CapBnd", "/proc/self/status"],
    );
    out.ok();
    assert_eq!(
        cap_sets(&out.stdout)["CapBnd"],
        KILL | NET_BIND | (1 << 29),
        "{out:#?}"
    );
    assert!(
        out.message()
            .contains("ignoring unknown or unavailable capabilities: [CAP_RT_TEST_NOPE]"),
        "{out:#?}"
    );
    let p = c.bundle.path().join("process.json");
    fs::write(
        &p,
        json!({"args": ["grep", "^CapBnd", "/proc/self/status"], "cwd": "/",
               "env": ["PATH=/bin:/usr/bin"], "user": {"uid": 0, "gid": 0},
               "capabilities": {"bounding": ["CAP_KILL", "CAP_RT_TEST_NOPE"]}})
        .to_string(),
    )
    .unwrap();
    let out = c.exec(&["--process", p.to_str().unwrap()], &[]);
    out.ok();
    assert_eq!(cap_sets(&out.stdout)["CapBnd"], KILL, "{out:#?}");
}

#[test]
fn selinux_labels_without_selinux_are_refused() {
    require_root!();
    if Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("skip: this host has SELinux");
        return;
    }
    // runc (1.1.5 and current) does not ignore them: a process label is refused in these words,
    // at create and at exec, and a mount label becomes `context=` in the mounts' data, which the
    // kernel refuses (EINVAL at the first tmpfs); rt refuses that one up front
    let phrase = "selinux label is specified in config, but selinux is disabled or not supported";
    let mut cfg = example("sleep");
    cfg["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2");
    let c = Ctr::new("selinux-process", cfg);
    c.create().fails_with(phrase).one_error_line();
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
    drop(c);

    let mut cfg = example("sleep");
    cfg["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
    let c = Ctr::new("selinux-mount", cfg);
    let out = c.create();
    if is_runc() {
        out.fails_with("invalid argument");
    } else {
        out.fails_with("linux.mountLabel")
            .fails_with("selinux is disabled or not supported");
    }
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
    drop(c);

    let c = Ctr::started("selinux-exec", example("sleep"));
    let out = c.exec(
        &["--process-label", "system_u:system_r:container_t:s0"],
        &["true"],
    );
    out.fails_with(phrase);
}

#[test]
fn no_seccomp_without_profile() {
    require_root!();
    let out = inside(
        "seccomp",
        config_with_args(&["grep", "^Seccomp:", "/proc/self/status"]),
    );
    if !out.is_empty() {
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["Seccomp:", "0"]
        );
    }
}

#[test]
fn namespaced_sysctls_applied() {
    require_root!();
    let host_fwd = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shm = fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let mut cfg = sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax");
    let want_fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    cfg["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": want_fwd,
        "kernel.shmmax": "12345678",
    });
    let out = inside("sysctl", cfg);
    assert_eq!(out, format!("{want_fwd}\n12345678\n"));
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shm
    );
}

#[test]
fn host_sysctls_refused() {
    require_root!();
    for (key, file) in [
        ("vm.swappiness", "/proc/sys/vm/swappiness"),
        ("kernel.core_pattern", "/proc/sys/kernel/core_pattern"),
    ] {
        let before = fs::read_to_string(file).unwrap();
        let mut cfg = example("sleep");
        cfg["linux"]["sysctl"] = json!({ key: "7" });
        let c = Ctr::new("sysctl-host", cfg);
        c.create().fails_with(key).one_error_line();
        assert!(c.leftovers().is_empty(), "{key}: {:#?}", c.leftovers());
        assert_eq!(fs::read_to_string(file).unwrap(), before, "{key} changed");
    }
}

#[test]
fn uts_sysctls_must_not_fight_hostname_and_domainname() {
    require_root!();
    // runc (1.1 and current): kernel.hostname conflicts with the hostname field, always
    let mut cfg = example("sleep");
    cfg["linux"]["sysctl"] = json!({"kernel.hostname": "from-sysctl"});
    let c = Ctr::new("sysctl-hostname", cfg);
    c.create()
        .fails_with(
            r#"sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field"#,
        )
        .one_error_line();
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
    drop(c);

    // kernel.domainname alone is the container's own (UTS namespace)
    let mut cfg = sh("cat /proc/sys/kernel/domainname");
    cfg["linux"]["sysctl"] = json!({"kernel.domainname": "sysctl.example"});
    assert_eq!(inside("sysctl-domainname", cfg), "sysctl.example\n");

    // with the domainname field as well the two fight
    let mut cfg = sh("cat /proc/sys/kernel/domainname");
    cfg["domainname"] = json!("field.example");
    cfg["linux"]["sysctl"] = json!({"kernel.domainname": "sysctl.example"});
    let c = Ctr::new("sysctl-domainname-field", cfg);
    if is_runc() {
        // runc lets the sysctl through from before the spec had `domainname` and then the
        // sysctl silently wins (runc issue #3629 proposes refusing it; crun does)
        let out = c.run();
        out.ok();
        assert_eq!(out.stdout, "sysctl.example\n", "{out:#?}");
    } else {
        c.create()
            .fails_with(r#"sysctl "kernel.domainname" is not allowed as it conflicts with the OCI "domainname" field"#)
            .one_error_line();
    }
}

#[test]
fn masked_file_and_dir() {
    require_root!();
    let mut cfg = sh("cat /secret; echo; ls -A /secretdir; echo; \
         touch /secretdir/x 2>/dev/null; echo rc=$?; grep ' /secretdir ' /proc/self/mountinfo");
    cfg["linux"]["maskedPaths"] = json!(["/secret", "/secretdir"]);
    let c = Ctr::new("masked", cfg);
    let rootfs = c.bundle.path().join("rootfs");
    fs::write(rootfs.join("secret"), "SECRET-FILE").unwrap();
    fs::create_dir(rootfs.join("secretdir")).unwrap();
    fs::write(rootfs.join("secretdir/inner"), "SECRET-DIR").unwrap();
    let out = c.run();
    out.ok();
    let lines: Vec<_> = out.stdout.lines().collect();
    assert_eq!(lines[..3], ["", "", "rc=1"], "{out:#?}");
    // a masked directory is an empty read-only tmpfs
    let mi = lines[3];
    assert!(mi.contains(" - tmpfs "), "{mi}");
    assert!(
        mi.split(' ').nth(5).unwrap().split(',').any(|o| o == "ro"),
        "{mi}"
    );
}

#[test]
fn readonly_path_write_fails() {
    require_root!();
    let mut cfg = sh("touch /data/x 2>&1; echo rc=$?; touch /other; echo rc=$?");
    cfg["linux"]["readonlyPaths"] = json!(["/data"]);
    let c = Ctr::new("ropath", cfg);
    fs::create_dir(c.bundle.path().join("rootfs/data")).unwrap();
    let out = c.run();
    out.ok();
    let lines: Vec<_> = out.stdout.lines().collect();
    assert!(lines[0].contains("Read-only file system"), "{out:#?}");
    assert_eq!(lines[1..], ["rc=1", "rc=0"], "{out:#?}");
}

#[test]
fn readonly_root_mount() {
    require_root!();
    let mut cfg = config_with_args(&["awk", "$5 == \"/\" { print $6 }", "/proc/self/mountinfo"]);
    cfg["root"]["readonly"] = json!(true);
    let out = inside("roroot", cfg);
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].split(',').any(|o| o == "ro"), "{out}");
}

#[test]
fn configured_device_node() {
    require_root!();
    let mut cfg = config_with_args(&["stat", "-c", "%F %t %T %a %u %g", "/dev/testdev"]);
    cfg["linux"]["devices"] = json!([{
        "path": "/dev/testdev", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o640, "uid": 1234, "gid": 5678
    }]);
    assert_eq!(
        inside("device", cfg),
        "character special file 1 3 640 1234 5678\n"
    );
}

#[test]
fn device_cgroup_rules_alone_decide_access() {
    require_root!();
    // runc (1.1.5 and current): linux.devices makes the node, linux.resources.devices (plus
    // the runtime's default set) decides access; a node the config creates gets no allow rule
    // of its own. 42:0 has no driver: open is ENXIO when the cgroup lets it through, EPERM when
    // it does not.
    let probe = "cat /dev/fake 2>&1; echo x > /dev/null && echo null-ok";
    let fake =
        json!([{"path": "/dev/fake", "type": "c", "major": 42, "minor": 0, "fileMode": 0o666}]);
    // the examples' rules: deny all
    let mut cfg = sh(probe);
    cfg["linux"]["devices"] = fake.clone();
    let out = inside("devices-deny", cfg);
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(
        out.ends_with("null-ok\n"),
        "the default set still applies: {out}"
    );

    // and an allow rule for it lets it through
    let mut cfg = sh(probe);
    cfg["linux"]["devices"] = fake;
    cfg["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "c", "major": 42, "minor": 0, "access": "rw"}));
    let out = inside("devices-allow", cfg);
    assert!(out.contains("No such device or address"), "{out}");
    assert!(out.ends_with("null-ok\n"), "{out}");
}

#[test]
fn terminal_dev_console_is_a_pty() {
    require_root!();
    let mut cfg = example("tty");
    cfg["process"]["args"] = json!([
        "sh",
        "-c",
        "echo CONSOLE=$(stat -c '%t' /dev/console) TTY=$(stat -c '%t:%T' $(tty)) \
         PTS=$(stat -c '%t:%T' /dev/console)"
    ]);
    let c = Ctr::new("devconsole", cfg);
    let master = c.create_with_console();
    c.start().ok();
    let seen = drain_pty(master);
    let line = seen
        .lines()
        .find(|l| l.starts_with("CONSOLE="))
        .unwrap_or_else(|| panic!("{seen:?}"));
    let f: Vec<_> = line.trim_end().split(' ').collect();
    // 0x88 = 136, the first Unix98 pty slave major
    assert_eq!(f[0], "CONSOLE=88", "{seen:?}");
    // the very pty the process's stdio is on
    assert_eq!(f[1][4..], f[2][4..], "{seen:?}");
}

/// The host's mount points that matter here, and the names in the host's `/`.
fn host_snapshot() -> (Vec<String>, BTreeSet<String>) {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut mps: Vec<String> = mi
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        // where an escaping mount would land; elsewhere other work on the host may
        // mount things meanwhile
        .filter(|m| {
            (*m == "/"
                || ["/dev", "/etc", "/proc", "/sys", "/bin", "/usr"]
                    .iter()
                    .any(|p| m.starts_with(p)))
                && !m.starts_with("/sys/fs/cgroup/")
        })
        .map(String::from)
        .collect();
    mps.sort();
    let root = fs::read_dir("/")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    (mps, root)
}

#[test]
fn rootfs_dev_symlink_to_root() {
    require_root!();
    let before = host_snapshot();
    let c = Ctr::new("devlink", config_with_args(&["ls", "/dev/null"]));
    let dev = c.bundle.path().join("rootfs/dev");
    let _ = fs::remove_dir_all(&dev);
    std::os::unix::fs::symlink("/", &dev).unwrap();
    let out = c.run();
    eprintln!("/dev -> /: {out:?}");
    if out.code() == 0 {
        assert_eq!(out.stdout, "/dev/null\n", "{out:#?}");
    } else {
        assert!(
            !out.message().trim().is_empty(),
            "no error message: {out:#?}"
        );
    }
    let _ = c.delete(true);
    assert_eq!(
        host_snapshot(),
        before,
        "the host's / or its mounts changed"
    );
}

#[test]
fn mount_destination_dotdot_stays_in_rootfs() {
    require_root!();
    let src = tempfile::tempdir().unwrap();
    let marker = format!("rt-it-marker-{}", std::process::id());
    fs::write(src.path().join(&marker), "in").unwrap();
    let before = host_snapshot();
    for dest in ["/../../etc", "../../etc"] {
        let mut cfg = config_with_args(&["cat", &format!("/etc/{marker}")]);
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": dest, "type": "bind",
            "source": src.path(), "options": ["rbind", "ro"]
        }));
        let c = Ctr::new("dotdot", cfg);
        let out = c.run();
        // A relative destination may be refused (the spec wants absolute ones); runc
        // takes it as relative to the container's root.
        if dest.starts_with('/') || out.code() == 0 {
            out.ok();
            assert_eq!(out.stdout, "in", "{dest}");
        } else {
            assert!(!out.message().trim().is_empty(), "{dest}: {out:#?}");
        }
        assert!(!Path::new("/etc").join(&marker).exists(), "{dest}");
        drop(c);
        assert_eq!(host_snapshot(), before, "{dest}: the host's mounts changed");
    }
}

#[test]
fn mount_destination_symlink_stays_in_rootfs() {
    require_root!();
    let src = tempfile::tempdir().unwrap();
    let marker = format!("rt-it-link-{}", std::process::id());
    fs::write(src.path().join(&marker), "in").unwrap();
    let mut cfg = config_with_args(&["cat", &format!("/tmp/{marker}")]);
    cfg["root"]["readonly"] = json!(false);
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/escape", "type": "bind",
        "source": src.path(), "options": ["rbind", "ro"]
    }));
    let c = Ctr::new("symlinkdst", cfg);
    // absolute: resolved on the host it would be the host's /tmp
    std::os::unix::fs::symlink("/tmp", c.bundle.path().join("rootfs/escape")).unwrap();
    let out = c.run();
    out.ok();
    // the bind landed on the rootfs's /tmp, seen inside the container
    assert_eq!(out.stdout, "in");
    assert!(!Path::new("/tmp").join(&marker).exists());
}

#[test]
fn dev_null_symlink_not_used_for_masking() {
    require_root!();
    let host = tempfile::tempdir().unwrap();
    let secret = host.path().join("secret");
    fs::write(&secret, "HOST-SECRET").unwrap();
    let mut cfg = sh("cat /masked /proc/timer_list 2>&1 | head -c 4096");
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    cfg["linux"]["maskedPaths"] = json!(["/masked", "/proc/timer_list"]);
    let c = Ctr::new("devnull", cfg);
    let rootfs = c.bundle.path().join("rootfs");
    fs::write(rootfs.join("masked"), "").unwrap();
    let _ = fs::remove_dir_all(rootfs.join("dev"));
    fs::create_dir(rootfs.join("dev")).unwrap();
    std::os::unix::fs::symlink(&secret, rootfs.join("dev/null")).unwrap();
    let out = c.run();
    eprintln!("/dev/null -> host file: {out:?}");
    assert!(!out.stdout.contains("HOST-SECRET"), "{out:#?}");
    assert!(!out.stderr.contains("HOST-SECRET"), "{out:#?}");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "HOST-SECRET");
}

fn sha(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap()
}

#[test]
fn runtime_binary_not_writable_from_container() {
    require_root!();
    let bin = fs::canonicalize(rt_bin()).unwrap();
    let before = sha(&bin);
    // While the container is created, pid 1 is still the runtime's init. An exec'd
    // process grabs /proc/1/exe then, and once pid 1 has exec'd the user's process
    // tries to write through it: the attack on the host binary (CVE-2019-5736).
    let mut cfg = sh("touch /tmp/go; exec sleep 1000");
    cfg["process"]["noNewPrivileges"] = json!(false);
    let c = Ctr::new("exe", cfg);
    c.create().ok();
    // `command` keeps a failed redirection from exiting the shell (exec is special)
    let script = "command exec 3</proc/1/exe || { echo open-failed > /tmp/res; exit; }; \
                  while [ ! -e /tmp/go ]; do :; done; sleep 1; \
                  if echo x >> /proc/self/fd/3; then echo wrote; else echo write-failed; fi > /tmp/res 2>&1";
    c.exec(&["-d"], &["sh", "-c", script]).ok();
    c.start().ok();
    let res = c.bundle.path().join("rootfs/tmp/res");
    let got = wait_for("the exec'd process's verdict", || {
        fs::read_to_string(&res).ok().filter(|s| s.ends_with('\n'))
    });
    assert_ne!(got, "wrote\n", "the container wrote to /proc/1/exe");
    assert!(
        sha(&bin) == before,
        "the runtime binary {} changed",
        bin.display()
    );
}

#[test]
fn only_stdio_fds() {
    require_root!();
    let out = inside("sec-fds", config_with_args(&["ls", "/proc/self/fd"]));
    // 3 is ls's own directory handle
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
}

#[test]
fn cwd_through_proc_fd_stays_inside() {
    require_root!();
    // A runtime fd leaked into the init (CVE-2024-21626) would put a cwd of
    // /proc/self/fd/N on the host: walking up from it would reach the host's /.
    let root_listing = inside("cwd-ref", config_with_args(&["ls", "/"]));
    for n in 3..=9 {
        let mut cfg = config_with_args(&["sh", "-c", "cd ../../../../../../..; ls"]);
        cfg["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let c = Ctr::new("cwd-fd", cfg);
        let out = c.run();
        if out.code() == 0 {
            assert_eq!(out.stdout, root_listing, "cwd /proc/self/fd/{n} escaped");
        }
    }
}

#[test]
fn seccomp_profile_applied() {
    require_root!();
    // mkdir fails with the configured errno (EPERM); everything else is allowed
    let mut cfg = sh("mkdir /tmp/d 2>&1; echo rc=$?; grep '^Seccomp:' /proc/self/status");
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]
    });
    let out = inside("seccomp-on", cfg);
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].contains("Operation not permitted"), "{out}");
    assert_eq!(lines[1], "rc=1", "{out}");
    // 2: SECCOMP_MODE_FILTER
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["Seccomp:", "2"],
        "{out}"
    );
}

/// A read-only /dev tmpfs: its nodes and the mounts below it (/dev/pts, /dev/shm...) are made
/// first, then it is made read-only, as runc does.
#[test]
fn readonly_dev_tmpfs() {
    require_root!();
    let mut cfg = sh(
        "grep '^tmpfs /dev ' /proc/mounts; ls /dev/pts/ptmx; touch /dev/x 2>&1 | grep -c Read-only",
    );
    for m in cfg["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    let out = inside("rodev", cfg);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains(" ro,") || lines[0].contains(" ro "),
        "{out}"
    );
    assert_eq!(lines[1..], ["/dev/pts/ptmx", "1"], "{out}");
}

/// --no-pivot leaves the old root under the chroot; its whole procfs must not let a process
/// in the container mount a fresh one (runc's no_pivot.bats): the nested `mount -t proc` in a
/// new user and pid namespace is refused.
#[test]
fn no_pivot_gives_no_way_to_a_fresh_procfs() {
    require_root!();
    let mut cfg = sh("unshare -mrpf sh -c 'mount -t proc none /proc && echo MOUNTED' 2>&1; true");
    for set in ["bounding", "effective", "permitted"] {
        cfg["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .extend([json!("CAP_SYS_ADMIN"), json!("CAP_SETFCAP")]);
    }
    cfg["process"]["noNewPrivileges"] = json!(false);
    let c = Ctr::new("nopivot", cfg);
    let out = c.rt(&["run", "--no-pivot", "--bundle", c.bundle_str(), &c.id]);
    out.ok();
    assert!(!out.stdout.contains("MOUNTED"), "{out:#?}");
    assert!(out.stdout.contains("ermission denied"), "{out:#?}");
}
