//! `rt init`: runs inside the new namespaces (DESIGN.md §2 steps 5–9), then execs the user's process.
mod console;
mod exec;
mod namespaces;
mod user;

use crate::libcontainer::sync::{Channel, FromInit, InitConfig, ToInit};
use anyhow::{bail, Context, Result};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

pub fn main() -> ! {
    // While rt's code runs inside the container's namespaces nothing there may open our
    // /proc/<pid>/exe or mem (CVE-2019-5736); exec of the user's binary resets this.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let fd: i32 = match std::env::var("_RT_SYNC_FD").ok().and_then(|v| v.parse().ok()) {
        Some(fd) => fd,
        None => {
            eprintln!("rt init: not started by rt; it is not a command to run by hand");
            std::process::exit(1);
        }
    };
    set_cloexec(fd);
    // SAFETY: the parent passed us this fd for exactly this use; nothing else owns it.
    let mut chan = Channel(unsafe { UnixStream::from_raw_fd(fd) });
    let err = match run(&mut chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = format!("{err:#}");
    if chan.send(&FromInit::Error(msg.clone())).is_err() {
        // After Ready the parent is gone: the container's stderr is all that is left.
        eprintln!("rt init: {msg}");
    }
    std::process::exit(1);
}

pub(crate) fn set_cloexec(fd: i32) {
    // SAFETY: fcntl on an integer fd; failure only means the fd was not open.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

fn run(chan: &mut Channel) -> Result<std::convert::Infallible> {
    let cfg = match chan.recv()? {
        ToInit::Config(c) => c,
        other => bail!("expected the init config, got {other:?}"),
    };
    set_cloexec(cfg.fifo_fd);
    if let Some(fd) = cfg.console_fd {
        set_cloexec(fd);
    }
    namespaces::enter(&cfg, chan)?;
    setup_container(&cfg, chan)?;
    exec::wait_and_exec(&cfg, chan)
}

/// Rootfs, console, hostname, sysctl, rlimits, user and capabilities: all that needs privileges.
fn setup_container(cfg: &InitConfig, chan: &mut Channel) -> Result<()> {
    let spec = &cfg.spec;
    let process = spec.process().as_ref().context("process must be set")?;
    let hooks = spec.hooks().as_ref();
    let wants_runtime_hooks =
        hooks.is_some_and(|h| h.prestart().as_ref().is_some_and(|v| !v.is_empty()) || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty()));
    crate::rootfs::prepare(cfg)?;
    if wants_runtime_hooks {
        // createRuntime hooks run in the runtime's namespaces, after ours exist, before pivot_root.
        chan.send(&FromInit::CreateRuntimeHooks)?;
        match chan.recv()? {
            ToInit::Continue => {}
            other => bail!("expected Continue, got {other:?}"),
        }
    }
    crate::rootfs::enter(cfg)?;
    if process.terminal().unwrap_or(false) {
        let fd = cfg.console_fd.context("process.terminal is set but no console socket was passed")?;
        console::setup(fd, process.console_size())?;
    }
    crate::rootfs::finalize(spec)?;
    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).with_context(|| format!("setting hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname() {
        // SAFETY: pointer and length of a live byte slice.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("setting domainname {d:?}"));
        }
    }
    namespaces::write_sysctls(spec)?;
    if !cfg.no_new_keyring {
        namespaces::join_session_keyring(&cfg.id);
    }
    user::apply_rlimits(process)?;
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).context("setting oomScoreAdj")?;
    }
    Ok(())
}
