//! The caller's side of a container terminal, for `rt run` without --console-socket: receive the
//! pty master from init and copy bytes between it and our own stdio.
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// The console the init sends its pty master to: the caller's own socketpair end (`run`, `exec`
/// proxying themselves) or a connection to --console-socket.
pub fn connect(socket: Option<&std::path::Path>, own: Option<OwnedFd>) -> Result<Option<OwnedFd>> {
    Ok(match (socket, own) {
        (_, Some(fd)) => Some(fd),
        (Some(path), None) => Some(OwnedFd::from(
            std::os::unix::net::UnixStream::connect(path)
                .with_context(|| format!("connecting to console socket {}", path.display()))?,
        )),
        (None, None) => None,
    })
}

pub fn recv_master(sock: &OwnedFd) -> Result<OwnedFd> {
    let (_, fds) = super::fdpass::recv_fds(sock.as_fd(), &mut [0u8; 4096])
        .context("receiving the pty master")?;
    fds.into_iter().next().context("init sent no pty master")
}

/// Puts our terminal in raw mode for the life of the value, so keys reach the container as typed.
pub struct RawTerminal {
    saved: Option<Termios>,
}

impl RawTerminal {
    pub fn new() -> RawTerminal {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawTerminal { saved }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// Gives the pty the size of our own terminal (at start and on SIGWINCH).
pub fn copy_winsize(master: BorrowedFd) {
    // SAFETY: winsize is plain data; the ioctls get valid pointers and failures (stdin is not a
    // terminal) are ignored.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if get_winsize(0, &mut ws).is_ok() {
            let _ = set_winsize(master.as_raw_fd(), &ws);
        }
    }
}

/// Copies what is readable from `from` to `to`. False at end of input (or EIO: the pty is gone).
pub fn copy_once(from: BorrowedFd, to: BorrowedFd) -> bool {
    let mut buf = [0u8; 8192];
    let n = match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(Errno::EIO) => return false,
        Ok(n) => n,
        Err(Errno::EAGAIN) | Err(Errno::EINTR) => return true,
        Err(_) => return false,
    };
    let mut data = &buf[..n];
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(w) => data = &data[w..],
            Err(Errno::EINTR) => {}
            Err(_) => return true,
        }
    }
    true
}
