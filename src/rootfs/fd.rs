//! Mounting through fds: a target is resolved once, in the tree, and mount(2) is pointed at the
//! opened inode through its /proc/thread-self/fd magic link, so nothing is looked up again by
//! name. These links are read through the /proc of rt's own mount namespace before pivot_root,
//! which no mount of the container's reaches; `check_proc` makes sure it is a real procfs.
use anyhow::{bail, Context, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
pub const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

/// Refuses to go on unless our /proc is the root of a procfs: the magic links below rely on it.
pub fn check_proc() -> Result<()> {
    let proc = open_nofollow(Path::new("/proc"))?;
    let root_ino = fstat(proc.as_fd())?.st_ino;
    if fstatfs_type(proc.as_fd())? != PROC_SUPER_MAGIC || root_ino != 1 {
        bail!("/proc of the runtime's mount namespace is not a procfs root");
    }
    Ok(())
}

pub fn proc_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/thread-self/fd/{}", fd.as_raw_fd()))
}

/// A bind mount of the inode `src` is onto the inode `target` is, both by fd.
pub fn bind(src: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
    nix::mount::mount(
        Some(&proc_path(src)),
        &proc_path(target),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
}

/// What an fd is, as our mount namespace names it.
pub fn path_of(fd: BorrowedFd<'_>) -> Result<PathBuf> {
    std::fs::read_link(proc_path(fd)).context("reading the path of a resolved fd")
}

/// O_PATH of a path of the host's, never one into the image, with `flags` added.
fn open_host(path: &Path, flags: i32) -> Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC | flags)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(OwnedFd::from(f))
}

/// A host path opened as itself: a symlink is never followed.
pub fn open_nofollow(path: &Path) -> Result<OwnedFd> {
    open_host(path, libc::O_NOFOLLOW)
}

/// A host path as a bind source names it: symlinks followed, as mount(2) would follow them.
pub fn open_path(path: &Path) -> Result<OwnedFd> {
    open_host(path, 0)
}

/// A host directory (the rootfs path of the bundle, not a path into the image).
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    open_host(path, libc::O_DIRECTORY)
}

pub fn fstat(fd: BorrowedFd<'_>) -> Result<nix::sys::stat::FileStat> {
    nix::sys::stat::fstat(fd).context("fstat")
}

pub fn is_dir(fd: BorrowedFd<'_>) -> Result<bool> {
    Ok(fstat(fd)?.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

pub fn is_symlink(fd: BorrowedFd<'_>) -> Result<bool> {
    Ok(fstat(fd)?.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// The filesystem magic of what `fd` is on.
pub fn fstatfs_type(fd: BorrowedFd<'_>) -> Result<i64> {
    let st = nix::sys::statfs::fstatfs(fd).context("fstatfs")?;
    Ok(st.filesystem_type().0 as i64)
}

/// Owner of the inode itself (a symlink is never followed: the fd is O_PATH of the inode).
pub fn chown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<()> {
    nix::unistd::fchownat(
        fd,
        "",
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_EMPTY_PATH | nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context("fchownat")
}
