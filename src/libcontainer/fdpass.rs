//! Unix sockets that carry an fd to someone outside rt (`SCM_RIGHTS`): the seccomp agent's
//! listener socket and `--pidfd-socket`.
use anyhow::{Context, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
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
        send_fd(&self.sock, kind.as_bytes(), pidfd.as_fd())
            .with_context(|| format!("--pidfd-socket {}: sending the pidfd", self.path.display()))
    }
}

/// Sends `data` (not empty: a stream socket carries an fd only with data) with `fd` attached
/// to its first part; the rest, if the socket takes it in parts, follows without (the runtime
/// spec's rule for the container process state).
pub fn send_fd(sock: &UnixStream, data: &[u8], fd: BorrowedFd) -> Result<()> {
    assert!(!data.is_empty(), "an fd needs data to travel with");
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let mut sent = 0;
    while sent < data.len() {
        let iov = [IoSlice::new(&data[sent..])];
        let with = if sent == 0 { &cmsg[..] } else { &[] };
        match sendmsg::<()>(sock.as_raw_fd(), &iov, with, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(0) => anyhow::bail!("the socket took no data"),
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("sendmsg"),
        }
    }
    Ok(())
}
