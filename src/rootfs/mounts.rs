//! mounts[] entries, done in the tree before pivot_root: every target resolved in-root, checked
//! where it really is, and mounted on through its fd.
use super::fd::{self, proc_path};
use super::options::{self, MountOptions};
use super::tree::Tree;
use super::CgroupMount;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct MountCtx<'a> {
    pub tree: &'a Tree,
    /// mounts[] sources the runtime opened before init entered its user namespace, by index
    /// (empty, or one per entry).
    pub sources: &'a [Option<BorrowedFd<'a>>],
    pub bundle: &'a Path,
    pub cgroup_ns: bool,
    pub cgroups: &'a [CgroupMount],
}

/// The /proc files a mount may cover: what lxcfs overlays, and what CRIU needs.
const PROC_FILES_ALLOWED: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// mounts[`index`] of the config.
pub fn mount_entry(ctx: &MountCtx, m: &Mount, index: usize) -> Result<()> {
    let mut opts = options::parse(m.options().as_deref().unwrap_or_default())?;
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, dest, &opts);
    }
    if opts.is_bind() || typ == "bind" {
        let src = m.source().as_ref().context("a bind mount needs a source")?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            ctx.bundle.join(src)
        };
        let fd = ctx.sources.get(index).copied().flatten();
        return bind(ctx.tree, &src, fd, dest, &opts);
    }
    let target = ctx.tree.dir(dest)?;
    check_target(ctx.tree, target.as_fd(), dest, typ)?;
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    if is_readonly_dev(m) {
        // Its nodes and the mount points below it are made first; `protect` makes it
        // read-only at the end, as runc does.
        opts.flags.remove(MsFlags::MS_RDONLY);
    }
    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    match mount(
        Some(&source),
        &proc_path(target.as_fd()),
        Some(typ),
        opts.flags,
        data,
    ) {
        Ok(()) => {}
        // Without a network namespace of its own a container may not mount sysfs (and without an
        // ipc namespace, mqueue): runc falls back to binding the host's.
        Err(Errno::EPERM) | Err(Errno::EBUSY) if typ == "sysfs" || typ == "mqueue" => {
            let host = if typ == "sysfs" {
                "/sys"
            } else {
                "/dev/mqueue"
            };
            let mut o = MountOptions {
                flags: opts.flags | MsFlags::MS_BIND | MsFlags::MS_REC,
                ..Default::default()
            };
            o.propagation.clone_from(&opts.propagation);
            return bind(ctx.tree, Path::new(host), None, dest, &o);
        }
        Err(e) => return Err(e).with_context(|| format!("mounting {typ} on {}", dest.display())),
    }
    set_propagation(&mounted(ctx.tree, dest)?, &opts)
}

/// A /dev tmpfs the config wants read-only.
pub fn is_readonly_dev(m: &Mount) -> bool {
    m.typ().as_deref() == Some("tmpfs")
        && super::tree::clean(m.destination()) == Path::new("/dev")
        && options::parse(m.options().as_deref().unwrap_or_default())
            .is_ok_and(|o| o.flags.contains(MsFlags::MS_RDONLY))
}

/// Where a target really is decides what may be mounted on it, not the destination string: a
/// destination that reaches procfs (directly, through an image symlink, or through a procfs
/// mounted elsewhere) is refused but for /proc itself with type proc and the files lxcfs covers
/// (the CVE-2025-52881 family). The rootfs itself is never a target.
fn check_target(tree: &Tree, target: BorrowedFd<'_>, dest: &Path, typ: &str) -> Result<()> {
    let at = tree.container_path(target)?;
    if at == Path::new("/") {
        bail!(
            "destination resolves to the container's root (is a directory on the way a symlink?)"
        );
    }
    let in_proc = at.starts_with("/proc") || fd::fstatfs_type(target)? == fd::PROC_SUPER_MAGIC;
    if !in_proc {
        return Ok(());
    }
    if at == Path::new("/proc") {
        if typ == "proc" {
            return Ok(());
        }
        bail!(
            "{} cannot be mounted: /proc may only be a proc mount",
            dest.display()
        );
    }
    if PROC_FILES_ALLOWED.iter().any(|f| at == Path::new(f)) {
        return Ok(());
    }
    if at == dest {
        bail!(
            "{} cannot be mounted because it is inside /proc",
            dest.display()
        );
    }
    bail!(
        "{} cannot be mounted because it resolves to {}, inside /proc",
        dest.display(),
        at.display()
    )
}

/// A bind mount, with the flags it asks for applied by a remount (bind ignores them otherwise).
/// The source is used through an fd: `src_fd` when the runtime opened it before init entered a
/// user namespace (a directory only host root may reach), else `src` opened here.
pub fn bind(
    tree: &Tree,
    src: &Path,
    src_fd: Option<BorrowedFd<'_>>,
    dest: &Path,
    opts: &MountOptions,
) -> Result<()> {
    let opened;
    let src_fd = match src_fd {
        Some(fd) => fd,
        None => {
            opened =
                fd::open_path(src).with_context(|| format!("bind source {}", src.display()))?;
            opened.as_fd()
        }
    };
    let target = if fd::is_dir(src_fd)? {
        tree.dir(dest)?
    } else {
        tree.file(dest)?
    };
    // A bind of a procfs (the host's /proc for a container in the host's pid namespace) counts
    // as a proc mount, as runc takes it.
    let src_is_proc = fd::fstatfs_type(src_fd).is_ok_and(|t| t == fd::PROC_SUPER_MAGIC);
    check_target(
        tree,
        target.as_fd(),
        dest,
        if src_is_proc { "proc" } else { "bind" },
    )?;
    let bind_flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    mount(
        Some(&proc_path(src_fd)),
        &proc_path(target.as_fd()),
        None::<&str>,
        bind_flags,
        None::<&str>,
    )
    .with_context(|| format!("bind mounting {} on {}", src.display(), dest.display()))?;
    let top = mounted(tree, dest)?;
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        remount_bind(top.as_fd(), src_fd, extra, opts.cleared)
            .with_context(|| format!("remounting {}", dest.display()))?;
    }
    if opts.recursive_ro {
        super::setattr::recursive_readonly(top.as_fd())
            .with_context(|| format!("making {} recursively read-only", dest.display()))?;
    }
    set_propagation(&top, opts)
}

/// The flags a less privileged mount namespace may not drop from a mount it was given (the
/// kernel locks them on the copies a user namespace's mount namespace gets).
const LOCKABLE: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The bind at `top` remounted with `flags`, as runc does it: first as asked (runc 1.1.5's
/// remount, for root); refused (EPERM: in a user namespace the source's nosuid, nodev, noexec
/// or ro are locked), again with the source's own lockable flags added, read with statvfs on
/// the source, unless the options cleared one of them explicitly (`rw` of a read-only source
/// stays an error rather than a quietly read-only mount).
fn remount_bind(
    top: BorrowedFd<'_>,
    src: BorrowedFd<'_>,
    flags: MsFlags,
    cleared: MsFlags,
) -> Result<()> {
    let remount = |f: MsFlags| {
        mount(
            None::<&str>,
            &proc_path(top),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | f,
            None::<&str>,
        )
    };
    let err = match remount(flags) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let locked = statvfs_flags(src) & LOCKABLE;
    if err != Errno::EPERM || (locked - flags).is_empty() {
        return Err(err).with_context(|| format!("remount with {flags:?}"));
    }
    if cleared.intersects(locked) {
        return Err(err).with_context(|| {
            format!(
                "remount with {flags:?}: the source has {:?}, which the options clear",
                cleared & locked
            )
        });
    }
    remount(flags | locked)
        .with_context(|| format!("remount with {flags:?} and the source's {locked:?}"))
}

fn statvfs_flags(fd: BorrowedFd<'_>) -> MsFlags {
    use nix::sys::statvfs::{fstatvfs, FsFlags};
    let Ok(st) = fstatvfs(fd) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// The mount just made at `dest`: resolved again, so later changes act on it and not on the
/// directory beneath.
pub fn mounted(tree: &Tree, dest: &Path) -> Result<OwnedFd> {
    tree.existing(dest)?
        .with_context(|| format!("{} vanished after mounting on it", dest.display()))
}

/// Remount a bind mount with `flags`, keeping the flags the kernel locked on it (an unprivileged
/// or user-namespaced caller may not drop nosuid/nodev/noexec/atime flags).
pub fn remount(top: BorrowedFd<'_>, flags: MsFlags) -> Result<()> {
    let locked = locked_flags(top);
    mount(
        None::<&str>,
        &proc_path(top),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked,
        None::<&str>,
    )
    .with_context(|| format!("remount with {flags:?}"))
}

fn locked_flags(fd: BorrowedFd<'_>) -> MsFlags {
    use nix::sys::statvfs::{fstatvfs, FsFlags};
    let Ok(st) = fstatvfs(fd) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

fn set_propagation(top: &OwnedFd, opts: &MountOptions) -> Result<()> {
    for p in &opts.propagation {
        mount(
            None::<&str>,
            &proc_path(top.as_fd()),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .with_context(|| format!("setting propagation {p:?}"))?;
    }
    Ok(())
}

/// /sys/fs/cgroup in the container: cgroup2 on a unified host; on v1 and hybrid hosts a tmpfs
/// holding one mount per hierarchy, each showing only the container's own cgroup.
fn mount_cgroup(ctx: &MountCtx, dest: &Path, opts: &MountOptions) -> Result<()> {
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    if let [only] = ctx.cgroups {
        if only.name.is_empty() {
            mount_one_cgroup(ctx, only, dest, flags)?;
            return set_propagation(&mounted(ctx.tree, dest)?, opts);
        }
    }
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let t = ctx.tree.dir(dest)?;
    check_target(ctx.tree, t.as_fd(), dest, "tmpfs")?;
    mount(
        Some("tmpfs"),
        &proc_path(t.as_fd()),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .with_context(|| format!("mounting tmpfs on {}", dest.display()))?;
    for cm in ctx.cgroups {
        mount_one_cgroup(ctx, cm, &dest.join(&cm.name), flags)?;
        for link in &cm.symlinks {
            ctx.tree.symlink(&dest.join(link), &cm.name)?;
        }
    }
    let top = mounted(ctx.tree, dest)?;
    if flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            &proc_path(top.as_fd()),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs_flags,
            Some("mode=755"),
        )
        .with_context(|| format!("remounting {} read-only", dest.display()))?;
    }
    set_propagation(&top, opts)
}

fn mount_one_cgroup(ctx: &MountCtx, cm: &CgroupMount, target: &Path, flags: MsFlags) -> Result<()> {
    if ctx.cgroup_ns {
        // Inside its own cgroup namespace the container's cgroup is the root of a fresh mount.
        let data = (!cm.data.is_empty()).then_some(cm.data.as_str());
        let t = ctx.tree.dir(target)?;
        check_target(ctx.tree, t.as_fd(), target, &cm.fstype)?;
        match mount(
            Some("cgroup"),
            &proc_path(t.as_fd()),
            Some(cm.fstype.as_str()),
            flags,
            data,
        ) {
            Ok(()) => return Ok(()),
            // A user namespace may be refused a cgroup2 mount of its own (EPERM, or EBUSY:
            // seen rootless on a systemd host with /sys a bind of the host's); as runc does, the
            // container's cgroup bound there shows the same tree.
            Err(e @ (nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY))
                if cm.fstype == "cgroup2" =>
            {
                crate::debug!(
                    "mounting cgroup2 on {}: {e}; binding the container's cgroup instead",
                    target.display()
                );
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("mounting {} on {}", cm.fstype, target.display()))
            }
        }
    }
    let opts = MountOptions {
        flags: flags | MsFlags::MS_BIND,
        ..Default::default()
    };
    bind(ctx.tree, &cm.host_dir, None, target, &opts)
}
