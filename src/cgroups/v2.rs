//! The cgroup2 tree: creation with controller delegation, cgroup.freeze and cgroup.kill.
use super::fs;
use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Which controllers to turn on for the container's cgroup.
#[derive(Clone, Copy)]
pub enum Enable<'a> {
    /// None (hybrid: the unified tree only tracks membership).
    Nothing,
    /// Everything each ancestor may delegate (pure v2, like runc).
    All,
    Only(&'a [&'a str]),
}

/// Creates `dir` below the cgroup2 mount `base`, enabling controllers in every ancestor's
/// cgroup.subtree_control so the leaf gets their files.
pub fn create(base: &Path, dir: &Path, enable: Enable) -> Result<()> {
    if matches!(enable, Enable::Nothing) {
        return fs::mkdir_all(dir);
    }
    fs::mkdir_levels(base, dir, |parent, _child| enable_in(parent, enable))
}

/// Ensures `dir` exists and `controllers` reach it (for a value requested later, e.g.
/// hugetlb on a hybrid host).
pub fn enable_for(base: &Path, dir: &Path, controllers: &[&str]) -> Result<()> {
    create(base, dir, Enable::Only(controllers))
}

/// Turns on, in `parent`'s subtree_control, the wanted controllers it has but has not yet
/// delegated; reading first keeps the common "already on" case write-free.
fn enable_in(parent: &Path, enable: Enable) -> Result<()> {
    let available = fs::read(parent, "cgroup.controllers")?;
    let current = fs::read(parent, "cgroup.subtree_control")?;
    let current: Vec<&str> = current.split_whitespace().collect();
    let missing: Vec<&str> = available
        .split_whitespace()
        .filter(|c| match enable {
            Enable::Nothing => false,
            Enable::All => true,
            Enable::Only(list) => list.contains(c),
        })
        .filter(|c| !current.contains(c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if fs::write(parent, "cgroup.subtree_control", &all.join(" ")).is_ok() {
        return Ok(());
    }
    // One refusal (e.g. cpu while a realtime task sits in the parent) rejects the whole
    // write; enable what we can one by one. A value needing a controller that stayed off
    // fails later with the missing file's name.
    for c in &all {
        let _ = fs::write(parent, "cgroup.subtree_control", c);
    }
    Ok(())
}

fn events_frozen(text: &str) -> bool {
    fs::keyed_value(text, "frozen") == Some(1)
}

/// Writes cgroup.freeze=1 and waits for cgroup.events to say "frozen 1". The kernel wakes
/// pollers of cgroup.events (POLLPRI) on every change, so this waits without sleeping.
pub fn freeze(dir: &Path) -> Result<()> {
    let events_path = dir.join("cgroup.events");
    let events = std::fs::File::open(&events_path)
        .with_context(|| format!("opening {}", events_path.display()))?;
    fs::write(dir, "cgroup.freeze", "1")?;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 256];
    loop {
        let n = events
            .read_at(&mut buf, 0)
            .with_context(|| format!("reading {}", events_path.display()))?;
        if events_frozen(&String::from_utf8_lossy(&buf[..n])) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = fs::write(dir, "cgroup.freeze", "0");
            bail!(
                "timed out waiting for \"frozen 1\" in {}",
                events_path.display()
            );
        }
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).with_context(|| format!("polling {}", events_path.display())),
        }
    }
}

pub fn thaw(dir: &Path) -> Result<()> {
    fs::write(dir, "cgroup.freeze", "0")
}

pub fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(events_frozen(&fs::read(dir, "cgroup.events")?))
}

/// cgroup.kill (Linux 5.14+) SIGKILLs the whole subtree atomically, racing no forks.
/// Ok(false) when the kernel lacks it. A cgroup that is gone, or goes while we write, has
/// nothing left to kill: systemd removes an emptied scope's cgroup as its last process dies
/// (the init `delete --force` has just killed), between any check of ours and the write.
pub fn kill(dir: &Path) -> Result<bool> {
    match fs::write(dir, "cgroup.kill", "1") {
        Ok(()) => Ok(true),
        Err(e) if matches!(fs::errno(&e), Some(libc::ENOENT | libc::ENODEV)) => {
            // the cgroup went (nothing to kill), or it stays without cgroup.kill (an old kernel)
            Ok(!dir.exists())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn kill_of_a_cgroup_that_is_gone_is_done() {
        // systemd removed the scope's cgroup as its last process died: nothing to kill
        let gone = tempfile::tempdir().unwrap().path().join("rt-gone.scope");
        assert!(kill(&gone).unwrap());
        // a directory without cgroup.kill is a kernel without it: the caller signals each pid
        let old = tempfile::tempdir().unwrap();
        assert!(!kill(old.path()).unwrap());
    }

    #[test]
    fn parses_events() {
        assert!(events_frozen("populated 1\nfrozen 1\n"));
        assert!(!events_frozen("populated 1\nfrozen 0\n"));
        assert!(!events_frozen("populated 0\n"));
    }
}
