//! `terminal: true`: the pty master goes to the caller over `--console-socket`
//! (SCM_RIGHTS); the container's stdio is the pty's slave.

use crate::common::*;
use crate::require_root;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::Instant;

/// Accept one connection on `listener` and take the fd it carries.
fn receive_fd(listener: &UnixListener) -> OwnedFd {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "nobody connected to the console socket"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
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

/// Read the pty on a thread; return once `want` appears in the output.
fn read_until(rx: &mpsc::Receiver<Vec<u8>>, seen: &mut String, want: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while !seen.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => panic!("never saw {want:?} on the pty; got {seen:?}"),
        }
    }
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

    let mut w = File::from(master);
    let mut r = w.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // ends with EIO once the slave side is closed
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
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
    let out = c.rt(&[
        "create",
        "--bundle",
        c.bundle_str(),
        "--console-socket",
        sock.to_str().unwrap(),
        &c.id,
    ]);
    // runc: `dial unix /…/absent.sock: connect: no such file or directory`
    out.fails_with(sock.to_str().unwrap()).one_error_line();
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}
