//! mounts[] entries, done inside the rootfs before pivot_root.
use super::fd;
use super::options::{self, MountOptions};
use super::path::secure_join;
use crate::cgroups::{CgroupManager, Mode};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;
use std::path::{Path, PathBuf};

pub struct MountCtx<'a> {
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup_ns: bool,
    pub cgroup: &'a CgroupManager,
}

pub fn mount_entry(ctx: &MountCtx, m: &Mount) -> Result<()> {
    let opts = options::parse(m.options().as_deref().unwrap_or_default())?;
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = secure_join(ctx.rootfs, m.destination())?;
    if dest == ctx.rootfs {
        bail!(
            "destination resolves to the container's root (is a directory on the way a symlink?)"
        );
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, &dest, &opts);
    }
    if opts.is_bind() || typ == "bind" {
        let src = m.source().as_ref().context("a bind mount needs a source")?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            ctx.bundle.join(src)
        };
        return bind(ctx.rootfs, &src, &dest, &opts);
    }
    let target = mount_point(ctx.rootfs, &dest, true)?;
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    match mount(
        Some(&source),
        &fd::proc_path(&target),
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
            return bind(ctx.rootfs, Path::new(host), &dest, &o);
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("mounting {typ} on {}", m.destination().display()))
        }
    }
    set_propagation(&dest, &opts)
}

/// A bind mount, with the flags it asks for applied by a remount (bind ignores them otherwise).
pub fn bind(root: &Path, src: &Path, dest: &Path, opts: &MountOptions) -> Result<()> {
    let meta = std::fs::metadata(src).with_context(|| format!("bind source {}", src.display()))?;
    let target = mount_point(root, dest, meta.is_dir())?;
    let bind_flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    mount(
        Some(src),
        &fd::proc_path(&target),
        None::<&str>,
        bind_flags,
        None::<&str>,
    )
    .with_context(|| format!("bind mounting {} on {}", src.display(), dest.display()))?;
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        remount(dest, extra)?;
    }
    if opts.recursive_ro {
        super::setattr::recursive_readonly(dest)?;
    }
    set_propagation(dest, opts)
}

/// Creates the mount point (a directory, or a file for a file bind) and opens it from inside the
/// rootfs: the mount then goes exactly where the rootfs says, never through a symlink out of it.
fn mount_point(root: &Path, dest: &Path, dir: bool) -> Result<std::os::fd::OwnedFd> {
    if dir {
        std::fs::create_dir_all(dest)
            .with_context(|| format!("creating mount point {}", dest.display()))?;
    } else {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        if std::fs::symlink_metadata(dest).is_err() {
            std::fs::File::create(dest)
                .with_context(|| format!("creating mount point {}", dest.display()))?;
        }
    }
    let rel = dest
        .strip_prefix(root)
        .with_context(|| format!("{} is outside the rootfs", dest.display()))?;
    fd::open_in_root(root, rel)
}

/// Remount a bind mount with `flags`, keeping the flags the kernel locked on it (an unprivileged
/// or user-namespaced caller may not drop nosuid/nodev/noexec/atime flags).
pub fn remount(dest: &Path, flags: MsFlags) -> Result<()> {
    let locked = locked_flags(dest);
    mount(
        None::<&str>,
        dest,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked,
        None::<&str>,
    )
    .with_context(|| format!("remounting {} with {flags:?}", dest.display()))
}

fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
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

fn set_propagation(dest: &Path, opts: &MountOptions) -> Result<()> {
    for p in &opts.propagation {
        mount(None::<&str>, dest, None::<&str>, *p, None::<&str>)
            .with_context(|| format!("setting propagation {p:?} on {}", dest.display()))?;
    }
    Ok(())
}

/// /sys/fs/cgroup in the container: cgroup2 on a unified host; on v1 and hybrid hosts a tmpfs
/// holding one mount per hierarchy, each showing only the container's own cgroup.
fn mount_cgroup(ctx: &MountCtx, dest: &Path, opts: &MountOptions) -> Result<()> {
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    let mounts = ctx.cgroup.container_mounts()?;
    if CgroupManager::mode() == Mode::V2 {
        for cm in &mounts {
            mount_one_cgroup(ctx, &cm.host_dir, dest, &cm.fstype, &cm.data, flags)?;
        }
        return set_propagation(dest, opts);
    }
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let t = mount_point(ctx.rootfs, dest, true)?;
    mount(
        Some("tmpfs"),
        &fd::proc_path(&t),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .with_context(|| format!("mounting tmpfs on {}", dest.display()))?;
    for cm in &mounts {
        let target = dest.join(&cm.name);
        mount_one_cgroup(ctx, &cm.host_dir, &target, &cm.fstype, &cm.data, flags)?;
        for link in &cm.symlinks {
            let _ = std::os::unix::fs::symlink(&cm.name, dest.join(link));
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            dest,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs_flags,
            Some("mode=755"),
        )
        .with_context(|| format!("remounting {} read-only", dest.display()))?;
    }
    set_propagation(dest, opts)
}

fn mount_one_cgroup(
    ctx: &MountCtx,
    host_dir: &Path,
    target: &Path,
    fstype: &str,
    data: &str,
    flags: MsFlags,
) -> Result<()> {
    if ctx.cgroup_ns {
        // Inside its own cgroup namespace the container's cgroup is the root of a fresh mount.
        let data = (!data.is_empty()).then_some(data);
        let t = mount_point(ctx.rootfs, target, true)?;
        mount(
            Some("cgroup"),
            &fd::proc_path(&t),
            Some(fstype),
            flags,
            data,
        )
        .with_context(|| format!("mounting {fstype} on {}", target.display()))
    } else {
        let opts = MountOptions {
            flags: flags | MsFlags::MS_BIND,
            ..Default::default()
        };
        bind(ctx.rootfs, host_dir, target, &opts)
    }
}
