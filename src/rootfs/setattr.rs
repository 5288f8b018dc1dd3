//! mount_setattr(2): recursive read-only (`rro`) where the kernel has it.
use anyhow::{Context, Result};
use std::os::fd::{AsRawFd, BorrowedFd};

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// Every mount from the one `top` is on down becomes read-only.
pub fn recursive_readonly(top: BorrowedFd<'_>) -> Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a live fd, an empty NUL-terminated path and attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            top.as_raw_fd(),
            c"".as_ptr(),
            AT_RECURSIVE | libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("mount_setattr MOUNT_ATTR_RDONLY");
    }
    Ok(())
}
