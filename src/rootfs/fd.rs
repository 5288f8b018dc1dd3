//! Opening mount targets through fds: a path is resolved once, inside the rootfs, and the mount
//! lands on the opened inode via /proc/self/fd, so a symlink swapped in later changes nothing.
use anyhow::{Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// O_PATH fd of `rel` resolved with `root` as "/" (openat2 RESOLVE_IN_ROOT); on kernels without
/// openat2 the already resolved path is opened with O_NOFOLLOW instead.
pub fn open_in_root(root: &Path, rel: &Path) -> Result<OwnedFd> {
    let rootfd =
        std::fs::File::open(root).with_context(|| format!("opening {}", root.display()))?;
    let rel_c = CString::new(rel.strip_prefix("/").unwrap_or(rel).as_os_str().as_bytes())?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: valid fd, NUL-terminated path and open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            rootfd.as_raw_fd(),
            rel_c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        // SAFETY: a fresh fd from the kernel.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err)
            .with_context(|| format!("opening {} inside {}", rel.display(), root.display()));
    }
    let full = super::path::secure_join(root, rel)?;
    open_nofollow(&full)
}

/// O_PATH|O_NOFOLLOW: a symlink is opened as itself, never followed.
pub fn open_nofollow(path: &Path) -> Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(OwnedFd::from(f))
}

pub fn proc_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

pub fn fstat(fd: &OwnedFd) -> Result<nix::sys::stat::FileStat> {
    nix::sys::stat::fstat(fd).context("fstat")
}

use std::os::unix::fs::OpenOptionsExt;
