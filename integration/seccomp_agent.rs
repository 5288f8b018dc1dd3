//! A seccomp agent of the tests' own, for SCMP_ACT_NOTIFY: a thread listening on a unix socket.
//! Per connection it takes one container process state (JSON, with the listener in
//! SCM_RIGHTS) and reads to EOF; then it answers the listener's notifications
//! (SECCOMP_IOCTL_NOTIF_RECV / _SEND):
//! - mkdir or mkdirat of a path starting with `/tmp/fake` succeeds without being done;
//! - chmod, fchmod and fchmodat fail with ENOMEDIUM;
//! - everything else goes on as if unfiltered (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
//!
//! It records what it got, for the tests to check: the documents, the fds that came with
//! each, and every notification (syscall and path argument).
use crate::common::TIMEOUT;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::Value;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    /// Answer notifications as the module doc says.
    Answer,
    /// Close the listener as soon as it arrives, as a crashed agent would.
    CloseAtOnce,
}

#[derive(Default, Debug)]
pub struct Report {
    /// The container process state of each connection.
    pub states: Vec<Value>,
    /// What each connection's fds were (readlink of /proc/self/fd/N).
    pub fds: Vec<Vec<String>>,
    /// Every notification: (pid, syscall name, path argument where it has one).
    pub seen: Vec<(u32, String, Option<String>)>,
    /// Per connection: whether the runtime had closed it by `finish`, with nothing after the
    /// document (the runtime spec: one document per connection, closed after it).
    pub closed: Vec<bool>,
}

impl Report {
    pub fn names(&self) -> Vec<&str> {
        self.seen.iter().map(|(_, n, _)| n.as_str()).collect()
    }
}

pub struct Agent {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Report>>,
}

impl Agent {
    /// Listening on a socket in a temp dir.
    pub fn start(mode: Mode) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("rt-agent-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        Agent::serving(listener, mode, path, dir)
    }

    /// Listening on the abstract socket `name` (`@name` to the runtime).
    pub fn start_abstract(mode: Mode, name: &str) -> Agent {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
        let listener = UnixListener::bind_addr(&addr).unwrap();
        let dir = tempfile::tempdir().unwrap();
        Agent::serving(listener, mode, PathBuf::from(format!("@{name}")), dir)
    }

    fn serving(listener: UnixListener, mode: Mode, path: PathBuf, dir: tempfile::TempDir) -> Agent {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || serve(listener, mode, &s));
        Agent {
            path,
            _dir: dir,
            stop,
            thread: Some(thread),
        }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Stops serving (the containers are done with it) and returns what it saw.
    pub fn finish(mut self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().expect("agent thread")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: UnixListener, mode: Mode, stop: &AtomicBool) -> Report {
    let mut report = Report::default();
    let mut listeners: Vec<OwnedFd> = Vec::new();
    // connections whose end we wait for, with their index in the report
    let mut open: Vec<(usize, UnixStream)> = Vec::new();
    loop {
        // once told to stop, one last look without waiting: a close that came in is counted
        let stopping = stop.load(Ordering::SeqCst);
        let pollin = |fd: RawFd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut polls = vec![pollin(listener.as_raw_fd())];
        polls.extend(listeners.iter().map(|l| pollin(l.as_raw_fd())));
        polls.extend(open.iter().map(|(_, c)| pollin(c.as_raw_fd())));
        // SAFETY: poll on a live array of pollfds of our own fds.
        let wait = if stopping { 0 } else { 20 };
        let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, wait) };
        if n <= 0 {
            if stopping {
                break;
            }
            continue;
        }
        let (nl, no) = (listeners.len(), open.len());
        let mut ended = vec![];
        for (j, p) in polls[1 + nl..1 + nl + no].iter().enumerate() {
            if p.revents != 0 {
                let mut b = [0u8; 1];
                let n = (&open[j].1).read(&mut b).unwrap_or(1);
                report.closed[open[j].0] = n == 0;
                ended.push(j);
            }
        }
        for j in ended.into_iter().rev() {
            open.remove(j);
        }
        let mut gone = vec![];
        for (i, p) in polls[1..1 + nl].iter().enumerate() {
            if p.revents & libc::POLLIN != 0 {
                answer(listeners[i].as_raw_fd(), &mut report);
            } else if p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                // every process under that filter has exited
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            listeners.remove(i);
        }
        if polls[0].revents & libc::POLLIN != 0 {
            if let Ok((conn, _)) = listener.accept() {
                let (state, fds) = receive(&conn);
                report
                    .fds
                    .push(fds.iter().map(|f| fd_kind(f.as_raw_fd())).collect());
                report.states.push(state);
                report.closed.push(false);
                open.push((report.states.len() - 1, conn));
                if mode == Mode::Answer {
                    listeners.extend(fds);
                }
            }
        }
        if stopping {
            break;
        }
    }
    report
}

/// One connection's document, however many reads it takes, and its fds.
fn receive(conn: &UnixStream) -> (Value, Vec<OwnedFd>) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg from the runtime");
    let mut fds = vec![];
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(f) = c {
            // SAFETY: just received, owned by nobody else.
            fds.extend(f.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    let n = msg.bytes;
    let mut data = buf[..n].to_vec();
    loop {
        match serde_json::from_slice::<Value>(&data) {
            Ok(state) => return (state, fds),
            Err(e) if e.is_eof() => {}
            Err(e) => panic!(
                "container process state is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&data)
            ),
        }
        let mut more = [0u8; 4096];
        let n = (&*conn).read(&mut more).expect("reading the document");
        assert!(
            n > 0,
            "the document ended early: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&more[..n]);
    }
}

fn fd_kind(fd: RawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("? {e}"))
}

fn syscall_name(nr: i32) -> String {
    let n = i64::from(nr);
    let known = [
        (libc::SYS_mkdir, "mkdir"),
        (libc::SYS_mkdirat, "mkdirat"),
        (libc::SYS_chmod, "chmod"),
        (libc::SYS_fchmod, "fchmod"),
        (libc::SYS_fchmodat, "fchmodat"),
        (libc::SYS_read, "read"),
        (libc::SYS_recvfrom, "recvfrom"),
        (libc::SYS_sendto, "sendto"),
        (libc::SYS_sendmsg, "sendmsg"),
        (libc::SYS_write, "write"),
        (libc::SYS_close, "close"),
        (libc::SYS_openat, "openat"),
        (libc::SYS_futex, "futex"),
        (libc::SYS_execve, "execve"),
        (libc::SYS_mmap, "mmap"),
        (libc::SYS_brk, "brk"),
        (libc::SYS_rt_sigaction, "rt_sigaction"),
        (libc::SYS_close_range, "close_range"),
        (libc::SYS_setresuid, "setresuid"),
        (libc::SYS_capset, "capset"),
        (libc::SYS_prctl, "prctl"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == n)
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| format!("nr{nr}"))
}

/// A NUL-terminated string at `addr` in process `pid`, read page by page.
fn read_string(pid: u32, addr: u64) -> Option<String> {
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < 4096 {
        let room = 4096 - (at % 4096) as usize;
        let mut buf = vec![0u8; room];
        let n = mem.read_at(&mut buf, at).ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = buf[..n].iter().position(|b| *b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    None
}

fn answer(listener: RawFd, report: &mut Report) {
    // SAFETY: the kernel wants the request zeroed; both structs are plain data.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: NOTIF_RECV fills `req`, a live struct of the size the ioctl encodes.
    if unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
        // the process went away before we took it (ENOENT), or a signal (EINTR)
        return;
    }
    let name = syscall_name(req.data.nr);
    let path_arg = match name.as_str() {
        "mkdir" | "chmod" => Some(req.data.args[0]),
        "mkdirat" | "fchmodat" => Some(req.data.args[1]),
        _ => None,
    };
    let path = path_arg.and_then(|a| read_string(req.pid, a));
    // What was read must still belong to that request (the process could have died and its
    // pid been reused): the kernel says whether the id is still pending.
    // SAFETY: ID_VALID reads a u64 we own.
    if unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) } != 0 {
        return;
    }
    report.seen.push((req.pid, name.clone(), path.clone()));
    // SAFETY: plain data.
    let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
    resp.id = req.id;
    match (name.as_str(), path.as_deref()) {
        ("mkdir" | "mkdirat", Some(p)) if p.starts_with("/tmp/fake") => {}
        ("chmod" | "fchmod" | "fchmodat", _) => resp.error = -libc::ENOMEDIUM,
        _ => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    }
    // SAFETY: NOTIF_SEND reads `resp`, a live struct. ENOENT: the process is gone.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
}
