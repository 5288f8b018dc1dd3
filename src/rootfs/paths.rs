//! linux.maskedPaths and linux.readonlyPaths, done in the tree before pivot_root.
use super::fd::{self, proc_path};
use super::mounts::{mounted, remount};
use super::tree::Tree;
use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The null device masks are made of: the host's own (rt's mount namespace, before pivot_root),
/// checked to be char 1:3. The image's /dev/null is never used, so it cannot be a symlink to a
/// file that would be mounted writable over the mask, nor missing so the mask is skipped
/// (CVE-2025-31133).
pub fn null_device() -> Result<OwnedFd> {
    let null = fd::open_nofollow(Path::new("/dev/null"))?;
    let st = fd::fstat(null.as_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        bail!("the runtime's /dev/null is not the null device (1:3); refusing to mask with it");
    }
    Ok(null)
}

/// The path itself, resolved in the tree; a final symlink is refused, never followed.
fn target(tree: &Tree, p: &Path) -> Result<Option<OwnedFd>> {
    let Some(t) = tree.existing_nofollow(p)? else {
        return Ok(None);
    };
    if fd::is_symlink(t.as_fd())? {
        bail!("{} is a symlink; refusing to mount over it", p.display());
    }
    Ok(Some(t))
}

pub fn mask(tree: &Tree, p: &Path, null: &OwnedFd) -> Result<()> {
    let Some(t) = target(tree, p)? else {
        return Ok(());
    };
    if fd::is_dir(t.as_fd())? {
        return mount(
            Some("tmpfs"),
            &proc_path(t.as_fd()),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .context("mounting a read-only tmpfs");
    }
    fd::bind(null.as_fd(), t.as_fd()).context("binding /dev/null")
}

pub fn readonly(tree: &Tree, p: &Path) -> Result<()> {
    let Some(t) = target(tree, p)? else {
        return Ok(());
    };
    let at = proc_path(t.as_fd());
    mount(
        Some(&at),
        &at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("bind")?;
    remount(
        mounted(tree, p)?.as_fd(),
        MsFlags::MS_RDONLY | MsFlags::MS_REC,
    )
}
