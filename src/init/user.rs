//! The process identity: rlimits, uid/gid/groups, capabilities, no_new_privs.
use crate::libcontainer::procfs::{self, ProcfsBase};
use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{Capabilities, PosixRlimitType, Process};

pub fn apply_rlimits(process: &Process) -> Result<()> {
    for rl in process.rlimits().as_deref().unwrap_or_default() {
        let resource = rlimit_resource(rl.typ());
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: setrlimit with a valid struct pointer.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| {
                format!(
                    "setting rlimit {:?} to soft {} hard {}",
                    rl.typ(),
                    rl.soft(),
                    rl.hard()
                )
            });
        }
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn to_caps(set: Option<&Capabilities>) -> CapsHashSet {
    let supported = caps::runtime::thread_all_supported();
    set.into_iter()
        .flatten()
        .filter_map(|c| {
            let name = serde_json::to_value(c).ok()?.as_str()?.to_string();
            let cap: Capability = name.parse().ok()?;
            if supported.contains(&cap) {
                Some(cap)
            } else {
                crate::logging::warn(&format!(
                    "capability {name} is not supported by this kernel; skipped"
                ));
                None
            }
        })
        .collect()
}

/// Switches to the process user and sets its capabilities. The bounding set is trimmed while we
/// still hold CAP_SETPCAP; KEEPCAPS carries the permitted set across setuid.
/// Without a terminal the container's stdio is whatever the caller gave the runtime; it becomes
/// owned by the process user so that a non-root process may reopen /proc/self/fd/N (runc's
/// fixStdioPermissions). Left alone: /dev/null, fds already the user's, and what this namespace
/// may not chown (an owner or group it does not map, a read-only /dev).
pub fn give_stdio_to_user(process: &Process) -> Result<()> {
    use nix::sys::stat::{fstat, stat};
    let uid = process.user().uid();
    let null = stat("/dev/null").ok().map(|s| s.st_rdev);
    use std::os::fd::AsFd;
    let (i, o, e) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    for fd in [i.as_fd(), o.as_fd(), e.as_fd()] {
        let Ok(st) = fstat(fd) else { continue };
        if st.st_uid == uid || Some(st.st_rdev) == null {
            continue;
        }
        // the group stays: runc changes only the owner
        match nix::unistd::fchown(fd, Some(Uid::from_raw(uid)), None) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => {}
            Err(e) => return Err(e).context("giving the container's stdio to its user"),
        }
    }
    Ok(())
}

pub fn switch_user(process: &Process) -> Result<()> {
    let user = process.user();
    let wanted = process.capabilities().as_ref();
    if let Some(c) = wanted {
        let bounding = to_caps(c.bounding().as_ref());
        for cap in caps::runtime::thread_all_supported() {
            if !bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .with_context(|| format!("dropping {cap} from the bounding set"))?;
            }
        }
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    }
    let gids: Vec<Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    match setgroups(&gids) {
        Ok(()) => {}
        // A user namespace whose setgroups file says deny refuses even the empty list, and then
        // there are no groups to drop; /proc is only read on that path.
        Err(nix::errno::Errno::EPERM) if gids.is_empty() && in_userns_with_setgroups_denied() => {}
        Err(e) => return Err(e).context("setting additional gids"),
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).with_context(|| format!("setting gid {}", user.gid()))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).with_context(|| format!("setting uid {}", user.uid()))?;
    if let Some(c) = wanted {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
        // Inheritable first, while CAP_SETPCAP is still effective; effective must stay a subset
        // of permitted at every capset, so it shrinks before permitted does.
        caps::set(
            None,
            CapSet::Inheritable,
            &to_caps(c.inheritable().as_ref()),
        )
        .context("setting inheritable capabilities")?;
        caps::set(None, CapSet::Effective, &to_caps(c.effective().as_ref()))
            .context("setting effective capabilities")?;
        caps::set(None, CapSet::Permitted, &to_caps(c.permitted().as_ref()))
            .context("setting permitted capabilities")?;
        caps::clear(None, CapSet::Ambient).context("clearing ambient capabilities")?;
        for cap in to_caps(c.ambient().as_ref()) {
            // The kernel only raises an ambient cap that is also permitted and inheritable;
            // configs often list it alone, and runc carries on without it too.
            if caps::raise(None, CapSet::Ambient, cap).is_err() {
                crate::debug!("ambient {cap} not raised: it is not both permitted and inheritable");
            }
        }
    }
    if wanted.is_none() {
        // Whatever the caller had in these sets must never pass into the container unasked
        // (the CVE-2022-29162 lesson).
        caps::clear(None, CapSet::Inheritable).context("clearing inheritable capabilities")?;
        caps::clear(None, CapSet::Ambient).context("clearing ambient capabilities")?;
    }
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

fn in_userns_with_setgroups_denied() -> bool {
    procfs::read(ProcfsBase::ProcSelf, "setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false)
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setting no_new_privs");
    }
    Ok(())
}
