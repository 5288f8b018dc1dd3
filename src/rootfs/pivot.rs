//! Switching root: pivot_root (the default), or a move + chroot for --no-pivot.
use anyhow::{Context, Result};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chroot, fchdir, pivot_root as sys_pivot_root};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

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

/// The mount that holds `path`, from /proc/self/mountinfo (longest mount point that prefixes it).
fn mount_point_of(path: &Path) -> Result<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let mut best = PathBuf::from("/");
    for line in info.lines() {
        if let Some(mp) = line.split(' ').nth(4) {
            let mp = PathBuf::from(mp.replace("\\040", " "));
            if path.starts_with(&mp) && mp.as_os_str().len() > best.as_os_str().len() {
                best = mp;
            }
        }
    }
    Ok(best)
}

pub fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let mp = mount_point_of(parent)?;
    mount(
        None::<&str>,
        &mp,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .with_context(|| format!("making {} private", mp.display()))
}
