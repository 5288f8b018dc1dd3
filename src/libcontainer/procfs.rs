//! What /proc says about a process: alive or not, and when it started; and every write rt
//! makes to procfs.
//!
//! Writes (id maps, sysctls, oom_score_adj, LSM attributes, time offsets) go to a private
//! procfs instance that pathrs makes (fsopen("proc"), else a clone of /proc without what is
//! mounted on it), checked with fstatfs, with lookups that cannot leave it or cross a mount.
//! They never go through a `/proc/...` path: inside the container's mount namespace that is
//! whatever the container made of it, and a write meant for `attr/exec` or a sysctl could land
//! in another file (CVE-2025-52881).
use anyhow::{Context, Result};
use pathrs::flags::OpenFlags;
pub use pathrs::procfs::ProcfsBase;
use pathrs::procfs::{ProcfsHandle, ProcfsHandleBuilder};
use std::io::{Read, Write};
use std::path::PathBuf;

/// The private procfs instance, made once per process and kept: made while init may still mount
/// (fsopen needs CAP_SYS_ADMIN; see `warm_up`), it serves the calls made after the process's
/// capabilities are set (the exec fifo, LSM labels). pathrs caches one too, but checks it again
/// on every use and, where that fails (no /proc in the container), falls back to opening the
/// container's own /proc, or panics when there is none.
static HANDLE: std::sync::OnceLock<ProcfsHandle> = std::sync::OnceLock::new();

fn handle() -> Result<&'static ProcfsHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h);
    }
    let h = ProcfsHandle::new().context("opening a private procfs")?;
    Ok(HANDLE.get_or_init(|| h))
}

/// Makes the private procfs now, in init, before anything drops privileges.
pub fn warm_up() -> Result<()> {
    handle().map(drop)
}

fn name(base: ProcfsBase, file: &str) -> String {
    match base {
        ProcfsBase::ProcPid(p) => format!("/proc/{p}/{file}"),
        ProcfsBase::ProcThreadSelf => format!("/proc/thread-self/{file}"),
        ProcfsBase::ProcSelf => format!("/proc/self/{file}"),
        _ => format!("/proc/{file}"),
    }
}

/// Writes `value` to `file` under `base` of a private procfs, in one write(2).
pub fn write(base: ProcfsBase, file: &str, value: &str) -> Result<()> {
    let mut f = handle()?
        .open(base, file, OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC)
        .with_context(|| format!("opening {}", name(base, file)))?;
    f.write_all(value.as_bytes())
        .with_context(|| format!("writing {}", name(base, file)))
}

pub fn read(base: ProcfsBase, file: &str) -> Result<String> {
    let mut f = handle()?
        .open(base, file, OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC)
        .with_context(|| format!("opening {}", name(base, file)))?;
    let mut s = String::new();
    f.read_to_string(&mut s)
        .with_context(|| format!("reading {}", name(base, file)))?;
    Ok(s)
}

/// A magic link of ours reopened (e.g. `fd/N` of an O_PATH fd) through the private procfs.
///
/// A plain openat on the instance's root fd: the instance is ours and detached, so nothing can
/// be mounted over it, and the magic link is meant to be followed. Not pathrs's `open_follow`:
/// it names fds through the global /proc for its diagnostics, and panics when the container has
/// no /proc mounted (this runs after pivot_root).
pub fn reopen(file: &str, flags: OpenFlags) -> Result<std::fs::File> {
    use std::os::fd::AsFd;
    let path = format!("thread-self/{file}");
    let oflags =
        nix::fcntl::OFlag::from_bits_truncate((flags | OpenFlags::O_CLOEXEC).bits() as i32);
    let fd = nix::fcntl::openat(
        handle()?.as_fd(),
        path.as_str(),
        oflags,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("reopening {}", name(ProcfsBase::ProcThreadSelf, file)))?;
    Ok(std::fs::File::from(fd))
}

/// sysctls live outside `/proc/<pid>`: they need a procfs instance without `subset=pid`. It is
/// made for the writes and dropped after them.
pub struct Sysctls(ProcfsHandle);

impl Sysctls {
    pub fn open() -> Result<Sysctls> {
        let h = ProcfsHandleBuilder::new()
            .unmasked()
            .build()
            .context("opening a private procfs for sysctls")?;
        Ok(Sysctls(h))
    }

    /// `path` is relative to /proc, e.g. `sys/net/ipv4/ip_forward`.
    pub fn write(&self, path: &str, value: &str) -> Result<()> {
        let mut f = self
            .0
            .open(
                ProcfsBase::ProcRoot,
                path,
                OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC,
            )
            .with_context(|| format!("opening /proc/{path}"))?;
        f.write_all(value.as_bytes())
            .with_context(|| format!("writing /proc/{path}"))
    }
}

/// (state letter, start time in clock ticks since boot) from /proc/<pid>/stat.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(PathBuf::from(format!("/proc/{pid}/stat"))).ok()?;
    // The command name may hold spaces and ')' so fields are counted after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // starttime is field 22 of the whole line, the 20th after the name.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, t)| t)
}

/// True while `pid` is the same process that started at `start_time` and has not exited.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    matches!(stat(pid), Some((state, t)) if t == start_time && state != 'Z' && state != 'X')
}

/// The processes in `pid`'s pid namespace (as /proc/<p>/ns/pid names it), `pid` first; those
/// whose namespace we may not read are not ours to count.
pub fn in_pid_namespace_of(pid: i32) -> Vec<i32> {
    let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let Some(want) = ns(pid) else {
        return Vec::new();
    };
    let mut out = vec![pid];
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if p != pid && ns(p).as_ref() == Some(&want) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_is_alive() {
        let me = std::process::id() as i32;
        let t = start_time(me).unwrap();
        assert!(is_alive(me, t));
        assert!(!is_alive(me, t + 1));
        assert!(!is_alive(0, t));
    }
}
