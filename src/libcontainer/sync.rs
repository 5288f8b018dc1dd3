//! The parent ↔ init conversation: typed messages, one length-prefixed JSON document each.
use super::fdpass;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// Everything init needs, sent once after the parent has placed it in its cgroup.
#[derive(Serialize, Deserialize)]
pub struct InitConfig {
    pub id: String,
    pub spec: Spec,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The cgroup hierarchies a cgroup mount of the config shows (empty without one).
    pub cgroup_mounts: Vec<crate::rootfs::CgroupMount>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// O_PATH fd of exec.fifo, reopened for writing through /proc/self/fd once in the container.
    pub fifo_fd: i32,
    /// Connected --console-socket, when process.terminal is set.
    pub console_fd: Option<i32>,
    /// v1 `tasks` files init writes "0" to before anything else (empty: the parent moved it).
    pub cgroup_tasks: Vec<PathBuf>,
    /// One per mounts[] entry whose source the parent opened (before init could enter its user
    /// namespace, see `bind_sources`) and sends right after this message, in order; empty when
    /// there are none.
    #[serde(default)]
    pub opened_sources: Vec<bool>,
}

/// What `rt exec` sends instead: join a running container and exec one more process there.
#[derive(Serialize, Deserialize)]
pub struct ExecConfig {
    /// The container's namespaces, as /proc/<init pid>/ns/<kind> paths with their kinds.
    pub namespaces: Vec<(oci_spec::runtime::LinuxNamespaceType, PathBuf)>,
    pub process: oci_spec::runtime::Process,
    /// The container's own config: the seccomp profile and the rest apply to exec'd processes too.
    pub spec: Spec,
    pub preserve_fds: i32,
    pub console_fd: Option<i32>,
    /// As InitConfig::cgroup_tasks.
    pub cgroup_tasks: Vec<PathBuf>,
}

impl std::fmt::Debug for ExecConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExecConfig")
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub enum ToInit {
    Config(Box<InitConfig>),
    Exec(Box<ExecConfig>),
    /// The parent ran the createRuntime hooks; here is the state JSON for the hooks init runs.
    Continue(String),
    /// The parent has its copy of the seccomp listener: init may close its own.
    SeccompDone,
}

#[derive(Serialize, Deserialize, Debug)]
pub enum FromInit {
    /// Init forked into a joined pid namespace: this is the container's pid from now on.
    Pid(i32),
    /// Ask the parent to run the prestart/createRuntime hooks, then wait for `Continue`.
    Hooks,
    /// The process is set up and waits on exec.fifo.
    Ready,
    /// The seccomp filter is on; its listener is this fd of ours (see seccomp_notify.rs). Sent
    /// with `encode_listener`, never `Channel::send`.
    SeccompListener(i32),
    Error(String),
}

/// `FromInit::SeccompListener(fd)` as `Channel::send` frames it, formatted into `buf` without
/// allocating: it is written under a filter that may notify mmap or brk, before anyone can
/// answer.
pub fn encode_listener(fd: i32, buf: &mut [u8; 64]) -> &[u8] {
    let (len, body) = buf.split_at_mut(4);
    let mut w = &mut body[..];
    write!(w, "{{\"SeccompListener\":{fd}}}").expect("fits in 60 bytes");
    let n = 60 - w.len();
    len.copy_from_slice(&(n as u32).to_le_bytes());
    &buf[..4 + n]
}

impl std::fmt::Debug for InitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InitConfig({})", self.id)
    }
}

pub struct Channel(pub UnixStream);

impl Channel {
    /// Writes bytes already framed (`encode_listener`) with write(2) itself, the one syscall
    /// a notify rule may not name (std's socket writes are sendto).
    pub fn send_raw(&mut self, framed: &[u8]) -> Result<()> {
        let mut rest = framed;
        while !rest.is_empty() {
            match nix::unistd::write(&self.0, rest) {
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context("writing to sync socket"),
            }
        }
        Ok(())
    }

    /// Passes `fds` to the other side: one byte per message, the fds as its ancillary data.
    pub fn send_fds(&mut self, fds: &[std::os::fd::BorrowedFd<'_>]) -> Result<()> {
        use std::os::fd::AsFd;
        for chunk in fds.chunks(fdpass::MAX_FDS) {
            fdpass::send_fds(self.0.as_fd(), b"f", chunk)
                .context("sending fds over the sync socket")?;
        }
        Ok(())
    }

    /// Receives `n` fds sent by `send_fds`, close-on-exec.
    pub fn recv_fds(&mut self, n: usize) -> Result<Vec<std::os::fd::OwnedFd>> {
        use std::os::fd::AsFd;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let (bytes, fds) = fdpass::recv_fds(self.0.as_fd(), &mut [0u8; 1])
                .context("receiving fds over the sync socket")?;
            if bytes == 0 {
                bail!("the other side closed the sync socket before sending its fds");
            }
            out.extend(fds);
        }
        if out.len() != n {
            bail!("expected {n} fds over the sync socket, got {}", out.len());
        }
        Ok(out)
    }

    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<()> {
        let data = serde_json::to_vec(msg).context("encoding sync message")?;
        let mut buf = Vec::with_capacity(4 + data.len());
        buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
        buf.extend_from_slice(&data);
        self.0.write_all(&buf).context("writing to sync socket")
    }

    /// Next message; an orderly close before one arrives is an error naming the peer's silence.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        let mut len = [0u8; 4];
        if let Err(e) = self.0.read_exact(&mut len) {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                bail!("the other side closed the sync socket");
            }
            return Err(e).context("reading sync socket");
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > 64 << 20 {
            bail!("sync message of {len} bytes is too large");
        }
        let mut data = vec![0u8; len];
        self.0
            .read_exact(&mut data)
            .context("reading sync socket")?;
        serde_json::from_slice(&data).context("decoding sync message")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_message_is_what_send_frames() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut tx, mut rx) = (Channel(a), Channel(b));
        let mut buf = [0u8; 64];
        tx.send_raw(encode_listener(i32::MAX, &mut buf)).unwrap();
        tx.send(&FromInit::SeccompListener(7)).unwrap();
        let mut buf2 = [0u8; 64];
        assert_eq!(
            encode_listener(-1, &mut buf2)[4..],
            *br#"{"SeccompListener":-1}"#
        );
        assert!(matches!(
            rx.recv::<FromInit>().unwrap(),
            FromInit::SeccompListener(i32::MAX)
        ));
        assert!(matches!(
            rx.recv::<FromInit>().unwrap(),
            FromInit::SeccompListener(7)
        ));
    }
}
