//! Init's part of namespaces: joining ones given by path, and the two that must wait for init.
use crate::libcontainer::namespaces::{flag, is_new, namespaces, proc_name};
use crate::libcontainer::procfs::{self, ProcfsBase};
use crate::libcontainer::sync::{Channel, InitConfig};
use crate::libcontainer::sysctl;
use anyhow::{Context, Result};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::fstat;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::fs::File;
use std::path::Path;

pub fn enter(cfg: &InitConfig, chan: &mut Channel) -> Result<()> {
    let spec = &cfg.spec;
    let joins: Vec<(LinuxNamespaceType, &Path)> = namespaces(spec)
        .iter()
        .filter_map(|n| n.path().as_deref().map(|p| (n.typ(), p)))
        .collect();
    join(&joins, chan)?;
    if is_new(spec, LinuxNamespaceType::Cgroup) {
        unshare(CloneFlags::CLONE_NEWCGROUP).context("creating the cgroup namespace")?;
    }
    if is_new(spec, LinuxNamespaceType::Time) {
        unshare(flag(LinuxNamespaceType::Time)).context("creating the time namespace")?;
        write_time_offsets(spec)?;
    }
    Ok(())
}

/// Joins namespaces given by path. All are opened first (a /proc/<pid>/ns path stops resolving
/// once we are in that pid's mount namespace), then joined user namespace first (it grants the
/// capabilities needed for the rest); one we are already in is skipped, since joining one's own
/// user namespace is refused. After joining a pid namespace the caller continues in a fork.
pub fn join(list: &[(LinuxNamespaceType, &Path)], chan: &mut Channel) -> Result<()> {
    let mut files = Vec::with_capacity(list.len());
    for (t, path) in list {
        let f = File::open(path)
            .with_context(|| format!("opening {t} namespace {}", path.display()))?;
        files.push((*t, f, *path));
    }
    files.sort_by_key(|(t, _, _)| *t != LinuxNamespaceType::User);
    let mut joined_pid = false;
    for (t, f, path) in &files {
        if same_as_ours(*t, f) {
            continue;
        }
        setns(f, flag(*t)).with_context(|| format!("joining {t} namespace {}", path.display()))?;
        joined_pid |= *t == LinuxNamespaceType::Pid;
    }
    drop(files);
    if joined_pid {
        super::fork_into_pid_namespace(chan)?;
    }
    Ok(())
}

fn same_as_ours(t: LinuxNamespaceType, f: &File) -> bool {
    let ours = format!("/proc/self/ns/{}", proc_name(t));
    let (Ok(theirs), Ok(ours)) = (fstat(f), nix::sys::stat::stat(ours.as_str())) else {
        return false;
    };
    theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev
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
    procfs::write(ProcfsBase::ProcSelf, "timens_offsets", &text)
        .context("writing linux.timeOffsets")
}

pub fn write_sysctls(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    if sysctl.is_empty() {
        return Ok(());
    }
    let proc = procfs::Sysctls::open()?;
    for (key, value) in sysctl {
        let path = sysctl::parse(key)?.proc_path();
        proc.write(&path, value)
            .with_context(|| format!("linux.sysctl {key}={value}"))?;
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

/// A new network namespace starts with `lo` down; runc brings it up (its "loopback" network),
/// so 127.0.0.1 works in every container. SIOCGIFFLAGS/SIOCSIFFLAGS on an inet socket of the
/// namespace init is in.
pub fn loopback_up() -> Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: socket(2) with constant arguments; the fd is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket for bringing up lo");
    }
    // SAFETY: a fresh fd from the kernel, owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data (arrays, integers, a union of those): all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: ioctls on our own socket with a live ifreq naming lo; the kernel fills or reads
    // ifru_flags, the union member these two requests use.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(std::io::Error::last_os_error()).context("reading the flags of lo");
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(std::io::Error::last_os_error())
                .context("bringing up lo in the new network namespace");
        }
    }
    Ok(())
}
