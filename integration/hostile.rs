//! Hostile images and configs (../shared/security.md): each shape is built, the runtime runs it,
//! and then the *host* is checked. A runtime may refuse the bundle with a clear error or run it,
//! but nothing outside the rootfs may be created, changed, removed or mounted on.
//!
//! Decoys are files under a temp dir of the host and harmless values (the host's
//! `kernel.domainname`); a real `core_pattern` is only ever read.

use crate::common::*;
use crate::require_root;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::Path;

/// A host directory the image points at, with files a runtime would touch if it followed
/// the image's links: `ptmx`, `null`, `console`, a `cgroup` dir.
struct Decoy {
    dir: tempfile::TempDir,
}

impl Decoy {
    fn new() -> Decoy {
        let dir = tempfile::Builder::new()
            .prefix("rt-decoy-")
            .tempdir()
            .unwrap();
        for f in ["ptmx", "null", "console", "core_pattern"] {
            fs::write(dir.path().join(f), format!("DECOY-{f}")).unwrap();
        }
        fs::create_dir(dir.path().join("cgroup")).unwrap();
        Decoy { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn str(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// Every entry below the decoy with its kind and content, and every mount on it.
    fn snapshot(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        walk(self.path(), self.path(), &mut out);
        for line in fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
            if line
                .split(' ')
                .nth(4)
                .is_some_and(|mp| mp.starts_with(self.str()))
            {
                out.insert(format!("mount {line}"), String::new());
            }
        }
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap().display().to_string();
        let m = fs::symlink_metadata(&p).unwrap();
        let t = m.file_type();
        let v = if t.is_symlink() {
            format!("link {}", fs::read_link(&p).unwrap().display())
        } else if t.is_dir() {
            walk(base, &p, out);
            "dir".into()
        } else if t.is_file() {
            format!("file {}", fs::read_to_string(&p).unwrap_or_default())
        } else if t.is_char_device() || t.is_block_device() {
            "device".into()
        } else {
            "other".into()
        };
        out.insert(rel, v);
    }
}

fn sh(cmd: &str) -> Value {
    let mut c = config_with_args(&["sh", "-c", cmd]);
    c["root"]["readonly"] = json!(false);
    c
}

fn rootfs(c: &Ctr) -> std::path::PathBuf {
    c.bundle.path().join("rootfs")
}

/// Replaces `rel` in the bundle's rootfs with a symlink to `target`.
fn plant_link(c: &Ctr, rel: &str, target: &str) {
    let p = rootfs(c).join(rel);
    if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(&p).unwrap();
    } else {
        let _ = fs::remove_file(&p);
    }
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    symlink(target, &p).unwrap();
}

/// A refusal must say what was wrong; a run must have worked.
#[track_caller]
fn refused_or_ran(out: &Out) -> bool {
    if out.code() == 0 {
        return true;
    }
    assert!(
        !out.message().trim().is_empty(),
        "refused without a message: {out:#?}"
    );
    false
}

/// `../` enough times to climb from anywhere in the bundle to the host's `/`.
fn up_to_host_root() -> String {
    "../".repeat(40)
}

fn dev_symlink_to_host(tag: &str, target: impl Fn(&Decoy) -> String) {
    require_root!();
    let decoy = Decoy::new();
    let before = decoy.snapshot();
    let mut cfg = sh("ls /dev/null /dev/ptmx /dev/fd/ >/dev/null && echo ok");
    // a node of the config's own, so linux.devices goes through the same place
    cfg["linux"]["devices"] = json!([{
        "path": "/dev/rt-hostile", "type": "c", "major": 1, "minor": 3, "fileMode": 438
    }]);
    let c = Ctr::new(tag, cfg);
    plant_link(&c, "dev", &target(&decoy));
    let out = c.run();
    eprintln!("{tag}: {out:?}");
    refused_or_ran(&out);
    drop(c);
    assert_eq!(
        decoy.snapshot(),
        before,
        "the host directory the image's /dev points at was changed"
    );
}

// runc 1.1.5 (Debian's) is vulnerable to this one: CVE-2026-41579 (the /dev links and ptmx
// are made on rootfs + "/dev/..." strings). Under runc the test only reports.
#[test]
fn dev_symlink_absolute_to_host_dir() {
    if is_runc() {
        eprintln!("skip: runc 1.1.5 is vulnerable (CVE-2026-41579)");
        return;
    }
    dev_symlink_to_host("devabs", |d| d.str().to_string());
}

#[test]
fn dev_symlink_relative_to_host_dir() {
    if is_runc() {
        eprintln!("skip: runc 1.1.5 is vulnerable (CVE-2026-41579)");
        return;
    }
    dev_symlink_to_host("devrel", |d| {
        format!("{}/{}", up_to_host_root(), d.str().trim_start_matches('/'))
    });
}

/// /dev from the image (no tmpfs): its null is a link to a host file, its console a link to
/// another, a mask needs a null device. The host files stay as they are and the masked file's
/// content never shows.
#[test]
fn dev_entries_symlinked_to_host_files() {
    require_root!();
    let decoy = Decoy::new();
    let before = decoy.snapshot();
    let mut cfg = sh("cat /masked 2>&1; echo; echo done");
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev" && m["destination"] != "/dev/shm");
    cfg["linux"]["maskedPaths"] = json!(["/masked"]);
    let c = Ctr::new("devfiles", cfg);
    let r = rootfs(&c);
    fs::write(r.join("masked"), "IMAGE-SECRET").unwrap();
    let _ = fs::remove_dir_all(r.join("dev"));
    fs::create_dir_all(r.join("dev/pts")).unwrap();
    symlink(decoy.path().join("null"), r.join("dev/null")).unwrap();
    symlink(decoy.path().join("console"), r.join("dev/console")).unwrap();
    symlink(decoy.path().join("ptmx"), r.join("dev/ptmx")).unwrap();
    let out = c.run();
    eprintln!("devfiles: {out:?}");
    if refused_or_ran(&out) {
        assert!(
            !out.stdout.contains("IMAGE-SECRET"),
            "mask skipped: {out:#?}"
        );
        assert!(!out.stdout.contains("DECOY"), "{out:#?}");
    }
    drop(c);
    assert_eq!(
        decoy.snapshot(),
        before,
        "a host file behind /dev was changed"
    );
}

/// /dev from the image without any null device at all: the mask is not silently skipped.
#[test]
fn mask_without_dev_null_is_not_skipped() {
    require_root!();
    let mut cfg = sh("cat /masked 2>&1; echo; echo done");
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    cfg["linux"]["maskedPaths"] = json!(["/masked"]);
    let c = Ctr::new("nonull", cfg);
    let r = rootfs(&c);
    fs::write(r.join("masked"), "IMAGE-SECRET").unwrap();
    let _ = fs::remove_dir_all(r.join("dev"));
    fs::create_dir(r.join("dev")).unwrap();
    let out = c.run();
    if refused_or_ran(&out) {
        assert!(
            !out.stdout.contains("IMAGE-SECRET"),
            "mask skipped: {out:#?}"
        );
    }
}

/// A terminal container whose /dev/pts is the image's, with a fake ptmx: the console must come
/// from a real devpts or not at all, and the host file behind the fake is untouched.
#[test]
fn fake_ptmx_is_not_used_for_the_console() {
    require_root!();
    let decoy = Decoy::new();
    let before = decoy.snapshot();
    let mut cfg = sh("tty");
    cfg["process"]["terminal"] = json!(true);
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev/pts");
    let c = Ctr::new("fakeptmx", cfg);
    let r = rootfs(&c);
    fs::create_dir_all(r.join("dev/pts")).unwrap();
    symlink(decoy.path().join("ptmx"), r.join("dev/pts/ptmx")).unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let out = run_cmd(
        c.create_cmd_with_console(&sock),
        std::process::Stdio::null(),
    );
    eprintln!("fakeptmx: {out:?}");
    if out.code() == 0 {
        c.track_pid();
        // a console came from somewhere: it must be a real pty master
        let fd = crate::exec::receive_fd(&listener);
        let link = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert!(link.ends_with("ptmx"), "console master is {link:?}");
    } else {
        assert!(!out.message().trim().is_empty(), "{out:#?}");
    }
    drop(c);
    assert_eq!(
        decoy.snapshot(),
        before,
        "the host file behind the fake ptmx changed"
    );
}

fn host_core_pattern() -> String {
    fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap()
}

/// A bind of a decoy file onto `dest`: refused, or at least the container does not see it.
fn proc_destination(tag: &str, dest: &str, link: Option<(&str, &str)>, seen: &str) {
    require_root!();
    let decoy = Decoy::new();
    let before = decoy.snapshot();
    let pattern = host_core_pattern();
    let mut cfg = sh(&format!("cat {seen} 2>&1; echo"));
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": dest, "type": "bind",
        "source": decoy.path().join("core_pattern"), "options": ["bind"]
    }));
    let c = Ctr::new(tag, cfg);
    if let Some((at, target)) = link {
        plant_link(&c, at, target);
    }
    let out = c.run();
    eprintln!("{tag}: {out:?}");
    if refused_or_ran(&out) {
        assert!(
            !out.stdout.contains("DECOY"),
            "{dest} was mounted over: {out:#?}"
        );
    } else {
        assert!(
            out.message().contains("/proc"),
            "the error names /proc: {out:#?}"
        );
    }
    drop(c);
    assert_eq!(host_core_pattern(), pattern);
    assert_eq!(decoy.snapshot(), before);
}

#[test]
fn mount_destination_inside_proc_refused() {
    proc_destination(
        "procdst",
        "/proc/sys/kernel/core_pattern",
        None,
        "/proc/sys/kernel/core_pattern",
    );
}

#[test]
fn mount_destination_proc_self_attr_refused() {
    // /proc/self is init's at mount time: pid 1, the container's process after exec
    proc_destination(
        "procattr",
        "/proc/self/attr/exec",
        None,
        "/proc/1/attr/exec",
    );
}

#[test]
fn mount_destination_reaching_proc_through_symlink_refused() {
    proc_destination(
        "proclink",
        "/evil/core_pattern",
        Some(("evil", "/proc/sys/kernel")),
        "/proc/sys/kernel/core_pattern",
    );
}

/// What lxcfs does: bind files over /proc/uptime and friends. That keeps working.
#[test]
fn lxcfs_style_proc_file_bind_allowed() {
    require_root!();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("uptime"), "12345.67 890.12\n").unwrap();
    let mut cfg = sh("cat /proc/uptime");
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/proc/uptime", "type": "bind",
        "source": src.path().join("uptime"), "options": ["bind", "ro"]
    }));
    let c = Ctr::new("lxcfs", cfg);
    let out = c.run();
    out.ok();
    assert_eq!(out.stdout, "12345.67 890.12\n");
}

/// A container in the host's pid namespace may have the host's /proc bound on its /proc: a
/// bind whose source is a procfs counts as a proc mount (runc's start_hello.bats does this).
#[test]
fn proc_bind_of_a_procfs_allowed() {
    require_root!();
    let mut cfg = sh("test -r /proc/self/status && echo ok");
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    for m in cfg["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/proc" {
            *m = json!({"destination": "/proc", "type": "bind", "source": "/proc",
                        "options": ["rbind", "nosuid", "noexec", "nodev"]});
        }
    }
    let c = Ctr::new("procbind", cfg);
    let out = c.run();
    out.ok();
    assert_eq!(out.stdout, "ok\n");
}

/// `/proc` or `/sys` of the image a symlink: refused with an error naming it.
fn special_dir_symlink(tag: &str, dir: &str) {
    require_root!();
    let decoy = Decoy::new();
    let before = decoy.snapshot();
    let c = Ctr::new(tag, sh("echo ran"));
    plant_link(&c, dir, decoy.str());
    let out = c.run();
    eprintln!("{tag}: {out:?}");
    out.fails_with(&format!("/{dir}"))
        .fails_with("must be mounted on ordinary directory");
    drop(c);
    assert_eq!(decoy.snapshot(), before);
}

#[test]
fn proc_symlink_in_image_refused() {
    special_dir_symlink("proclnk", "proc");
}

#[test]
fn sys_symlink_in_image_refused() {
    special_dir_symlink("syslnk", "sys");
}

/// A sysctl key in slash form that climbs out of net/: the host's kernel.domainname (the
/// container shares the host's UTS namespace here) is never written.
#[test]
fn sysctl_slash_key_cannot_traverse() {
    require_root!();
    let host = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    for key in [
        "net/../kernel/domainname",
        "net/ipv4/../../kernel/domainname",
        "net.ipv4.conf.lo/../../../kernel.domainname",
    ] {
        let mut cfg = sh("true");
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "uts");
        cfg.as_object_mut().unwrap().remove("hostname");
        cfg["linux"]["sysctl"] = json!({ key: "rt-hostile" });
        let c = Ctr::new("sysctl", cfg);
        let out = c.run();
        eprintln!("{key}: {out:?}");
        refused_or_ran(&out);
        drop(c);
        assert_eq!(
            fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
            host,
            "{key} changed the host's domainname"
        );
    }
}

/// No /proc mount, and the image's /proc holds files where procfs would: rt's writes
/// (sysctl, oomScoreAdj) go to the kernel's procfs, never into the image's files.
#[test]
fn procfs_writes_never_land_in_image_files() {
    require_root!();
    let mut cfg = sh("true");
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/proc");
    cfg["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" });
    cfg["process"]["oomScoreAdj"] = json!(100);
    let c = Ctr::new("noproc", cfg);
    let r = rootfs(&c);
    let fake = [
        "proc/sys/net/ipv4/ip_forward",
        "proc/self/oom_score_adj",
        "proc/thread-self/oom_score_adj",
    ];
    for f in fake {
        fs::create_dir_all(r.join(f).parent().unwrap()).unwrap();
        fs::write(r.join(f), "IMAGE").unwrap();
    }
    let out = c.run();
    eprintln!("noproc: {out:?}");
    refused_or_ran(&out);
    if is_runc() {
        // runc 1.1.5 writes these through the container's /proc path (CVE-2025-52881), then
        // fails on /proc/self/fd: only reported here.
        return;
    }
    for f in fake {
        assert_eq!(
            fs::read_to_string(r.join(f)).unwrap(),
            "IMAGE",
            "{f} was written"
        );
    }
}

/// A bind target whose directories go through an image symlink to a host path, with parts
/// still to create (CVE-2024-45310): they are made inside the rootfs.
#[test]
fn mount_target_mkdir_through_symlink_stays_inside() {
    require_root!();
    let decoy = Decoy::new();
    let before = decoy.snapshot();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("marker"), "in").unwrap();
    let mut cfg = sh("cat /escape/a/b/marker");
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/escape/a/b", "type": "bind",
        "source": src.path(), "options": ["rbind", "ro"]
    }));
    let c = Ctr::new("mkdirlink", cfg);
    plant_link(&c, "escape", decoy.str());
    let out = c.run();
    out.ok();
    assert_eq!(out.stdout, "in");
    drop(c);
    assert_eq!(
        decoy.snapshot(),
        before,
        "directories were made on the host"
    );
}

/// A file bind onto a dangling in-image symlink (`/etc/resolv.conf ->
/// /run/systemd/resolve/stub-resolv.conf` in many images): the file is made where the link
/// points inside the rootfs, never on the host.
#[test]
fn dangling_symlink_bind_target_lands_inside() {
    require_root!();
    let decoy = Decoy::new();
    let before = decoy.snapshot();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("resolv.conf"), "nameserver 192.0.2.1\n").unwrap();
    for (tag, target) in [
        ("resolvabs", format!("{}/stub-resolv.conf", decoy.str())),
        (
            "resolvrel",
            "../run/systemd/resolve/stub-resolv.conf".to_string(),
        ),
    ] {
        let mut cfg = sh("cat /etc/resolv.conf");
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/etc/resolv.conf", "type": "bind",
            "source": src.path().join("resolv.conf"), "options": ["bind", "ro"]
        }));
        let c = Ctr::new(tag, cfg);
        plant_link(&c, "etc/resolv.conf", &target);
        let out = c.run();
        out.ok();
        assert_eq!(out.stdout, "nameserver 192.0.2.1\n", "{tag}");
    }
    assert_eq!(decoy.snapshot(), before, "a file was made on the host");
}

/// process.cwd through an image symlink to a host path, not yet there: made inside.
#[test]
fn cwd_through_symlink_is_made_inside() {
    require_root!();
    let decoy = Decoy::new();
    let before = decoy.snapshot();
    let mut cfg = sh("pwd");
    cfg["process"]["cwd"] = json!("/work/sub");
    let c = Ctr::new("cwdlink", cfg);
    plant_link(&c, "work", decoy.str());
    let out = c.run();
    eprintln!("cwdlink: {out:?}");
    if refused_or_ran(&out) {
        // the shell may print the path with the link resolved (inside the container)
        assert!(out.stdout.trim_end().ends_with("/sub"), "{out:#?}");
    }
    drop(c);
    assert_eq!(decoy.snapshot(), before, "the cwd was made on the host");
}

/// The cgroup v1 tmpfs with its merged-controller links, under an image /sys/fs that is a link
/// to a host directory and no sysfs mount: the links go into the container's tmpfs.
#[test]
fn cgroup_links_through_symlink_stay_inside() {
    require_root!();
    let decoy = Decoy::new();
    let before = decoy.snapshot();
    let mut cfg = sh("ls /sys/fs/cgroup >/dev/null && echo ok");
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys");
    let c = Ctr::new("cglink", cfg);
    fs::create_dir_all(rootfs(&c).join("sys")).unwrap();
    plant_link(&c, "sys/fs", decoy.str());
    let out = c.run();
    eprintln!("cglink: {out:?}");
    if is_runc() {
        // runc 1.1.5 makes the merged-controller links (cpu -> cpu,cpuacct) on
        // rootfs + destination strings, through the image's link (CVE-2026-41579's cgroup
        // part): only reported here.
        return;
    }
    refused_or_ran(&out);
    drop(c);
    assert_eq!(
        decoy.snapshot(),
        before,
        "cgroup mounts or links landed on the host"
    );
}

/// A device node of linux.devices under a directory the image linked to the host.
#[test]
fn device_under_symlinked_dir_stays_inside() {
    require_root!();
    let decoy = Decoy::new();
    let before = decoy.snapshot();
    let mut cfg = sh("ls -l /dev/sub/node");
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    cfg["linux"]["devices"] = json!([{
        "path": "/dev/sub/node", "type": "c", "major": 1, "minor": 3, "fileMode": 438
    }]);
    let c = Ctr::new("devsub", cfg);
    let r = rootfs(&c);
    let _ = fs::remove_dir_all(r.join("dev"));
    fs::create_dir(r.join("dev")).unwrap();
    plant_link(&c, "dev/sub", decoy.str());
    let out = c.run();
    eprintln!("devsub: {out:?}");
    refused_or_ran(&out);
    drop(c);
    assert_eq!(
        decoy.snapshot(),
        before,
        "a device node was made on the host"
    );
}
