//! `rt run` in the foreground: forward signals to the container, proxy its terminal, and return
//! its exit status once it is gone.
use super::console::{copy_once, copy_winsize, RawTerminal};
use super::process::pidfd_open;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};

/// Signals rt run passes on to the container rather than acting on itself.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    set
}

/// Blocks the forwarded signals (before the container exists, so none is lost) and returns an
/// fd to read them from.
pub fn block_signals() -> Result<SignalFd> {
    let set = forwarded_signals();
    set.thread_block().context("blocking signals")?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).context("signalfd")
}

/// Waits for the container's init; returns its exit code the way a shell reports it.
pub fn wait(pid: i32, signals: &SignalFd, master: Option<OwnedFd>) -> Result<i32> {
    let pidfd = pidfd_open(pid)?;
    let _raw = master.as_ref().map(|_| RawTerminal::new());
    if let Some(m) = &master {
        copy_winsize(m.as_fd());
    }
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    loop {
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        if let (Some(m), true) = (&master, master_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[1] {
            if let Ok(Some(info)) = signals.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).ok();
                match (sig, &master) {
                    (Some(Signal::SIGWINCH), Some(m)) => copy_winsize(m.as_fd()),
                    (Some(s), _) => {
                        let _ = kill(Pid::from_raw(pid), s);
                    }
                    _ => {}
                }
            }
        }
        let mut i = 2;
        if let (Some(m), true) = (&master, master_open) {
            if ready[i] {
                master_open = copy_once(m.as_fd(), stdout.as_fd());
            }
            i += 1;
        }
        if stdin_open && ready[i] {
            if let Some(m) = &master {
                stdin_open = copy_once(stdin.as_fd(), m.as_fd());
            }
        }
        if ready[0] {
            break;
        }
    }
    // Drain what the container wrote just before it exited.
    if let (Some(m), true) = (&master, master_open) {
        nix::fcntl::fcntl(
            m,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        let mut fds = [PollFd::new(m.as_fd(), PollFlags::POLLIN)];
        while poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) > 0
            && copy_once(m.as_fd(), stdout.as_fd())
        {}
    }
    let status = match waitpid(Pid::from_raw(pid), None) {
        Ok(WaitStatus::Exited(_, code)) => code,
        Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as i32,
        // Not our child (it was forked into a joined pid namespace): its status is not ours to read.
        _ => 0,
    };
    crate::debug!("process exited: pid {pid}, status {status}");
    Ok(status)
}
