//! `--pidfd-socket PATH` on create, run and exec (runc 1.2's flag): the runtime sends a pidfd of
//! the container's process over the socket (SCM_RIGHTS), and the receiver can signal it.
use crate::common::*;
use crate::require_root;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// runc 1.1.5 has no such flag: those runs skip, saying so.
fn supported() -> bool {
    let out = run_cmd(
        rt_cmd(Path::new("/tmp"), Path::new("/"), &["create", "--help"]),
        std::process::Stdio::null(),
    );
    if out.stdout.contains("--pidfd-socket") {
        return true;
    }
    eprintln!(
        "skip: {} has no --pidfd-socket (runc added it in 1.2)",
        rt_bin().display()
    );
    false
}

struct Receiver {
    _dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl Receiver {
    fn new() -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pidfd.sock");
        let listener = UnixListener::bind(&path).unwrap();
        Receiver {
            _dir: dir,
            path,
            listener,
        }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// The one message the runtime sent: its data and its one fd. The runtime is done by now
    /// (the connection is queued, the message buffered).
    fn take(&self) -> (String, OwnedFd) {
        self.listener.set_nonblocking(true).unwrap();
        let (conn, _) = self.listener.accept().expect("the runtime connected");
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 2]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg");
        let mut fds = vec![];
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(f) = c {
                fds.extend(f);
            }
        }
        let n = msg.bytes;
        assert_eq!(fds.len(), 1, "want one fd, got {fds:?}");
        let data = String::from_utf8_lossy(&buf[..n]).into_owned();
        // SAFETY: just received, owned by nobody else.
        (data, unsafe { OwnedFd::from_raw_fd(fds[0]) })
    }
}

/// The pid a pidfd refers to, from its fdinfo.
fn pid_of(pidfd: &OwnedFd) -> i64 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .unwrap_or_else(|| panic!("not a pidfd: {info}"))
        .trim()
        .parse()
        .unwrap()
}

fn pidfd_kill(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal on a pidfd we own, no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "pidfd_send_signal: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn create_and_run_send_the_init_pidfd() {
    require_root!();
    if !supported() {
        return;
    }
    for (cmd, status) in [("create", "created"), ("run", "running")] {
        let r = Receiver::new();
        let c = Ctr::new("pidfd", config_with_args(&["sleep", "1000"]));
        let mut args = vec![cmd];
        if cmd == "run" {
            args.push("-d");
        }
        args.extend([
            "--pidfd-socket",
            r.path(),
            "--bundle",
            c.bundle_str(),
            &c.id,
        ]);
        c.rt(&args).ok();
        c.track_pid();
        let (data, pidfd) = r.take();
        // runc's name for its kind of init
        assert_eq!(data, "standard");
        let st = c.state();
        assert_eq!(st["status"], status);
        assert_eq!(pid_of(&pidfd), st["pid"].as_i64().unwrap());
        pidfd_kill(&pidfd);
        c.wait_status("stopped");
    }
}

#[test]
fn exec_sends_the_process_pidfd() {
    require_root!();
    if !supported() {
        return;
    }
    let c = Ctr::started("pidfd-exec", config_with_args(&["sleep", "1000"]));
    let r = Receiver::new();
    let pid_file = c.bundle.path().join("exec.pid");
    c.exec(
        &[
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--pidfd-socket",
            r.path(),
        ],
        &["sleep", "1000"],
    )
    .ok();
    let (data, pidfd) = r.take();
    assert_eq!(data, "setns");
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid_of(&pidfd), pid);
    pidfd_kill(&pidfd);
    // the exec'd process dies (a zombie until the container's init is gone), the init lives
    wait_for("the exec'd process to die", || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        matches!(state, None | Some("Z") | Some("X")).then_some(())
    });
    assert_eq!(c.status(), "running");
}

/// A socket nobody listens on fails the command before anything is made.
#[test]
fn unreachable_pidfd_socket_fails_cleanly() {
    require_root!();
    if !supported() {
        return;
    }
    let c = Ctr::new("pidfd-bad", config_with_args(&["sleep", "1000"]));
    let out = c.rt(&[
        "create",
        "--pidfd-socket",
        "/nonexistent/pidfd.sock",
        "--bundle",
        c.bundle_str(),
        &c.id,
    ]);
    assert_ne!(out.code(), 0, "{out:#?}");
    if !is_runc() {
        out.fails_with("--pidfd-socket /nonexistent/pidfd.sock")
            .one_error_line();
    }
    let c2 = Ctr::started("pidfd-bad-exec", config_with_args(&["sleep", "1000"]));
    let out = c2.exec(&["--pidfd-socket", "/nonexistent/pidfd.sock"], &["true"]);
    assert_ne!(out.code(), 0, "{out:#?}");
    if !is_runc() {
        out.fails_with("--pidfd-socket /nonexistent/pidfd.sock");
    }
}
