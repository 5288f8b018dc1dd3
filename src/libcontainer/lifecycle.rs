//! start, kill and delete: what happens to a container after create.
use super::container::{Container, NoCgroup};
use super::hooks;
use super::process::{pidfd_open, wait_pidfd};
use super::state::{Status, EXEC_FIFO};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill as send_signal, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{read, Pid};
use std::os::fd::AsFd;

/// Releases a created container's init: it execs the user's process once it has read the fifo.
pub fn start(c: &mut Container) -> Result<()> {
    match c.status() {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    let fifo_path = c.dir.join(EXEC_FIFO);
    let pidfd = pidfd_open(c.state.pid)?;
    // Non-blocking open never waits for a writer; the poll below watches init at the same time.
    let fifo = open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening exec.fifo")?;
    let mut buf = [0u8; 8];
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waiting on exec.fifo"),
            Ok(_) => {}
        }
        if fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
        {
            match read(&fifo, &mut buf) {
                Ok(n) if n > 0 => break,
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                _ => {}
            }
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            bail!("cannot start container {}: its init process exited", c.id());
        }
    }
    // Init closes its end when it execs (O_CLOEXEC) or dies: a blocking read to EOF means the
    // user's process is running before poststart hooks run.
    let flags = OFlag::from_bits_truncate(fcntl(&fifo, FcntlArg::F_GETFL)?);
    fcntl(&fifo, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    while !matches!(read(&fifo, &mut buf), Ok(0) | Err(Errno::EBADF)) {}
    // The process may already have exited (a /bin/true): that is a start that worked, as in runc.
    let _ = std::fs::remove_file(&fifo_path);
    crate::debug!("start {}: process {} released", c.id(), c.state.pid);
    c.state.status = Status::Running;
    c.save()?;
    let h = c.state.config.hooks().clone();
    if let Some(hs) = h.as_ref().and_then(|h| h.poststart().as_ref()) {
        let json = serde_json::to_vec(&c.state.public(Status::Running))?;
        hooks::run_all_warn("poststart", Some(hs), &json);
    }
    Ok(())
}

/// Parses a signal the way runc does: a number (passed to the kernel as it is), or a name such
/// as "KILL" or "SIGKILL" in any case.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}

/// kill(2) with a raw number: 0 probes, numbers the kernel does not know get its EINVAL.
fn send_raw(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: kill takes plain integers.
    Errno::result(unsafe { libc::kill(pid, sig) }).map(drop)
}

pub fn kill(c: &Container, sig: i32, all: bool) -> Result<()> {
    let status = c.status();
    crate::debug!(
        "kill {}: signal {sig} (all: {all}), status {status}",
        c.id()
    );
    if all && c.state.no_cgroup {
        // No cgroup (rootless): the processes of its pid namespace, without a freezer to hold
        // them still meanwhile.
        let pids = c.pids()?;
        if status == Status::Stopped && pids.is_empty() {
            return Ok(());
        }
        for p in pids {
            match send_raw(p, sig) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => bail!("unable to signal pid {p}: {}", e.desc().to_lowercase()),
            }
        }
        return Ok(());
    }
    if all {
        let cg = c.cgroup()?;
        // runc: "no error is returned if the container is stopped". The containerd shim
        // sends `kill --all ID 9` right after the init of a container without its own pid
        // namespace exits, to kill what it left; when nothing is left that is not an error.
        if status == Status::Stopped && cg.pids().map(|p| p.is_empty()).unwrap_or(true) {
            return Ok(());
        }
        let sig = Signal::try_from(sig)
            .map_err(|_| anyhow::anyhow!("unable to signal init: invalid argument"))?;
        return cg.kill_all(sig);
    }
    if status == Status::Stopped {
        bail!("container not running");
    }
    match send_raw(c.state.pid, sig) {
        Ok(()) => {}
        Err(Errno::ESRCH) => bail!("container not running"),
        Err(e) => bail!("unable to signal init: {}", e.desc().to_lowercase()),
    }
    // A frozen process only acts on SIGKILL once thawed.
    if sig == Signal::SIGKILL as i32 && status == Status::Paused {
        c.cgroup()?.thaw()?;
    }
    Ok(())
}

/// The freezer's cgroup, in runc's words when there is none.
fn freezer_cgroup(c: &Container) -> Result<crate::cgroups::CgroupManager> {
    c.cgroup().map_err(|e| match e.downcast_ref::<NoCgroup>() {
        Some(_) => anyhow::anyhow!("cannot toggle freezer: {e}"),
        None => e,
    })
}

pub fn pause(c: &Container) -> Result<()> {
    crate::debug!("pause {}: freezing", c.id());
    match c.status() {
        Status::Running | Status::Created => freezer_cgroup(c)?.freeze(),
        Status::Paused => bail!("container {} is already paused", c.id()),
        _ => bail!("container not running"),
    }
}

pub fn resume(c: &Container) -> Result<()> {
    crate::debug!("resume {}: thawing", c.id());
    match c.status() {
        Status::Paused => freezer_cgroup(c)?.thaw(),
        _ => bail!("container not paused"),
    }
}

/// Kills everything in the container and waits (bounded) for its init to exit.
fn kill_and_wait(c: &Container) -> Result<()> {
    let pidfd = if c.is_alive() {
        pidfd_open(c.state.pid).ok()
    } else {
        None
    };
    if pidfd.is_some() {
        // Only the recorded process: the pid number alone could be someone else's by now.
        let _ = send_signal(Pid::from_raw(c.state.pid), Signal::SIGKILL);
    }
    if c.state.no_cgroup {
        // (its pid namespace goes with its init)
        kill(c, Signal::SIGKILL as i32, true).context("killing the container's processes")?;
    } else {
        c.cgroup()?
            .kill_all(Signal::SIGKILL)
            .context("killing the container's processes")?;
    }
    if let Some(fd) = pidfd {
        if !wait_pidfd(&fd, 10_000)? {
            bail!(
                "container {} init (pid {}) did not exit after SIGKILL",
                c.id(),
                c.state.pid
            );
        }
    }
    Ok(())
}

pub fn delete(c: Container, force: bool) -> Result<()> {
    let status = c.status();
    crate::debug!("delete {}: status {status} (force: {force})", c.id());
    match status {
        Status::Stopped => {}
        // runc deletes a container that was created but never started without --force.
        Status::Created => kill_and_wait(&c)?,
        _ if force => kill_and_wait(&c)?,
        _ => bail!(
            "cannot delete container {} that is not stopped: {status}",
            c.id()
        ),
    }
    destroy(c)
}

/// Removes what a stopped container still holds: its cgroup, its state dir; runs poststop hooks.
pub fn destroy(c: Container) -> Result<()> {
    if !c.state.no_cgroup {
        let cg = c.cgroup()?;
        // Without a pid namespace, children of init survive it; they go with the cgroup.
        if !cg.pids().unwrap_or_default().is_empty() {
            cg.kill_all(Signal::SIGKILL)?;
        }
        cg.remove()
            .with_context(|| format!("removing cgroup {}", cg.path()))?;
    }
    std::fs::remove_dir_all(&c.dir).with_context(|| format!("removing {}", c.dir.display()))?;
    let h = c.state.config.hooks().clone();
    if let Some(hs) = h.as_ref().and_then(|h| h.poststop().as_ref()) {
        let json = serde_json::to_vec(&c.state.public(Status::Stopped))?;
        hooks::run_all_warn("poststop", Some(hs), &json);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(parse_signal("99").unwrap(), 99);
    }
}
