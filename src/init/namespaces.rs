//! Init's part of namespaces: joining ones given by path, and the two that must wait for init.
use crate::libcontainer::namespaces::{flag, is_new, namespaces};
use crate::libcontainer::sync::{Channel, InitConfig};
use anyhow::{Context, Result};
use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub fn enter(cfg: &InitConfig, chan: &mut Channel) -> Result<()> {
    let spec = &cfg.spec;
    // The user namespace first: joining it grants the capabilities needed to join the others.
    let mut joins: Vec<_> = namespaces(spec)
        .iter()
        .filter(|n| n.path().is_some())
        .collect();
    joins.sort_by_key(|n| n.typ() != LinuxNamespaceType::User);
    let mut joined_pid = false;
    for ns in joins {
        let path = ns.path().as_ref().expect("filtered on path");
        let f = std::fs::File::open(path)
            .with_context(|| format!("opening {} namespace {}", ns.typ(), path.display()))?;
        setns(&f, flag(ns.typ()))
            .with_context(|| format!("joining {} namespace {}", ns.typ(), path.display()))?;
        joined_pid |= ns.typ() == LinuxNamespaceType::Pid;
    }
    if joined_pid {
        super::fork_into_pid_namespace(chan)?;
    }
    if is_new(spec, LinuxNamespaceType::Cgroup) {
        unshare(CloneFlags::CLONE_NEWCGROUP).context("creating the cgroup namespace")?;
    }
    if is_new(spec, LinuxNamespaceType::Time) {
        unshare(flag(LinuxNamespaceType::Time)).context("creating the time namespace")?;
        write_time_offsets(spec)?;
    }
    Ok(())
}

/// Offsets must be written before any process is in the new time namespace; the exec of the
/// user's process is what moves init into it.
fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).context("writing linux.timeOffsets")
}

pub fn write_sysctls(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctl {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).with_context(|| format!("linux.sysctl {key}={value}"))?;
    }
    Ok(())
}

/// A fresh session keyring per container, so containers never share keys; kernels or seccomp
/// profiles without keyctl just skip it, as runc does.
pub fn join_session_keyring(id: &str) {
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl with a valid NUL-terminated name.
    unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
}
