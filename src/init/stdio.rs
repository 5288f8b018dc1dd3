//! The init's stdio, once in the container's root: a null device the caller passed (conmon
//! and containerd give /dev/null for an unused stdin) is swapped for the container's own
//! /dev/null, as runc does. The caller's sits on a mount outside the container's mount
//! namespace, which criu cannot dump ("Can't lookup mount=N for fd=0 path=/dev/null").
use crate::libcontainer::procfs;
use anyhow::{Context, Result};
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, makedev};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

fn is_null(fd: BorrowedFd) -> bool {
    fstat(fd)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == makedev(1, 3))
}

pub fn use_container_null() -> Result<()> {
    // SAFETY (each borrow): 0, 1 and 2 stay open for all of init's life.
    let stdio: Vec<i32> = (0..3)
        .filter(|&n| is_null(unsafe { BorrowedFd::borrow_raw(n) }))
        .collect();
    if stdio.is_empty() {
        return Ok(());
    }
    // The image's /dev/null, looked up in the root without symlinks leaving it or magic
    // links, and used only when it is the null device. Without one (or without openat2) the
    // caller's stays, as before.
    let Ok(root) = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return Ok(());
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let Ok(path) = openat2(root.as_fd(), "/dev/null", how) else {
        return Ok(());
    };
    if !is_null(path.as_fd()) {
        return Ok(());
    }
    let null = procfs::reopen(
        &format!("fd/{}", path.as_raw_fd()),
        pathrs::flags::OpenFlags::O_RDWR,
    )
    .context("reopening the container's /dev/null")?;
    for n in stdio {
        // SAFETY: dup2 onto a stdio number; both fds are ours.
        if unsafe { libc::dup2(null.as_raw_fd(), n) } < 0 {
            return Err(std::io::Error::last_os_error())
                .context("dup2 of the container's /dev/null onto stdio");
        }
    }
    Ok(())
}
