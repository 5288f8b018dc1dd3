//! The container's terminal: a pty from the container's own devpts (checked by rootfs), its
//! master sent to the caller.
use crate::rootfs::Tree;
use anyhow::{Context, Result};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// The pty comes from `/dev/pts` of `root` (the container's tree before pivot_root, or its `/`
/// for exec); with `console_of`, the container's first process, it is bound on that tree's
/// /dev/console too.
pub fn setup(
    console_fd: i32,
    root: &Tree,
    size: Option<oci_spec::runtime::Box>,
    console_of: Option<&Tree>,
    owner: u32,
) -> Result<()> {
    // SAFETY: the parent passed this connected socket for this use only.
    let sock = unsafe { OwnedFd::from_raw_fd(console_fd) };
    let crate::rootfs::Pty {
        master,
        slave,
        name,
    } = crate::rootfs::open_pty(root)?;
    // The pty is the process's user's, as runc makes it (the group stays devpts's tty group).
    nix::unistd::fchown(&slave, Some(nix::unistd::Uid::from_raw(owner)), None)
        .with_context(|| format!("chown {name} to uid {owner}"))?;
    if let Some(b) = size {
        let ws = libc::winsize {
            ws_row: b.height() as u16,
            ws_col: b.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: valid winsize pointer on a tty fd.
        unsafe { set_winsize(slave.as_raw_fd(), &ws) }.context("setting the console size")?;
    }
    if let Some(tree) = console_of {
        crate::rootfs::bind_console(tree, &slave)?;
    }
    crate::libcontainer::fdpass::send_fds(sock.as_fd(), name.as_bytes(), &[master.as_fd()])
        .context("sending the pty master to the console socket")?;
    drop(master);
    drop(sock);
    // init is a session leader already (`super::new_session`): the pty becomes its tty.
    // SAFETY: ioctl on our own tty fd with an integer argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error())
            .context("making the pty the controlling terminal");
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the stdio numbers; both fds are ours.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(std::io::Error::last_os_error()).context("dup2 of the pty onto stdio");
        }
    }
    Ok(())
}
