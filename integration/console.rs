//! `terminal: true`: the pty master goes to the caller over `--console-socket`
//! (SCM_RIGHTS); the container's stdio is the pty's slave.

use crate::common::*;
use crate::exec::receive_fd;
use crate::require_root;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::Instant;

/// Read the pty on a thread; return once `want` appears in the output.
pub(crate) fn read_until(rx: &mpsc::Receiver<Vec<u8>>, seen: &mut String, want: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while !seen.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => panic!("never saw {want:?} on the pty; got {seen:?}"),
        }
    }
}

/// The pty master to write to, and what it reads, chunk by chunk, from a thread (which ends
/// with EIO once the slave side is closed).
pub(crate) fn pty_reader(master: std::os::fd::OwnedFd) -> (File, mpsc::Receiver<Vec<u8>>) {
    let w = File::from(master);
    let mut r = w.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    (w, rx)
}

#[test]
fn console_socket_gets_pty_master() {
    require_root!();
    let c = Ctr::new("console", example("tty"));
    let sock = c.bundle.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let args = [
        "create",
        "--bundle",
        c.bundle_str(),
        "--console-socket",
        sock.to_str().unwrap(),
        c.id.as_str(),
    ];
    let cmd = c.cmd(&args);
    let creator = std::thread::spawn(move || run_cmd(cmd, std::process::Stdio::null()));
    let master = receive_fd(&listener);
    let out = creator.join().unwrap();
    out.ok();
    c.start().ok();

    let (mut w, rx) = pty_reader(master);
    // `$(…)` keeps the pty's echo of the command from matching the expected output
    let fd = |n| format!("$(readlink /proc/$$/fd/{n})");
    let cmd = format!("echo TTY=$(tty) FDS={},{},{}\n", fd(0), fd(1), fd(2));
    w.write_all(cmd.as_bytes()).unwrap();
    let mut seen = String::new();
    read_until(
        &rx,
        &mut seen,
        "TTY=/dev/pts/0 FDS=/dev/pts/0,/dev/pts/0,/dev/pts/0",
    );
    w.write_all(b"exit\n").unwrap();
    c.wait_status("stopped");
}

#[test]
fn terminal_needs_console_socket() {
    require_root!();
    let c = Ctr::new("noconsole", example("tty"));
    let out = c.create();
    // runc: `cannot allocate tty if runc will detach without setting console socket`
    out.one_error_line();
    assert_ne!(out.code(), 0);
    assert!(
        out.message().replace('-', " ").contains("console socket"),
        "{out:#?}"
    );
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

#[test]
fn console_socket_missing() {
    require_root!();
    let c = Ctr::new("nosock", example("tty"));
    let sock = c.bundle.path().join("absent.sock");
    let out = run_cmd(
        c.create_cmd_with_console(&sock),
        std::process::Stdio::null(),
    );
    // runc: `dial unix /…/absent.sock: connect: no such file or directory`
    out.fails_with(sock.to_str().unwrap()).one_error_line();
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

/// The pty is owned by the process's user, with devpts's tty group (5), for the container's
/// process and for `exec -t --user`, as runc sets it.
#[test]
fn pty_is_owned_by_the_process_user() {
    require_root!();
    let mut cfg = example("tty");
    cfg["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 100});
    cfg["process"]["args"] =
        serde_json::json!(["sh", "-c", "stat -c OWNER=%u:%g $(tty); sleep 1000"]);
    let c = Ctr::new("ptyowner", cfg);
    let master = c.create_with_console();
    c.start().ok();
    let (_w, rx) = pty_reader(master);
    let mut seen = String::new();
    read_until(&rx, &mut seen, "OWNER=1000:5");

    let esock = c.bundle.path().join("exec.sock");
    let elistener = UnixListener::bind(&esock).unwrap();
    let ecmd = c.cmd(&[
        "exec",
        "-t",
        "-d",
        "--user",
        "1001:101",
        "--console-socket",
        esock.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        "stat -c OWNER=%u:%g $(tty)",
    ]);
    let exec = std::thread::spawn(move || run_cmd(ecmd, std::process::Stdio::null()));
    let emaster = receive_fd(&elistener);
    exec.join().unwrap().ok();
    let out = crate::exec::drain_pty(emaster);
    assert!(out.contains("OWNER=1001:5"), "{out:?}");
}
