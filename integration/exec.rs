//! `exec`: one more process in a running container. Each test starts a `sleep` container
//! and checks what the exec'd process printed or what the host sees of it.

use crate::common::*;
use crate::require_root;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;
use std::fs::{self, File};
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

fn sleeper(tag: &str) -> Ctr {
    Ctr::started(tag, example("sleep"))
}

/// Accept one connection on `listener` and take the fd it carries (the pty master).
pub(crate) fn receive_fd(listener: &UnixListener) -> OwnedFd {
    listener.set_nonblocking(true).unwrap();
    let stream = wait_for("a connection on the console socket", || {
        match listener.accept() {
            Ok((s, _)) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("accept: {e}"),
        }
    });
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .expect("recvmsg on the console socket");
    let mut fds = vec![];
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(f) = c {
            fds.extend(f);
        }
    }
    assert_eq!(fds.len(), 1, "want exactly one fd, got {fds:?}");
    // SAFETY: the fd was just received and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fds[0]) }
}

/// Everything the pty master yields until the slave side is closed (EIO) or TIMEOUT.
pub(crate) fn drain_pty(master: OwnedFd) -> String {
    let mut f = File::from(master);
    read_all_timeout_lossy(move || {
        let mut all = vec![];
        let mut buf = [0u8; 4096];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    })
}

fn read_all_timeout_lossy(f: impl FnOnce() -> String + Send + 'static) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(TIMEOUT).expect("timed out reading the pty")
}

#[test]
fn output_and_exit_code() {
    require_root!();
    let c = sleeper("exec-out");
    let out = c.exec(&[], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.code(), 3, "{out:#?}");
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    c.exec(&[], &["true"]).ok();
    // killed by a signal: 128 + n, like a shell reports it
    let out = c.exec(&[], &["sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code(), 137, "{out:#?}");
}

#[test]
fn env_cwd_user_flags() {
    require_root!();
    let c = sleeper("exec-flags");
    let out = c.exec(
        &["-e", "FOO=bar baz", "--cwd", "/tmp", "-u", "65534:65534"],
        &["sh", "-c", "echo \"$FOO\"; pwd; id -u; id -g; id -G"],
    );
    out.ok();
    assert_eq!(out.stdout, "bar baz\n/tmp\n65534\n65534\n65534\n");
}

#[test]
fn env_flag_overrides_config() {
    require_root!();
    let c = sleeper("exec-envover");
    let out = c.exec(&["-e", "TERM=dumb"], &["env"]);
    out.ok();
    let mut got: Vec<_> = out.stdout.lines().collect();
    got.sort();
    // the container's env, TERM replaced rather than duplicated, HOME from /etc/passwd
    assert_eq!(
        got,
        [
            "HOME=/root",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=dumb"
        ],
        "{out:#?}"
    );
}

#[test]
fn process_file() {
    require_root!();
    let c = sleeper("exec-pfile");
    let p = c.bundle.path().join("process.json");
    let process = json!({
        "terminal": false,
        "user": {"uid": 65534, "gid": 65534},
        "args": ["sh", "-c", "echo \"$A\"; pwd; id -u; exit 7"],
        "env": ["PATH=/bin", "A=from-file"],
        "cwd": "/etc",
    });
    fs::write(&p, process.to_string()).unwrap();
    let out = c.exec(&["--process", p.to_str().unwrap()], &[]);
    assert_eq!(out.code(), 7, "{out:#?}");
    assert_eq!(out.stdout, "from-file\n/etc\n65534\n");
}

/// The host-side view of a pid: the cgroup file, minus nothing.
fn cgroup_of(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
}

#[test]
fn detach_pid_file() {
    require_root!();
    let c = sleeper("exec-detach");
    let pf = c.bundle.path().join("exec.pid");
    let t0 = Instant::now();
    c.exec(
        &["-d", "--pid-file", pf.to_str().unwrap()],
        &["sleep", "1000"],
    )
    .ok();
    assert!(t0.elapsed() < Duration::from_secs(5), "exec -d waited");
    let text = fs::read_to_string(&pf).unwrap();
    let pid: i32 = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert!(
        cgroup_procs(&c.cgroup).contains(&pid),
        "{pid} not in cgroup"
    );
    // exec -d may return while the runtime's side of the process is still on its way
    // to execve: the pid is the process that becomes `sleep`
    wait_for("the pid file's process to be `sleep 1000`", || {
        let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        (cmdline == "sleep\x001000\x00").then_some(())
    });
    let init = c.state()["pid"].as_i64().unwrap() as i32;
    assert_eq!(cgroup_of(pid), cgroup_of(init));
}

#[test]
fn tty_with_console_socket() {
    require_root!();
    let c = sleeper("exec-tty");
    let sock = c.bundle.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    // runc takes --console-socket only with -d; in the foreground it proxies the pty
    let cmd = c.cmd(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        "echo TTY=$(tty) IN=$(readlink /proc/$$/fd/0) OUT=$(readlink /proc/$$/fd/1) ERR=$(readlink /proc/$$/fd/2)",
    ]);
    let exec = std::thread::spawn(move || run_cmd(cmd, std::process::Stdio::null()));
    let master = receive_fd(&listener);
    exec.join().unwrap().ok();
    let seen = drain_pty(master);
    let line = seen
        .lines()
        .find(|l| l.starts_with("TTY="))
        .unwrap_or_else(|| panic!("no TTY line on the pty: {seen:?}"));
    let f: Vec<_> = line.trim_end_matches('\r').split(' ').collect();
    assert!(f[0].starts_with("TTY=/dev/pts/"), "{seen:?}");
    let pts = &f[0][4..];
    assert_eq!(f[1], format!("IN={pts}"), "{seen:?}");
    assert_eq!(f[2], format!("OUT={pts}"), "{seen:?}");
    assert_eq!(f[3], format!("ERR={pts}"), "{seen:?}");
}

#[test]
fn stopped_container_refused() {
    require_root!();
    let c = Ctr::started("exec-stopped", config_with_args(&["true"]));
    c.wait_status("stopped");
    // runc's wording, word for word, and exec's failure status
    let out = c.exec(&[], &["true"]);
    out.fails_with("exec failed: cannot exec in a stopped container")
        .one_error_line();
    assert_eq!(out.code(), 255, "{out:#?}");
}

#[test]
fn paused_container_needs_ignore_paused() {
    require_root!();
    let c = sleeper("exec-paused");
    c.rt(&["pause", &c.id]).ok();
    let out = c.exec(&[], &["echo", "hi"]);
    out.fails_with("cannot exec in a paused container (use --ignore-paused to override)")
        .one_error_line();
    assert_eq!(out.code(), 255, "{out:#?}");
    assert_eq!(
        c.raw_status(),
        "paused",
        "a refused exec must leave it paused"
    );
    // The new process joins the frozen cgroup, so it can only finish after resume.
    let cmd = c.cmd(&["exec", "--ignore-paused", &c.id, "echo", "hi"]);
    let exec = std::thread::spawn(move || run_cmd(cmd, std::process::Stdio::null()));
    std::thread::sleep(Duration::from_millis(500));
    c.rt(&["resume", &c.id]).ok();
    let out = exec.join().unwrap();
    out.ok();
    assert_eq!(out.stdout, "hi\n");
}

#[test]
fn same_namespaces_as_init() {
    require_root!();
    let c = sleeper("exec-ns");
    let kinds = ["pid", "mnt", "net", "uts", "ipc", "cgroup"];
    let script: Vec<_> = kinds
        .iter()
        .map(|k| format!("echo {k} $(readlink /proc/1/ns/{k}) $(readlink /proc/self/ns/{k})"))
        .collect();
    let out = c.exec(&[], &["sh", "-c", &script.join("; ")]);
    out.ok();
    let lines: Vec<_> = out.stdout.lines().collect();
    assert_eq!(lines.len(), kinds.len(), "{out:#?}");
    for (k, l) in kinds.iter().zip(lines) {
        let f: Vec<_> = l.split(' ').collect();
        assert_eq!(f.len(), 3, "{l}");
        assert!(f[1].starts_with(&format!("{k}:[")), "{l}");
        assert_eq!(f[1], f[2], "{k} namespace differs from pid 1's");
        let host = fs::read_link(format!("/proc/self/ns/{k}")).unwrap();
        assert_ne!(f[2], host.to_str().unwrap(), "{k} is the host's");
    }
}

#[test]
fn same_cgroup_as_init() {
    require_root!();
    let c = sleeper("exec-cg");
    let out = c.exec(
        &[],
        &[
            "sh",
            "-c",
            "cat /proc/1/cgroup; echo --; cat /proc/self/cgroup",
        ],
    );
    out.ok();
    let (init, me) = out.stdout.split_once("--\n").unwrap();
    assert!(!init.is_empty());
    assert_eq!(init, me);
}

#[test]
fn only_stdio_fds() {
    require_root!();
    let c = sleeper("exec-fds");
    // fd 3 is ls's own directory handle; a leaked fd would show as 4 or more
    let out = c.exec(&[], &["ls", "/proc/self/fd"]);
    out.ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
}

#[test]
fn concurrent_execs_keep_status_and_output() {
    require_root!();
    let c = sleeper("exec-conc");
    let workers: Vec<_> = (0..2)
        .map(|_| {
            // the Ctr stays here: each thread runs the runtime with its root and id
            let (root, bundle, id) = (
                c.root.path().to_owned(),
                c.bundle.path().to_owned(),
                c.id.clone(),
            );
            std::thread::spawn(move || {
                (0..15)
                    .map(|_| {
                        let cmd =
                            rt_cmd(&root, &bundle, &["exec", &id, "sh", "-c", "echo a; exit 3"]);
                        run_cmd(cmd, std::process::Stdio::null())
                    })
                    .filter(|out| out.status.code() != Some(3) || out.stdout != "a\n")
                    .map(|out| format!("{out:?}"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let bad: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        bad.is_empty(),
        "{} of 30 execs went wrong: {bad:#?}",
        bad.len()
    );
}

#[test]
fn cap_no_new_privs_additional_gids() {
    require_root!();
    let mut cfg = example("sleep");
    cfg["process"]["noNewPrivileges"] = json!(false);
    let c = Ctr::started("exec-caps", cfg);
    let out = c.exec(
        &[
            "--cap",
            "CAP_SYS_ADMIN",
            "--no-new-privs",
            "-g",
            "5",
            "-g",
            "100",
        ],
        &[
            "sh",
            "-c",
            "grep -E '^(Cap|NoNewPrivs)' /proc/self/status; id -G",
        ],
    );
    out.ok();
    let mut f = std::collections::HashMap::new();
    let mut groups = "";
    for l in out.stdout.lines() {
        match l.split_once(':') {
            Some((k, v)) => f.insert(k, v.trim()),
            None => {
                groups = l;
                None
            }
        };
    }
    let hex = |k: &str| u64::from_str_radix(f[k], 16).unwrap_or_else(|e| panic!("{k}: {e}"));
    // the example's AUDIT_WRITE(29), KILL(5), NET_BIND_SERVICE(10), and SYS_ADMIN(21)
    let want = (1u64 << 29) | (1 << 5) | (1 << 10) | (1 << 21);
    assert_eq!(hex("CapBnd"), want, "{out:#?}");
    assert_eq!(hex("CapEff"), want, "{out:#?}");
    assert_eq!(hex("CapPrm"), want, "{out:#?}");
    assert_eq!(hex("CapInh"), 0, "{out:#?}");
    assert_eq!(f["NoNewPrivs"], "1", "{out:#?}");
    assert_eq!(groups, "0 5 100", "{out:#?}");
}

/// `exec --cap` adds to the bounding, effective and permitted sets only: an exec'd process must
/// never get inheritable (or ambient) capabilities it did not ask for (the CVE-2022-29162 lesson).
#[test]
fn exec_cap_never_sets_inheritable() {
    require_root!();
    let c = sleeper("execcap");
    let out = c.exec(
        &["--cap", "CAP_SYS_ADMIN"],
        &["grep", "^Cap", "/proc/self/status"],
    );
    out.ok();
    let field = |name: &str| -> u64 {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {out:#?}"));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    const SYS_ADMIN: u64 = 1 << 21;
    assert_ne!(
        field("CapEff:") & SYS_ADMIN,
        0,
        "--cap did not add CAP_SYS_ADMIN: {out:#?}"
    );
    assert_ne!(field("CapBnd:") & SYS_ADMIN, 0, "{out:#?}");
    assert_eq!(
        field("CapInh:"),
        0,
        "inheritable set must stay empty: {out:#?}"
    );
    assert_eq!(field("CapAmb:"), 0, "ambient set must stay empty: {out:#?}");
}

/// `exec --cgroup PATH` runs the process in that sub-cgroup of the container's, in every
/// hierarchy; `--cgroup CONTROLLER:PATH` (cgroup v1) only where that controller is; a missing
/// sub-cgroup is an error.
#[test]
fn exec_into_a_sub_cgroup() {
    require_root!();
    let c = Ctr::started("subcg", config_with_args(&["sleep", "1000"]));
    let dirs = cgroup_dirs(&c.cgroup);
    for d in &dirs {
        std::fs::create_dir(format!("{d}/sub")).unwrap();
        // a v1 cpuset cgroup takes no task until it has cpus and mems
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(format!("{d}/{f}")) {
                if Path::new(&format!("{d}/sub/{f}")).exists() && !d.contains("/unified") {
                    std::fs::write(format!("{d}/sub/{f}"), v.trim()).unwrap();
                }
            }
        }
    }
    let out = c.exec(&["--cgroup", "sub"], &["cat", "/proc/self/cgroup"]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(l.ends_with("/sub"), "{l}: {}", out.stdout);
    }
    let v1_memory = dirs
        .iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/memory/"));
    if let Some(mem) = v1_memory {
        std::fs::create_dir(format!("{mem}/msub")).unwrap();
        let out = c.exec(&["--cgroup", "memory:msub"], &["cat", "/proc/self/cgroup"]);
        out.ok();
        for l in out.stdout.lines() {
            let in_memory = l
                .split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "memory"));
            assert_eq!(l.ends_with("/msub"), in_memory, "{l}: {}", out.stdout);
        }
    }
    // runc's messages (its exec.bats matches them)
    let out = c.exec(&["--cgroup", "nosuch"], &["true"]);
    assert_ne!(out.code(), 0, "{out:#?}");
    assert!(out.message().contains(" adding pid "), "{out:#?}");
    assert!(
        out.message()
            .contains("/nosuch/cgroup.procs: no such file "),
        "{out:#?}"
    );
    let out = c.exec(&["--cgroup", ".."], &["true"]);
    assert!(
        out.message().contains(" .. is not a sub cgroup path"),
        "{out:#?}"
    );
    if v1_memory.is_some() {
        let out = c.exec(&["--cgroup", "whaaat:/"], &["true"]);
        assert!(out.message().contains("unknown controller "), "{out:#?}");
    }
    // "/" is the container's own cgroup
    c.exec(&["--cgroup", "/"], &["true"]).ok();
}

/// A process file without `user` runs as uid 0, and one with a terminal gets its
/// consoleSize, as runc's exec --process.
#[test]
fn process_file_without_user_and_with_console_size() {
    require_root!();
    let c = sleeper("exec-pnouser");
    let p = c.bundle.path().join("process.json");
    let process = json!({"args": ["id", "-u"], "env": ["PATH=/bin:/usr/bin"], "cwd": "/"});
    fs::write(&p, process.to_string()).unwrap();
    let out = c.exec(&["--process", p.to_str().unwrap()], &[]);
    out.ok();
    assert_eq!(out.stdout, "0\n");

    let process = json!({
        "terminal": true,
        "consoleSize": {"height": 31, "width": 97},
        "args": ["stty", "size"], "env": ["PATH=/bin:/usr/bin"], "cwd": "/"
    });
    fs::write(&p, process.to_string()).unwrap();
    let sock = c.bundle.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let cmd = c.cmd(&[
        "exec",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        "--process",
        p.to_str().unwrap(),
        &c.id,
    ]);
    let exec = std::thread::spawn(move || run_cmd(cmd, std::process::Stdio::null()));
    let master = receive_fd(&listener);
    exec.join().unwrap().ok();
    let seen = drain_pty(master);
    assert!(seen.contains("31 97"), "{seen:?}");
}

#[test]
fn exec_is_session_leader_without_terminal() {
    require_root!();
    // runc: an exec'd process leads its own session as init does
    let c = sleeper("exec-setsid");
    let out = c.exec(&[], &["cat", "/proc/self/stat"]);
    out.ok();
    let (pid, pgrp, sid) = crate::process::pid_pgrp_sid(&out.stdout);
    assert_eq!((pgrp, sid), (pid, pid), "{out:#?}");
}
