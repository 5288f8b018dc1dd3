//! Switching root: pivot_root (the default), or a move + chroot for --no-pivot.
use anyhow::{Context, Result};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chroot, fchdir, pivot_root as sys_pivot_root};
use std::os::fd::BorrowedFd;
use std::path::Path;

/// `new_root` is the tree's own fd: the rootfs is entered exactly as it was resolved.
pub fn pivot_root(new_root: BorrowedFd<'_>) -> Result<()> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", flags, Mode::empty()).context("opening /")?;
    // pivot_root(".", ".") stacks the old root on top of the new one; no put_old dir is needed
    // in the rootfs, and the old root is unmounted right after.
    fchdir(new_root).context("chdir to rootfs")?;
    sys_pivot_root(".", ".").context("pivot_root")?;
    fchdir(&old).context("chdir to the old root")?;
    // The unmount must not propagate to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("making old root a slave")?;
    umount2(".", MntFlags::MNT_DETACH).context("unmounting the old root")?;
    std::env::set_current_dir("/").context("chdir /")?;
    Ok(())
}

/// chroot into the tree's own fd (entered exactly as it was resolved), for a container without a
/// mount namespace of its own.
pub fn chroot_into(new_root: BorrowedFd<'_>) -> Result<()> {
    fchdir(new_root).context("chdir to rootfs")?;
    chroot(".").context("chroot to rootfs")?;
    std::env::set_current_dir("/").context("chdir /")?;
    Ok(())
}

pub fn move_root(rootfs: &Path) -> Result<()> {
    std::env::set_current_dir(rootfs).with_context(|| format!("chdir to {}", rootfs.display()))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .context("moving rootfs to /")?;
    chroot(".").context("chroot")?;
    std::env::set_current_dir("/").context("chdir /")?;
    Ok(())
}

/// The mount the rootfs is on (the rootfs itself when it is a mount point) made private, or a
/// slave with `slave`: changing the propagation of a directory that is not a mount point is
/// EINVAL, so each parent is tried in turn, as runc does. `rootfs` is the bundle's canonical
/// path on the host, not a path into the image.
pub fn make_rootfs_mount_private(rootfs: &Path, slave: bool) -> Result<()> {
    let flags = if slave {
        MsFlags::MS_SLAVE
    } else {
        MsFlags::MS_PRIVATE
    };
    let mut at = rootfs;
    loop {
        match mount(None::<&str>, at, None::<&str>, flags, None::<&str>) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL) if at != Path::new("/") => {
                at = at.parent().unwrap_or(Path::new("/"));
            }
            Err(e) => {
                let what = if slave { "a slave" } else { "private" };
                return Err(e).with_context(|| {
                    format!("making the mount of rootfs {} {what}", at.display())
                });
            }
        }
    }
}
