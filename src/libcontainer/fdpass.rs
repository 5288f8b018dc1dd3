//! fds over unix sockets (`SCM_RIGHTS`): to someone outside rt (the seccomp agent's listener,
//! `--pidfd-socket`, the console socket) and between rt and its init (the pty master, mount
//! sources over the sync socket).
use anyhow::{bail, Context, Result};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Connects to `path`; a leading `@` names an abstract socket, as Go (runc) reads it.
pub fn connect(path: &Path) -> std::io::Result<UnixStream> {
    match path.as_os_str().as_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            UnixStream::connect_addr(&addr)
        }
        None => UnixStream::connect(path),
    }
}

/// `--pidfd-socket` (runc 1.2's): connected before anything is made, so a bad path fails
/// early; once the process is ready, a pidfd of it is sent with the name runc gives its kind
/// of init as the data ("standard" for create, "setns" for exec). rt sends it from the parent:
/// the socket never enters the container.
pub struct PidfdSocket {
    sock: UnixStream,
    path: PathBuf,
}

impl PidfdSocket {
    pub fn connect(path: &Path) -> Result<PidfdSocket> {
        let sock = connect(path)
            .with_context(|| format!("--pidfd-socket {}: connecting", path.display()))?;
        Ok(PidfdSocket {
            sock,
            path: path.to_path_buf(),
        })
    }

    pub fn send(self, pid: i32, kind: &str) -> Result<()> {
        let pidfd = super::process::pidfd_open(pid)?;
        send_fds(self.sock.as_fd(), kind.as_bytes(), &[pidfd.as_fd()])
            .with_context(|| format!("--pidfd-socket {}: sending the pidfd", self.path.display()))
    }
}

/// SCM_RIGHTS carries at most this many fds in one message (the kernel's SCM_MAX_FD).
pub const MAX_FDS: usize = 253;

/// Sends `data` (not empty: a stream socket carries fds only with data) with `fds` (at most
/// MAX_FDS) attached to its first part; the rest, if the socket takes it in parts, follows
/// without (the runtime spec's rule for the container process state).
pub fn send_fds(sock: BorrowedFd, data: &[u8], fds: &[BorrowedFd]) -> Result<()> {
    assert!(!data.is_empty(), "an fd needs data to travel with");
    assert!(fds.len() <= MAX_FDS, "{} fds in one message", fds.len());
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let mut sent = 0;
    while sent < data.len() {
        let iov = [IoSlice::new(&data[sent..])];
        let with = if sent == 0 { &cmsg[..] } else { &[] };
        match sendmsg::<()>(sock.as_raw_fd(), &iov, with, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(0) => bail!("the socket took no data"),
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("sendmsg"),
        }
    }
    Ok(())
}

/// Receives one message: its bytes into `buf` (their count is returned; 0 means the other side
/// closed) and the fds that came with it, close-on-exec.
pub fn recv_fds(sock: BorrowedFd, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([i32; MAX_FDS]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("recvmsg")?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().context("reading the control message")? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: the kernel just installed these fds in our table for us.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok((msg.bytes, fds))
}
