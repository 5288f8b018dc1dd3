//! The container's pty, from its own devpts, checked before use (CVE-2025-52565): the master is
//! `/dev/pts/ptmx` resolved in the tree and verified to be devpts's ptmx, the slave comes from
//! TIOCGPTPEER on it (never opened by name), and /dev/console is bound from that fd.
use super::fd::{self, DEVPTS_SUPER_MAGIC};
use super::tree::Inode;
use super::tree::Tree;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// devpts gives its ptmx inode number 2.
const PTMX_INO: u64 = 2;

pub struct Pty {
    pub master: OwnedFd,
    pub slave: File,
    /// `/dev/pts/N`, as the container names the slave.
    pub name: String,
}

nix::ioctl_write_ptr_bad!(set_ptlock, libc::TIOCSPTLCK, libc::c_int);
nix::ioctl_read_bad!(get_ptn, libc::TIOCGPTN, libc::c_uint);

/// A new pty of the devpts mounted at `/dev/pts` in `tree` (the container's tree before
/// pivot_root, or a running container's `/` for exec).
pub fn open_pty(tree: &Tree) -> Result<Pty> {
    let master: OwnedFd = tree
        .open_file(Path::new("/dev/pts/ptmx"), libc::O_RDWR | libc::O_NOCTTY)?
        .into();
    let st = fd::fstat(master.as_fd())?;
    if fd::fstatfs_type(master.as_fd())? != DEVPTS_SUPER_MAGIC
        || st.st_ino != PTMX_INO
        || st.st_mode & libc::S_IFMT != libc::S_IFCHR
        || st.st_rdev != nix::sys::stat::makedev(5, 2)
    {
        bail!("/dev/pts/ptmx is not the ptmx of a devpts filesystem; refusing to use it");
    }
    let unlock: libc::c_int = 0;
    // SAFETY: ioctl on our own pty master with a pointer to a live int.
    unsafe { set_ptlock(master.as_raw_fd(), &unlock) }.context("unlocking the pty")?;
    let mut n: libc::c_uint = 0;
    // SAFETY: ioctl on our own pty master writing into a live uint.
    unsafe { get_ptn(master.as_raw_fd(), &mut n) }.context("reading the pty number")?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd of the slave, or -1.
    let raw = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("opening the pty slave (TIOCGPTPEER)");
    }
    // SAFETY: a fresh fd from the kernel, owned by nobody else.
    let slave = unsafe { File::from_raw_fd(raw) };
    Ok(Pty {
        master,
        slave,
        name: format!("/dev/pts/{n}"),
    })
}

/// Binds the pty slave on /dev/console. An image's /dev/console that is a symlink is removed
/// (the link, not what it points at) and a plain file made in its place to mount on.
pub fn bind_console(tree: &Tree, slave: &File) -> Result<()> {
    let path = Path::new("/dev/console");
    let is_link = match tree.existing_nofollow(path)? {
        Some(t) => fd::is_symlink(t.as_fd())?,
        None => true,
    };
    if is_link {
        tree.replace(path, &Inode::File(0o600))?;
    }
    let target = tree
        .existing_nofollow(path)?
        .context("/dev/console vanished")?;
    fd::bind(slave.as_fd(), target.as_fd()).context("binding the pty onto /dev/console")
}
