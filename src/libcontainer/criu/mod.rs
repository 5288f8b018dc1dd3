//! criu, driven as runc drives it: `criu swrk FD` with its RPC over a SOCK_SEQPACKET
//! socketpair.
//!
//! Why the RPC and not criu's command line: three things rt needs exist only there. The
//! restored tree must come back as rt's child (`rst_sibling`, swrk only), so `restore` in the
//! foreground can wait for it and return its exit status; the pty master of a restored
//! terminal container comes back as a notification carrying the fd (`orphan-pts-master`, which
//! criu sends only to an RPC client), to be passed on to `--console-socket`; and hooks run at
//! `setup-namespaces` with the restored pid, where the CLI would need an action script calling
//! back into rt. The socket is also how criu reports its errno and message.
pub mod mounts;
pub mod proto;

use anyhow::{bail, Context, Result};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use proto::{Features, Opts, Req, ReqType, Resp};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What criu tells rt on the way (`notify_scripts`), with any fd that came along.
pub trait Notified {
    fn notify(&mut self, script: &str, pid: i32, fds: Vec<OwnedFd>) -> Result<()>;
}

/// One `criu swrk` process and rt's end of its socket.
pub struct Swrk {
    sock: OwnedFd,
    pid: Pid,
    /// major * 10000 + minor * 100 + sublevel, as runc compares them.
    pub version: i32,
    /// Where criu writes its log for the main request, to quote from on failure.
    log: Option<PathBuf>,
    done: bool,
}

/// The oldest criu rt drives: the VERSION call (3.0), the cgroup v2 freezer (3.14) and the
/// `status-ready` notification of lazy pages (3.15) are all used unconditionally.
const MIN_VERSION: i32 = 31500;

impl Swrk {
    /// Starts `criu swrk` with `pass` open in it (their numbers there are the same as here:
    /// criu gets them by inheritance, with close-on-exec cleared for the spawn only) and asks
    /// its version. rt is single-threaded, so no other child can inherit them meanwhile.
    pub fn start(bin: &Path, pass: &[BorrowedFd]) -> Result<Swrk> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("socketpair for criu")?;
        let mut inherit: Vec<BorrowedFd> = vec![theirs.as_fd()];
        inherit.extend_from_slice(pass);
        for fd in &inherit {
            set_cloexec(*fd, false)?;
        }
        let spawned = std::process::Command::new(bin)
            .arg("swrk")
            .arg(theirs.as_raw_fd().to_string())
            .spawn();
        for fd in &inherit {
            set_cloexec(*fd, true)?;
        }
        let child = spawned.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow::anyhow!("criu is not installed: {} not found ({e})", bin.display())
            }
            _ => anyhow::anyhow!("cannot run criu ({}): {e}", bin.display()),
        })?;
        drop(theirs);
        let mut s = Swrk {
            sock: ours,
            pid: Pid::from_raw(child.id() as i32),
            version: 0,
            log: None,
            done: false,
        };
        // std's Child would wait on drop for nothing; the pid is ours to reap.
        drop(child);
        let mut req = Req::new(ReqType::Version, None);
        req.keep_open = true;
        let resp = s.call(&req, &mut NoNotify)?;
        let (major, minor, sub) = resp.version.context("criu answered VERSION without one")?;
        s.version = major * 10000 + minor * 100 + sub;
        crate::debug!("criu {major}.{minor}.{sub} at {}", bin.display());
        if s.version < MIN_VERSION {
            bail!("criu {major}.{minor}.{sub} is too old: rt needs criu 3.15 or later");
        }
        Ok(s)
    }

    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Whether this criu and kernel can do `want` (FEATURE_CHECK); `opts` travel along because
    /// old criu crashes on a request without them.
    pub fn check_features(&mut self, want: Features, opts: &Opts) -> Result<()> {
        let mut req = Req::new(ReqType::FeatureCheck, Some(opts.clone()));
        req.features = Some(want);
        req.keep_open = true;
        let resp = self.call(&req, &mut NoNotify)?;
        let have = resp.features.unwrap_or_default();
        if want.mem_track && !have.mem_track {
            bail!(
                "criu cannot track memory changes here (needed for --pre-dump and --parent-path)"
            );
        }
        if want.lazy_pages && !have.lazy_pages {
            bail!("criu cannot do lazy pages here (userfaultfd missing?)");
        }
        Ok(())
    }

    /// The request the session is for (DUMP, PRE_DUMP, RESTORE): its answer, after every
    /// notification on the way was handled and acknowledged. criu's log for it is `log`.
    pub fn run(mut self, req: Req, log: PathBuf, n: &mut dyn Notified) -> Result<Resp> {
        self.log = Some(log);
        let typ = req.typ;
        let resp = self.call(&req, n)?;
        // criu serves one such request per session; after PRE_DUMP it would wait for the
        // next one, and closing the socket is how runc ends it too (its exit status then
        // says nothing).
        let _ = nix::sys::socket::shutdown(self.sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        let status = self.reap();
        if typ != ReqType::PreDump {
            match status {
                Ok(WaitStatus::Exited(_, 0)) => {}
                Ok(st) => bail!("criu failed: {st:?}{}", self.log_hint()),
                Err(e) => return Err(e).context("waiting for criu"),
            }
        }
        Ok(resp)
    }

    fn call(&mut self, req: &Req, n: &mut dyn Notified) -> Result<Resp> {
        self.send(req)?;
        loop {
            let mut buf = vec![0u8; 64 * 1024];
            let (len, fds) = super::fdpass::recv_fds(self.sock.as_fd(), &mut buf)
                .context("reading criu's answer")?;
            if len == 0 {
                bail!(
                    "criu exited without answering {}{}",
                    req.typ.name(),
                    self.log_hint()
                );
            }
            let resp = Resp::decode(&buf[..len])?;
            if !resp.success {
                let errno = resp.cr_errno.unwrap_or(0);
                let msg = format!("criu failed: type {} errno {errno}", req.typ.name());
                // criu's own message when it gives one, else the log's last error lines
                match resp
                    .cr_errmsg
                    .as_deref()
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                {
                    Some(m) => {
                        let log = self.log.as_ref().map(|l| l.display().to_string());
                        bail!("{msg}: {m} (log file: {})", log.unwrap_or_default())
                    }
                    None => bail!("{msg}{}", self.log_hint()),
                }
            }
            match resp.typ {
                Some(ReqType::Notify) => {
                    let (script, pid) = resp.notify.clone().unwrap_or_default();
                    crate::debug!("criu notifies {script} (pid {pid})");
                    n.notify(&script, pid, fds)
                        .with_context(|| format!("handling criu's {script} notification"))?;
                    let mut ack = Req::new(ReqType::Notify, None);
                    ack.notify_success = true;
                    self.send(&ack)?;
                }
                Some(t) if t == req.typ => return Ok(resp),
                _ => bail!(
                    "criu answered {} with message type {}",
                    req.typ.name(),
                    resp.raw_type
                ),
            }
        }
    }

    fn send(&self, req: &Req) -> Result<()> {
        let data = req.encode();
        nix::sys::socket::send(
            self.sock.as_raw_fd(),
            &data,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        )
        .with_context(|| format!("sending {} to criu", req.typ.name()))?;
        Ok(())
    }

    fn reap(&mut self) -> nix::Result<WaitStatus> {
        self.done = true;
        loop {
            match waitpid(self.pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r,
            }
        }
    }

    /// criu's own words from its log: the last error lines, and where the whole log is.
    fn log_hint(&self) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        // "(00.025360) Error (criu/vdso.c:381): vdso: ..." without the timestamp
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("Error"))
            .map(|l| match l.split_once(") ") {
                Some((t, rest)) if t.starts_with('(') => rest,
                _ => l,
            })
            .collect();
        let last = &errors[errors.len().saturating_sub(3)..];
        let mut s = String::new();
        if !last.is_empty() {
            s.push_str(": ");
            s.push_str(&last.join("; "));
        }
        s.push_str(&format!(" (log file: {})", log.display()));
        s
    }
}

impl Drop for Swrk {
    fn drop(&mut self) {
        if !self.done {
            // Closing the socket ends criu's session; it exits on its own.
            let _ =
                nix::sys::socket::shutdown(self.sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
            let _ = self.reap();
        }
    }
}

struct NoNotify;

impl Notified for NoNotify {
    fn notify(&mut self, script: &str, _pid: i32, _fds: Vec<OwnedFd>) -> Result<()> {
        bail!("unexpected notification {script}")
    }
}

fn set_cloexec(fd: BorrowedFd, on: bool) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let flags = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd, FcntlArg::F_SETFD(flags)).context("fcntl F_SETFD")?;
    Ok(())
}

/// criu's key for a namespace rt declares external (a path in the config): the same at
/// dump and restore, as runc names it, so images move between the two runtimes.
pub fn ext_ns_key(ns: &str) -> String {
    let mut c = ns.chars();
    let title: String = c
        .next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default();
    format!("extRoot{title}NS")
}

/// The file beside the images that says what the init's stdio were (`descriptors.json`, as
/// runc writes it), so restore can hand criu the caller's pipes in their place.
pub const DESCRIPTORS: &str = "descriptors.json";

/// criu's own config file for rt's requests, read when present (runc's is
/// /etc/criu/runc.conf); the `org.criu.config` annotation names another, or none when empty.
pub fn config_file(annotations: &std::collections::BTreeMap<String, String>) -> Option<String> {
    match annotations.get("org.criu.config") {
        Some(f) if f.is_empty() => None,
        Some(f) => Some(f.clone()),
        None => Some("/etc/criu/rt.conf".to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ns_keys_match_runcs() {
        assert_eq!(super::ext_ns_key("net"), "extRootNetNS");
        assert_eq!(super::ext_ns_key("pid"), "extRootPidNS");
    }
}
