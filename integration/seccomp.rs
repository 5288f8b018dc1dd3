//! linux.seccomp end to end: the built rt runs busybox in real containers (needs root and
//! Debian's busybox-static). Self-contained until the shared integration harness lands.
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

const RT: &str = env!("CARGO_BIN_EXE_rt");
const BUSYBOX: &str = "/bin/busybox";

fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: the seccomp integration tests need root");
    false
}

/// A bundle whose rootfs is busybox and its applets, with `rt spec`'s config edited: no
/// terminal, the given args and seccomp section, no cgroup mount.
fn bundle(args: &[&str], seccomp: Option<Value>, tweak: impl FnOnce(&mut Value)) -> TempDir {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: apt-get install busybox-static"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let rootfs = dir.path().join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .expect("busybox --list-full");
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        let link = rootfs.join(applet);
        if link.exists() {
            continue;
        }
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", &link).unwrap();
    }
    let out = Command::new(RT)
        .arg("spec")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rt spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.path().join("config.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(args);
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys/fs/cgroup");
    if let Some(s) = seccomp {
        cfg["linux"]["seccomp"] = s;
    }
    // Its own top-level cgroup: tests run in parallel, and delete leaves not even an empty
    // parent behind (the default is /rt/<id>).
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cfg["linux"]["cgroupsPath"] = json!(format!("/rt-sc-{}-{n}", std::process::id()));
    tweak(&mut cfg);
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    dir
}

fn rt(b: &TempDir, cmd: &str, id: &str) -> Output {
    Command::new(RT)
        .arg("--root")
        .arg(b.path().join("state"))
        .args([cmd, id])
        .current_dir(b.path())
        .stdin(Stdio::null())
        .output()
        .expect("running rt")
}

/// `rt run`: (exit code, stdout, stderr).
fn run(
    args: &[&str],
    seccomp: Option<Value>,
    tweak: impl FnOnce(&mut Value),
) -> (i32, String, String) {
    let b = bundle(args, seccomp, tweak);
    let out = rt(&b, "run", "sc");
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    (
        out.status.code().expect("rt exited"),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn deny(names: &[&str], extra: Value) -> Value {
    let mut rule = json!({"names": names, "action": "SCMP_ACT_ERRNO"});
    if let (Some(r), Some(e)) = (rule.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

const MKDIR: &[&str] = &["mkdir", "mkdirat"];

#[test]
fn mkdir_denied_with_eperm() {
    if !root_or_skip() {
        return;
    }
    let (code, out, err) = run(
        &["sh", "-c", "mkdir /tmp/x; echo rc=$?; ls /tmp"],
        Some(deny(MKDIR, json!({}))),
        |_| {},
    );
    assert_eq!((code, out.as_str()), (0, "rc=1\n"), "stderr: {err}");
    assert_eq!(
        err,
        "mkdir: can't create directory '/tmp/x': Operation not permitted\n"
    );
}

#[test]
fn custom_errno_ret() {
    if !root_or_skip() {
        return;
    }
    let (code, out, err) = run(
        &["mkdir", "/tmp/x"],
        Some(deny(MKDIR, json!({"errnoRet": 38}))),
        |_| {},
    );
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "mkdir: can't create directory '/tmp/x': Function not implemented\n"
    );
}

#[test]
fn proc_status_shows_filter_mode() {
    if !root_or_skip() {
        return;
    }
    let args = ["grep", "^Seccomp:", "/proc/self/status"];
    let (code, out, err) = run(&args, Some(deny(MKDIR, json!({}))), |_| {});
    assert_eq!((code, out.as_str()), (0, "Seccomp:\t2\n"), "stderr: {err}");
    let (code, out, _) = run(&args, None, |_| {});
    assert_eq!(
        (code, out.as_str()),
        (0, "Seccomp:\t0\n"),
        "no profile, no filter"
    );
}

#[test]
fn argument_conditions() {
    if !root_or_skip() {
        return;
    }
    // personality(PER_LINUX32) is denied, personality(PER_LINUX) is not.
    let prof = deny(
        &["personality"],
        json!({"args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}),
    );
    let script = "linux32 true; echo a=$?; linux64 true; echo b=$?";
    let (code, out, err) = run(&["sh", "-c", script], Some(prof), |_| {});
    assert_eq!((code, out.as_str()), (0, "a=1\nb=0\n"), "stderr: {err}");
    assert!(err.contains("Operation not permitted"), "{err}");

    // kill(2) with a signal number that has bit 4 set (16-31: SIGCONT is 18) is refused.
    let masked = json!({"args": [{"index": 1, "value": 0x10, "valueTwo": 0x10, "op": "SCMP_CMP_MASKED_EQ"}]});
    let script = "kill -0 $$; echo a=$?; kill -CONT $$; echo b=$?";
    let (code, out, err) = run(&["sh", "-c", script], Some(deny(&["kill"], masked)), |_| {});
    assert_eq!((code, out.as_str()), (0, "a=0\nb=1\n"), "stderr: {err}");
    assert!(err.contains("Operation not permitted"), "{err}");
}

#[test]
fn kill_process_dies_by_sigsys() {
    if !root_or_skip() {
        return;
    }
    let prof = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_KILL_PROCESS"}]});
    let (code, out, _) = run(&["mkdir", "/tmp/x"], Some(prof), |_| {});
    assert_eq!((code, out.as_str()), (128 + libc::SIGSYS, ""));
    let prof = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_TRAP"}]});
    let (code, _, _) = run(&["mkdir", "/tmp/x"], Some(prof), |_| {});
    assert_eq!(
        code,
        128 + libc::SIGSYS,
        "TRAP's SIGSYS is fatal when unhandled"
    );
}

#[test]
fn allow_list_with_errno_default() {
    if !root_or_skip() {
        return;
    }
    // What a static busybox needs for `true` and `echo`, and rt for its last steps.
    let mut names = vec![
        "execve",
        "exit_group",
        "arch_prctl",
        "set_tid_address",
        "brk",
        "getuid",
        "geteuid",
        "getpid",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "mprotect",
        "readlinkat",
        "close_range",
        "getrandom",
    ];
    let prof = |names: &[&str]| {
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["a_syscall_from_the_future"], "action": "SCMP_ACT_ALLOW"},
        ]})
    };
    let (code, out, err) = run(&["true"], Some(prof(&names)), |_| {});
    assert_eq!((code, out.as_str()), (0, ""), "stderr: {err}");
    let (code, out, _) = run(&["echo", "allowed"], Some(prof(&names)), |_| {});
    assert_eq!((code, out.as_str()), (1, ""), "write is not on the list");
    names.push("write");
    let (code, out, err) = run(&["echo", "allowed"], Some(prof(&names)), |_| {});
    assert_eq!((code, out.as_str()), (0, "allowed\n"), "stderr: {err}");
}

#[test]
fn filter_before_user_switch_without_nnp() {
    if !root_or_skip() {
        return;
    }
    // uid 1000 without CAP_SYS_ADMIN and without no_new_privs cannot install a filter itself,
    // so init installs it before switching user.
    let (code, out, err) = run(
        &[
            "sh",
            "-c",
            "id -u; grep ^NoNewPrivs: /proc/self/status; mkdir /tmp/x",
        ],
        Some(deny(MKDIR, json!({"errnoRet": 38}))),
        |c| {
            c["process"]["noNewPrivileges"] = json!(false);
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        },
    );
    assert_eq!((code, out.as_str()), (1, "1000\nNoNewPrivs:\t0\n"));
    assert_eq!(
        err,
        "mkdir: can't create directory '/tmp/x': Function not implemented\n"
    );
}

#[test]
fn flags_are_accepted() {
    if !root_or_skip() {
        return;
    }
    let mut prof = deny(MKDIR, json!({}));
    prof["flags"] = json!([
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
    ]);
    if cfg!(target_arch = "x86_64") {
        prof["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    }
    let (code, _, err) = run(&["sh", "-c", "mkdir /tmp/x"], Some(prof), |_| {});
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "mkdir: can't create directory '/tmp/x': Operation not permitted\n"
    );
}

/// `rt create` fails naming the problem, and leaves no state behind.
fn refused(seccomp: Value, expect: &str) {
    let b = bundle(&["true"], Some(seccomp), |_| {});
    let out = rt(&b, "create", "bad");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "create succeeded");
    assert!(err.contains(expect), "stderr {err:?} lacks {expect:?}");
    assert!(
        !b.path().join("state/bad").exists(),
        "state dir left behind"
    );
    let list = rt(&b, "state", "bad");
    assert!(
        !list.status.success(),
        "the container exists after a failed create"
    );
}

#[test]
fn malformed_profiles_fail_create() {
    if !root_or_skip() {
        return;
    }
    let arg = json!({"args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]});
    refused(
        deny(MKDIR, arg),
        "linux.seccomp.syscalls[0] (mkdir, mkdirat): args[0]: index 6 is out of range: syscalls take arguments 0 to 5",
    );
    let mut bad_action = deny(MKDIR, json!({}));
    bad_action["syscalls"][0]["action"] = json!("SCMP_ACT_BOGUS");
    refused(
        bad_action,
        "linux.seccomp.syscalls[0].action: unknown variant `SCMP_ACT_BOGUS`",
    );
    refused(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"]}),
        "linux.seccomp.architectures [SCMP_ARCH_S390X] lists no architecture this host runs",
    );
    refused(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
        "SCMP_ACT_NOTIFY (seccomp user notification) is not supported",
    );
    refused(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}),
        "linux.seccomp.listenerPath: seccomp user notification (SCMP_ACT_NOTIFY) is not supported",
    );
}

/// Docker/containers-common's profile format reduced to OCI for this host, the way engines do:
/// entries for other arches or for capabilities the process lacks are dropped.
fn oci_from_engine_profile(engine: &Value, caps: &[&str]) -> Value {
    let has = |list: &Value| {
        list.as_array()
            .is_some_and(|l| l.iter().all(|c| caps.contains(&c.as_str().unwrap())))
    };
    let any = |list: &Value| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|c| caps.contains(&c.as_str().unwrap())))
    };
    let mut syscalls = Vec::new();
    for s in engine["syscalls"].as_array().unwrap() {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        let arches = inc["arches"].as_array().filter(|a| !a.is_empty());
        if arches.is_some_and(|a| !a.contains(&json!("amd64"))) {
            continue;
        }
        if inc["caps"].as_array().is_some_and(|c| !c.is_empty()) && !has(&inc["caps"]) {
            continue;
        }
        if any(&exc["caps"]) {
            continue;
        }
        let mut e = json!({"names": s["names"], "action": s["action"]});
        if !s["errnoRet"].is_null() {
            e["errnoRet"] = s["errnoRet"].clone();
        }
        if s["args"].as_array().is_some_and(|a| !a.is_empty()) {
            e["args"] = s["args"].clone();
        }
        syscalls.push(e);
    }
    json!({"defaultAction": engine["defaultAction"], "defaultErrnoRet": engine["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": syscalls})
}

#[cfg(target_arch = "x86_64")]
#[test]
fn engine_default_profile() {
    const PROFILE: &str = "/usr/share/containers/seccomp.json";
    if !root_or_skip() {
        return;
    }
    let Ok(text) = std::fs::read(PROFILE) else {
        eprintln!("skipped: {PROFILE} is missing (Debian's golang-github-containers-common)");
        return;
    };
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let prof = oci_from_engine_profile(&serde_json::from_slice(&text).unwrap(), &caps);
    let script = "grep ^Seccomp: /proc/self/status; mkdir -p /tmp/d && echo mkdir-ok; linux32 true; echo l32=$?; \
                  hostname foo; echo h=$?; ls /bin/busybox; ps -o pid,comm >/dev/null; echo ps=$?";
    let (code, out, err) = run(&["sh", "-c", script], Some(prof), |c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
    });
    assert_eq!(
        (code, out.as_str()),
        (0, "Seccomp:\t2\nmkdir-ok\nl32=0\nh=1\n/bin/busybox\nps=0\n"),
        "stderr: {err}"
    );
    assert_eq!(err, "hostname: sethostname: Operation not permitted\n");
}

/// A static x86_64 ELF that makes one getpid of another ABI and exits with the low byte of its
/// result: 1 as the container's pid 1, 218 for -ENOSYS, 255 for -EPERM. i386 goes through
/// `int 0x80` (getpid is 20 there); x32 is `syscall` with bit 30 set on x86_64's number 39.
#[cfg(target_arch = "x86_64")]
fn getpid_elf(x32: bool) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let mut code: Vec<u8> = if x32 {
        vec![0xb8, 39, 0, 0, 0x40, 0x0f, 0x05] // mov eax, 0x40000027; syscall
    } else {
        vec![0xb8, 20, 0, 0, 0, 0xcd, 0x80] // mov eax, 20; int 0x80
    };
    code.extend([
        0x89, 0xc7, // mov edi, eax
        0xb8, 60, 0, 0, 0, // mov eax, 60 (exit)
        0x0f, 0x05, // syscall
    ]);
    let total = (64 + 56 + code.len()) as u64;
    let mut e = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    e.extend(2u16.to_le_bytes()); // ET_EXEC
    e.extend(0x3eu16.to_le_bytes()); // EM_X86_64
    e.extend(1u32.to_le_bytes());
    e.extend((BASE + 64 + 56).to_le_bytes()); // entry
    e.extend(64u64.to_le_bytes()); // phoff
    e.extend(0u64.to_le_bytes()); // shoff
    e.extend(0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 0, 0, 0] {
        e.extend(v.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    e.extend(1u32.to_le_bytes()); // PT_LOAD
    e.extend(5u32.to_le_bytes()); // R+X
    for v in [0, BASE, BASE, total, total, 0x1000] {
        e.extend(v.to_le_bytes()); // offset, vaddr, paddr, filesz, memsz, align
    }
    e.extend(code);
    e
}

/// An allow list (default EPERM) with what init's last steps and the probe need.
#[cfg(target_arch = "x86_64")]
fn allow_list(arches: &[&str]) -> Value {
    let names = [
        "execve",
        "exit",
        "exit_group",
        "brk",
        "mmap",
        "munmap",
        "mprotect",
        "close_range",
        "rt_sigprocmask",
        "rt_sigaction",
        "sigaltstack",
    ];
    json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": arches,
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]})
}

#[cfg(target_arch = "x86_64")]
fn probe_abi(x32: bool, seccomp: Option<Value>) -> i32 {
    use std::os::unix::fs::PermissionsExt;
    let b = bundle(&["/probe"], seccomp, |_| {});
    let path = b.path().join("rootfs/probe");
    std::fs::write(&path, getpid_elf(x32)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = rt(&b, "run", "abi");
    out.status.code().expect("rt exited")
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscalls_follow_the_architectures_list() {
    if !root_or_skip() {
        return;
    }
    let probe = |seccomp| probe_abi(false, seccomp);
    if probe(None) != 1 {
        eprintln!("skipped: this kernel does not run i386 syscalls (ia32 emulation off)");
        return;
    }
    let mut prof = deny(MKDIR, json!({}));
    assert_eq!(
        probe(Some(prof.clone())),
        128 + libc::SIGSYS,
        "unlisted arch: killed"
    );
    prof["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    assert_eq!(
        probe(Some(prof.clone())),
        256 - libc::ENOSYS,
        "listed under a deny list: ENOSYS"
    );
    prof["syscalls"] = json!([]);
    assert_eq!(
        probe(Some(prof)),
        1,
        "nothing denied: the default (allow) applies"
    );
    let listed = allow_list(&["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    assert_eq!(
        probe(Some(listed)),
        256 - libc::EPERM,
        "allow list: the default"
    );
    let unlisted = allow_list(&["SCMP_ARCH_X86_64"]);
    assert_eq!(
        probe(Some(unlisted)),
        128 + libc::SIGSYS,
        "allow list, unlisted: killed"
    );
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscalls_follow_the_architectures_list() {
    if !root_or_skip() {
        return;
    }
    // The filter sees x32 numbers whether or not the kernel runs x32 (Debian's does not by
    // default and answers ENOSYS), so only the no-filter baseline varies.
    let baseline = probe_abi(true, None);
    assert!(
        baseline == 1 || baseline == 256 - libc::ENOSYS,
        "baseline {baseline}"
    );
    let mut prof = deny(MKDIR, json!({}));
    assert_eq!(
        probe_abi(true, Some(prof.clone())),
        128 + libc::SIGSYS,
        "x32 not listed: killed"
    );
    prof["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]);
    assert_eq!(
        probe_abi(true, Some(prof)),
        256 - libc::ENOSYS,
        "listed under a deny list: ENOSYS"
    );
    let allow = allow_list(&["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]);
    assert_eq!(
        probe_abi(true, Some(allow)),
        256 - libc::EPERM,
        "allow list: the default"
    );
    // Native syscalls are unaffected by the x32 check.
    let b = bundle(&["true"], Some(deny(MKDIR, json!({}))), |_| {});
    assert_eq!(rt(&b, "run", "native").status.code(), Some(0));
}
