//! linux.seccomp end to end: the runtime under test runs busybox in real containers (needs root
//! and Debian's busybox-static). It is `$RT_BIN` when set, else the rt cargo built:
//! `RT_BIN=$(which runc) cargo test --test seccomp` proves the tests against runc.
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

const BUSYBOX: &str = "/bin/busybox";

fn rt_bin() -> PathBuf {
    match std::env::var_os("RT_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_rt")),
    }
}

/// True when the binary under test is runc: only to relax an assertion where runc 1.1.5 differs,
/// and each such place says why.
fn is_runc() -> bool {
    rt_bin()
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|n| n.starts_with("runc"))
}

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
    let out = Command::new(rt_bin())
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
    // parent behind.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cfg["linux"]["cgroupsPath"] = json!(format!("/rt-sc-{}-{n}", std::process::id()));
    tweak(&mut cfg);
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    dir
}

fn rt(b: &TempDir, cmd: &str, id: &str) -> Output {
    Command::new(rt_bin())
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

/// What the runtime's init still does once the filter is on, and what a static busybox needs to
/// start: an allow list without these fails before the test's own command runs. rt needs only
/// execve; runc 1.1.5's init (Go) closes fds, writes exec.fifo, walks /proc/self/fd and takes
/// signals after installing the filter.
const NEEDED: &[&str] = &[
    "execve",
    "exit",
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
    "readlink",
    "readlinkat",
    "getrandom",
    "prctl",
    "write", // busybox
    "close",
    "openat",
    "fstatfs",
    "getdents64",
    "epoll_ctl",
    "futex",
    "rt_sigreturn",
    "rt_sigprocmask",
    "sched_yield",
    "nanosleep",
    "mmap",
    "munmap",
    "madvise",
    "fcntl",
    "read",
    "newfstatat",
    "sigaltstack",
    "tgkill",
    "gettid",
    "close_range",
    "rt_sigaction", // runc
];

#[test]
fn allow_list_with_errno_default() {
    if !root_or_skip() {
        return;
    }
    let prof = |extra: &[&str]| {
        let mut p = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": NEEDED, "action": "SCMP_ACT_ALLOW"},
            {"names": ["a_syscall_from_the_future"], "action": "SCMP_ACT_ALLOW"},
        ]});
        if !extra.is_empty() {
            let e = json!({"names": extra, "action": "SCMP_ACT_ALLOW"});
            p["syscalls"].as_array_mut().unwrap().push(e);
        }
        p
    };
    let (code, out, err) = run(&["true"], Some(prof(&[])), |_| {});
    assert_eq!((code, out.as_str()), (0, ""), "stderr: {err}");
    let (code, out, err) = run(&["mkdir", "/tmp/x"], Some(prof(&[])), |_| {});
    assert_eq!((code, out.as_str()), (1, ""), "mkdir is not on the list");
    assert_eq!(
        err,
        "mkdir: can't create directory '/tmp/x': Operation not permitted\n"
    );
    let (code, out, err) = run(&["mkdir", "/tmp/x"], Some(prof(MKDIR)), |c| {
        c["root"]["readonly"] = json!(false);
    });
    assert_eq!((code, out.as_str()), (0, ""), "stderr: {err}");
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
    if is_runc() {
        // runc 1.1.5 refuses every flag; 1.2 takes them.
        assert!(
            err.contains("seccomp flags are not yet supported by runc"),
            "{err}"
        );
        return;
    }
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
    assert!(!out.status.success(), "create succeeded: want {expect:?}");
    // runc words its errors its own way; that it refuses, and cleans up, is what matters.
    if !is_runc() {
        assert!(err.contains(expect), "stderr {err:?} lacks {expect:?}");
    }
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
    // SCMP_ACT_NOTIFY's refusals are in integration/seccomp_notify.rs, with its agent.
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

/// The ABI a probe call is made with.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq)]
enum Abi {
    Native,
    /// `int 0x80`
    I386,
    /// `syscall` with bit 30 set in the number
    X32,
}

/// One syscall a probe makes: ABI, number, arguments.
#[cfg(target_arch = "x86_64")]
type Call = (Abi, u32, [u64; 6]);

#[cfg(target_arch = "x86_64")]
fn call(nr: u32, args: &[u64]) -> Call {
    call_on(Abi::Native, nr, args)
}

#[cfg(target_arch = "x86_64")]
fn call_on(abi: Abi, nr: u32, args: &[u64]) -> Call {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    (abi, nr, a)
}

/// A static x86_64 ELF that makes each call in turn, keeps the low byte of each result, writes
/// those bytes to stdout in one write(2) and exits 0. A negative byte is -errno.
#[cfg(target_arch = "x86_64")]
fn probe_elf(calls: &[Call]) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    assert!(calls.len() <= 64);
    let mut code: Vec<u8> = vec![0x48, 0x83, 0xec, 0x40]; // sub rsp, 64
    for (i, (abi, nr, args)) in calls.iter().enumerate() {
        if *abi == Abi::I386 {
            code.push(0xb8); // mov eax, nr
            code.extend(nr.to_le_bytes());
            // ebx, ecx, edx, esi, edi, ebp
            for (op, v) in [0xbb, 0xb9, 0xba, 0xbe, 0xbf, 0xbd].iter().zip(args) {
                code.push(*op);
                code.extend((*v as u32).to_le_bytes());
            }
            code.extend([0xcd, 0x80]); // int 0x80
        } else {
            let nr = if *abi == Abi::X32 {
                nr | 0x4000_0000
            } else {
                *nr
            };
            code.extend([0x48, 0xb8]); // movabs rax, nr
            code.extend(u64::from(nr).to_le_bytes());
            // rdi, rsi, rdx, r10, r8, r9
            let regs = [
                [0x48, 0xbf],
                [0x48, 0xbe],
                [0x48, 0xba],
                [0x49, 0xba],
                [0x49, 0xb8],
                [0x49, 0xb9],
            ];
            for (op, v) in regs.iter().zip(args) {
                code.extend(op);
                code.extend(v.to_le_bytes());
            }
            code.extend([0x0f, 0x05]); // syscall
        }
        code.extend([0x88, 0x44, 0x24, i as u8]); // mov [rsp + i], al
    }
    code.extend([0xb8, 1, 0, 0, 0, 0xbf, 1, 0, 0, 0]); // mov eax, 1 (write); mov edi, 1
    code.extend([0x48, 0x89, 0xe6, 0xba]); // mov rsi, rsp; mov edx, len
    code.extend((calls.len() as u32).to_le_bytes());
    code.extend([0x0f, 0x05]); // syscall
    code.extend([0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]); // exit(0)
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

/// What a probe's calls returned: Ok(low byte of the value) or Err(errno); Err(None) when the
/// container did not get as far as writing them (the runtime's exit code or the signal).
#[cfg(target_arch = "x86_64")]
fn probe(
    seccomp: Option<Value>,
    tweak: impl FnOnce(&mut Value),
    calls: &[Call],
) -> Result<Vec<Result<u8, i32>>, i32> {
    use std::os::unix::fs::PermissionsExt;
    let b = bundle(&["/probe"], seccomp, tweak);
    let path = b.path().join("rootfs/probe");
    std::fs::write(&path, probe_elf(calls)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = rt(&b, "run", "probe");
    let code = out.status.code().expect("runtime exited");
    if code != 0 || out.stdout.len() != calls.len() {
        eprintln!(
            "probe: exit {code}, stderr {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return Err(code);
    }
    Ok(out
        .stdout
        .iter()
        .map(|b| {
            if (*b as i8) < 0 {
                Err(-i32::from(*b as i8))
            } else {
                Ok(*b)
            }
        })
        .collect())
}

/// The probe's results as errnos (0 for a success), for compact assertions.
#[cfg(target_arch = "x86_64")]
fn errnos(r: Result<Vec<Result<u8, i32>>, i32>) -> Vec<i32> {
    let r = r.unwrap_or_else(|code| panic!("probe failed: exit {code}"));
    r.into_iter().map(|v| v.err().unwrap_or(0)).collect()
}

/// A kernel with ia32 emulation runs `int 0x80` getpid (20) as the container's pid 1.
#[cfg(target_arch = "x86_64")]
fn runs_i386() -> bool {
    let got = probe(None, |_| {}, &[call_on(Abi::I386, 20, &[])]);
    got == Ok(vec![Ok(1)])
}

/// Issue 1: several syscalls with argument rules, each rule with its own errno, all reached.
#[cfg(target_arch = "x86_64")]
#[test]
fn conditional_rules_keep_their_own_errno() {
    if !root_or_skip() {
        return;
    }
    // add_key and request_key are not in Docker's profile; personality has argument rules there.
    let (add_key, request_key, pers) = (
        libc::SYS_add_key as u32,
        libc::SYS_request_key as u32,
        libc::SYS_personality as u32,
    );
    let pvr = libc::SYS_process_vm_readv as u32;
    let rules = json!([
        {"names": ["process_vm_readv"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EINVAL,
         "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"}]},
        {"names": ["process_vm_readv"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOANO,
         "args": [{"index": 0, "value": 1337, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EBADE,
         "args": [{"index": 0, "value": 0xdead, "op": "SCMP_CMP_EQ"}]},
        {"names": ["add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EINVAL,
         "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"}]},
        {"names": ["add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOANO,
         "args": [{"index": 0, "value": 1337, "op": "SCMP_CMP_EQ"}]},
        {"names": ["request_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
         "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"}]},
    ]);
    let calls = [
        call(pvr, &[100]),
        call(pvr, &[1337]),
        call(add_key, &[100]),
        call(add_key, &[1337]),
        call(add_key, &[5]),
        call(request_key, &[100]),
        call(request_key, &[5]),
        call(pers, &[0xdead]),
        call(pers, &[0xffff_ffff]), // query
    ];
    let kernel = errnos(probe(None, |_| {}, &calls));
    let (einval, enoano, exdev, ebade) = (libc::EINVAL, libc::ENOANO, libc::EXDEV, libc::EBADE);
    // A deny list: unmatched calls reach the kernel.
    let deny = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules});
    let got = errnos(probe(Some(deny), |_| {}, &calls));
    assert_eq!(
        got,
        [einval, enoano, einval, enoano, kernel[4], exdev, kernel[6], ebade, 0]
    );
    // The same rules with Docker's profile, an allow list with argument rules of its own
    // (personality, clone, socket): unmatched calls get its EPERM default, and its entry
    // allowing process_vm_readv outright overrides the rules with args (libseccomp).
    let Some(mut docker) = docker_profile() else {
        return;
    };
    docker["syscalls"]
        .as_array_mut()
        .unwrap()
        .extend(rules.as_array().unwrap().iter().cloned());
    let got = errnos(probe(Some(docker), |_| {}, &calls));
    assert_eq!(
        got,
        [kernel[0], kernel[1], einval, enoano, EPERM, exdev, EPERM, ebade, 0]
    );
}

/// libseccomp's precedence, which runc 1.1.5 shows: an entry without args overrides the
/// syscall's entries with args, before or after them; of two such entries the first wins; one
/// whose action is the default is dropped and overrides nothing.
#[cfg(target_arch = "x86_64")]
#[test]
fn unconditional_entry_overrides_conditional_ones() {
    if !root_or_skip() {
        return;
    }
    let entry = |action: &str, errno: i32, arg0: Option<u64>| {
        let mut e = json!({"names": ["add_key"], "action": action});
        if errno != 0 {
            e["errnoRet"] = json!(errno);
        }
        if let Some(v) = arg0 {
            e["args"] = json!([{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]);
        }
        e
    };
    let add_key = libc::SYS_add_key as u32;
    let calls = [call(add_key, &[100]), call(add_key, &[5])];
    let kernel = errnos(probe(None, |_| {}, &calls));
    let (einval, exdev) = (libc::EINVAL, libc::EXDEV);
    let cond = entry("SCMP_ACT_ERRNO", einval, Some(100));
    let plain = entry("SCMP_ACT_ERRNO", exdev, None);
    for (what, entries, want) in [
        ("before", json!([plain, cond]), [exdev, exdev]),
        ("after", json!([cond, plain]), [exdev, exdev]),
        (
            "two",
            json!([plain, entry("SCMP_ACT_ERRNO", libc::ENOANO, None)]),
            [exdev, exdev],
        ),
        (
            "default",
            json!([entry("SCMP_ACT_ALLOW", 0, None), cond]),
            [einval, kernel[1]],
        ),
    ] {
        let p = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": entries});
        assert_eq!(errnos(probe(Some(p), |_| {}, &calls)), want, "{what}");
    }
}

/// containers-common's default profile (podman's) as an engine hands it to the runtime; None
/// (and a skip line) where the package is missing.
fn engine_profile() -> Option<Value> {
    const PROFILE: &str = "/usr/share/containers/seccomp.json";
    let Ok(text) = std::fs::read(PROFILE) else {
        eprintln!("skipped: {PROFILE} is missing (Debian's golang-github-containers-common)");
        return None;
    };
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    Some(oci_from_engine_profile(
        &serde_json::from_slice(&text).unwrap(),
        &caps,
    ))
}

/// Docker's (and containerd's) default profile: containers-common's with an EPERM default and
/// clone3 answering ENOSYS (podman's answers ENOSYS by default and allows clone3).
fn docker_profile() -> Option<Value> {
    let mut p = without(engine_profile()?, &["clone3"]);
    p["defaultErrnoRet"] = json!(libc::EPERM);
    let clone3 = json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS});
    p["syscalls"].as_array_mut().unwrap().push(clone3);
    Some(p)
}

/// Syscalls newer than close_range (436), as a profile written before them would lack them.
const AFTER_CLOSE_RANGE: &[&str] = &[
    "openat2",
    "pidfd_getfd",
    "faccessat2",
    "process_madvise",
    "epoll_pwait2",
    "mount_setattr",
    "quotactl_fd",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "memfd_secret",
    "process_mrelease",
    "futex_waitv",
    "set_mempolicy_home_node",
    "cachestat",
    "fchmodat2",
    "map_shadow_stack",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "statmount",
    "listmount",
    "lsm_get_self_attr",
    "lsm_set_self_attr",
    "lsm_list_modules",
    "mseal",
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "open_tree_attr",
    "uretprobe",
];

fn without(mut profile: Value, names: &[&str]) -> Value {
    for s in profile["syscalls"].as_array_mut().unwrap() {
        s["names"]
            .as_array_mut()
            .unwrap()
            .retain(|n| !names.contains(&n.as_str().unwrap()));
    }
    profile["syscalls"]
        .as_array_mut()
        .unwrap()
        .retain(|s| !s["names"].as_array().unwrap().is_empty());
    profile
}

const ENOSYS: i32 = libc::ENOSYS;
const EPERM: i32 = libc::EPERM;

/// Issue 2: under Docker's profile with an EPERM default, a syscall newer than every one the
/// profile names answers ENOSYS (so glibc falls back), an older unnamed one EPERM.
#[cfg(target_arch = "x86_64")]
#[test]
fn newer_syscalls_answer_enosys() {
    if !root_or_skip() {
        return;
    }
    let Some(docker) = docker_profile() else {
        return;
    };
    let old = without(docker.clone(), AFTER_CLOSE_RANGE);
    let calls = [
        call(libc::SYS_openat2 as u32, &[]),
        call(libc::SYS_faccessat2 as u32, &[]),
        call(libc::SYS_clone3 as u32, &[]), // the profile's own ENOSYS entry
        call(1000, &[]),
        call(libc::SYS_close_range as u32, &[1000, 1000, 0]),
        call(libc::SYS_add_key as u32, &[]), // older, not in the profile: the default
        call(libc::SYS_getpid as u32, &[]),
    ];
    assert_eq!(
        errnos(probe(Some(old), |_| {}, &calls)),
        [ENOSYS, ENOSYS, ENOSYS, ENOSYS, 0, EPERM, 0]
    );
    // The full profile names them: they reach the kernel (bad pointers: EFAULT).
    let kernel = errnos(probe(None, |_| {}, &calls));
    let full = errnos(probe(Some(docker), |_| {}, &calls));
    assert_eq!(full[..2], kernel[..2]);
    assert_eq!(full[2..], [ENOSYS, ENOSYS, 0, EPERM, 0]);
}

/// Only a default that is not allow, log or trace gets the ENOSYS rule: under kill, a newer
/// syscall answers ENOSYS instead of killing; under log it reaches the kernel.
#[cfg(target_arch = "x86_64")]
#[test]
fn enosys_rule_follows_the_default_action() {
    if !root_or_skip() {
        return;
    }
    let Some(docker) = docker_profile() else {
        return;
    };
    let mut old = without(docker, AFTER_CLOSE_RANGE);
    old.as_object_mut().unwrap().remove("defaultErrnoRet");
    let openat2 = call(libc::SYS_openat2 as u32, &[]);
    let add_key = call(libc::SYS_add_key as u32, &[]);
    let kernel = errnos(probe(None, |_| {}, &[openat2]));
    for default in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"] {
        old["defaultAction"] = json!(default);
        assert_eq!(
            errnos(probe(Some(old.clone()), |_| {}, &[openat2])),
            [ENOSYS],
            "{default}"
        );
        assert_eq!(
            probe(Some(old.clone()), |_| {}, &[add_key]),
            Err(128 + libc::SIGSYS),
            "{default}: older syscalls get the default"
        );
    }
    old["defaultAction"] = json!("SCMP_ACT_LOG");
    assert_eq!(errnos(probe(Some(old), |_| {}, &[openat2])), kernel, "log");
}

/// The native ABI gets the rule even when the profile lists no architectures.
#[cfg(target_arch = "x86_64")]
#[test]
fn enosys_rule_without_architectures_list() {
    if !root_or_skip() {
        return;
    }
    let Some(docker) = docker_profile() else {
        return;
    };
    let mut old = without(docker, AFTER_CLOSE_RANGE);
    old.as_object_mut().unwrap().remove("architectures");
    let got = errnos(probe(
        Some(old),
        |_| {},
        &[call(libc::SYS_openat2 as u32, &[]), call(1000, &[])],
    ));
    if is_runc() {
        // runc 1.1.5 builds the rule only for listed architectures; 1.1.15 and 1.2 always add
        // the native one (opencontainers/runc#4219).
        assert_eq!(got, [EPERM, EPERM]);
    } else {
        assert_eq!(got, [ENOSYS, ENOSYS]);
    }
}

/// i386 and x32 calls follow the profile in their own numbers, with their own ENOSYS rule.
#[cfg(target_arch = "x86_64")]
#[test]
fn enosys_rule_per_compat_architecture() {
    if !root_or_skip() {
        return;
    }
    let Some(docker) = docker_profile() else {
        return;
    };
    let old = without(docker, AFTER_CLOSE_RANGE);
    if runs_i386() {
        // i386: getpid 20, add_key 286, close_range 436, openat2 437.
        let calls = [
            call_on(Abi::I386, 20, &[]),
            call_on(Abi::I386, 286, &[]),
            call_on(Abi::I386, 436, &[1000, 1000, 0]),
            call_on(Abi::I386, 437, &[]),
            call_on(Abi::I386, 1000, &[]),
        ];
        let got = errnos(probe(Some(old.clone()), |_| {}, &calls));
        assert_eq!(got, [0, EPERM, 0, ENOSYS, ENOSYS]);
    } else {
        eprintln!("skipped the i386 part: this kernel does not run i386 syscalls");
    }
    // x32 (the kernel may not run x32, and then answers ENOSYS itself): add_key is 248 and
    // older than the profile, 1000 newer.
    let calls = [call_on(Abi::X32, 248, &[]), call_on(Abi::X32, 1000, &[])];
    let got = errnos(probe(Some(old), |_| {}, &calls));
    assert_eq!(got, [EPERM, ENOSYS]);
}

/// Issue 3: the runtime's own steps after the filter is on never depend on what the profile
/// allows: a profile denying getcwd, close_range and rt_sigaction (and, when the filter can go
/// on last, capset, setresuid and prctl) still starts the container, whose process sees them
/// denied.
#[test]
fn runtime_steps_are_not_blocked_by_the_filter() {
    if !root_or_skip() {
        return;
    }
    let common = ["getcwd", "close_range", "rt_sigaction"];
    // noNewPrivileges: the filter goes on last, right before execve.
    let mut names = common.to_vec();
    names.extend(["capset", "setresuid", "setresgid", "setgroups", "prctl"]);
    let (code, out, err) = run(&["pwd"], Some(deny(&names, json!({}))), |c| {
        c["process"]["cwd"] = json!("/tmp");
    });
    assert_eq!((code, out.as_str()), (1, ""), "stderr: {err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    // Without it and without CAP_SYS_ADMIN (Docker's and Kubernetes' default), the filter goes
    // on before the user switch, whose calls it must then allow, as under runc.
    let (code, out, err) = run(&["pwd"], Some(deny(&common, json!({}))), |c| {
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["noNewPrivileges"] = json!(false);
    });
    if is_runc() {
        // Debian's runc 1.1.5 (with the CVE-2024-21626 fix backported) checks its cwd with
        // getcwd after installing the filter on this path, so the profile breaks create.
        assert_eq!(code, 1);
        assert!(
            err.contains("failed to verify if current working directory is safe"),
            "{err}"
        );
    } else {
        assert_eq!((code, out.as_str()), (1, ""), "stderr: {err}");
        assert!(err.contains("Operation not permitted"), "{err}");
    }
    // And with the calls allowed, the same container prints its cwd.
    let (code, out, err) = run(&["pwd"], Some(deny(&["mkdir"], json!({}))), |c| {
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["noNewPrivileges"] = json!(false);
    });
    assert_eq!((code, out.as_str()), (0, "/tmp\n"), "stderr: {err}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscalls_follow_the_architectures_list() {
    if !root_or_skip() {
        return;
    }
    if !runs_i386() {
        eprintln!("skipped: this kernel does not run i386 syscalls (ia32 emulation off)");
        return;
    }
    // i386: getpid 20, mkdir 39; x86_64's mkdir number (83) is i386's symlink.
    let calls = [
        call_on(Abi::I386, 20, &[]),
        call_on(Abi::I386, 39, &[]),
        call(libc::SYS_mkdir as u32, &[]),
    ];
    let mut prof = deny(&["mkdir", "getpid"], json!({}));
    assert_eq!(
        probe(Some(prof.clone()), |_| {}, &calls),
        Err(128 + libc::SIGSYS),
        "unlisted arch: killed"
    );
    prof["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    let got = errnos(probe(Some(prof), |_| {}, &calls));
    assert_eq!(
        got,
        [EPERM, EPERM, EPERM],
        "listed: the rules in i386's numbers"
    );
    let allow = |arches: &[&str]| {
        json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": arches,
            "syscalls": [{"names": NEEDED, "action": "SCMP_ACT_ALLOW"}]})
    };
    // getpid is allowed, mkdir is not; i386 listed or not.
    let calls = [call_on(Abi::I386, 20, &[]), call_on(Abi::I386, 39, &[])];
    let got = probe(
        Some(allow(&["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])),
        |_| {},
        &calls,
    );
    assert_eq!(got, Ok(vec![Ok(1), Err(EPERM)]), "allow list");
    let got = probe(Some(allow(&["SCMP_ARCH_X86_64"])), |_| {}, &calls);
    assert_eq!(got, Err(128 + libc::SIGSYS), "allow list, unlisted: killed");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscalls_follow_the_architectures_list() {
    if !root_or_skip() {
        return;
    }
    // The filter sees x32 numbers whether or not the kernel runs x32 (Debian's does not by
    // default and answers ENOSYS), so what an allowed call returns is the baseline's.
    // x32: getpid 39, mkdir 83.
    let calls = [call_on(Abi::X32, 39, &[]), call_on(Abi::X32, 83, &[])];
    let kernel = errnos(probe(None, |_| {}, &calls));
    assert!(kernel[0] == 0 || kernel[0] == ENOSYS, "baseline {kernel:?}");
    let mut prof = deny(MKDIR, json!({}));
    assert_eq!(
        probe(Some(prof.clone()), |_| {}, &calls),
        Err(128 + libc::SIGSYS),
        "x32 not listed: killed"
    );
    prof["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]);
    let got = errnos(probe(Some(prof), |_| {}, &calls));
    assert_eq!(
        got,
        [kernel[0], EPERM],
        "listed: the rules in x32's numbers"
    );
    let allow = json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "syscalls": [{"names": NEEDED, "action": "SCMP_ACT_ALLOW"}]});
    let got = errnos(probe(Some(allow), |_| {}, &calls));
    assert_eq!(got, [kernel[0], EPERM], "allow list");
    // Native syscalls are unaffected by the x32 check.
    let b = bundle(&["true"], Some(deny(MKDIR, json!({}))), |_| {});
    assert_eq!(rt(&b, "run", "native").status.code(), Some(0));
}

/// runc's rule for one entry's conditions on the same argument (runc's own bats profile
/// seccomp_syscall_test1.json has them): they are ORed, each its own rule; conditions on
/// different arguments stay ANDed.
#[cfg(target_arch = "x86_64")]
#[test]
fn conditions_on_one_argument_are_ored() {
    if !root_or_skip() {
        return;
    }
    let (add_key, request_key) = (libc::SYS_add_key as u32, libc::SYS_request_key as u32);
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOANO,
         "args": [{"index": 0, "value": 1337, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 2020, "op": "SCMP_CMP_EQ"}]},
        {"names": ["request_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
         "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 8, "op": "SCMP_CMP_EQ"}]},
    ]});
    let calls = [
        call(add_key, &[1337]),
        call(add_key, &[2020]),
        call(add_key, &[5]),
        call(request_key, &[7, 8]),
        call(request_key, &[7, 9]),
    ];
    let kernel = errnos(probe(None, |_| {}, &calls));
    let got = errnos(probe(Some(profile), |_| {}, &calls));
    assert_eq!(
        got,
        [
            libc::ENOANO,
            libc::ENOANO,
            kernel[2],
            libc::EXDEV,
            kernel[4]
        ]
    );
}

/// startContainer hooks run under the container's filter, as runc runs them: a hook that does
/// what the profile forbids fails the start (runc's seccomp.bats).
#[test]
fn start_container_hook_runs_under_the_filter() {
    if !root_or_skip() {
        return;
    }
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}
    ]});
    let b = bundle(&["/bin/true"], Some(profile), |cfg| {
        cfg["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /dev/shm/foo"]}
        ]});
    });
    let out = rt(&b, "run", "hookfilter");
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    // runc's words (its seccomp.bats matches them)
    assert!(err.contains("error running hook"), "{err}");
    assert!(err.contains("bad system call"), "{err}");
}
