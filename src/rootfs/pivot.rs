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

/// chroot into the tree's own fd (entered exactly as it was resolved), for a container without a
/// mount namespace of its own.
pub fn chroot_into(new_root: BorrowedFd<'_>) -> Result<()> {
    fchdir(new_root).context("chdir to rootfs")?;
    chroot(".").context("chroot to rootfs")?;
    std::env::set_current_dir("/").context("chdir /")?;
    Ok(())
}

/// --no-pivot: the old root stays in the mount namespace under the chroot, and with it the
/// host's full procfs and sysfs mounts, which let the kernel allow a fresh `mount -t proc` in
/// the container. They are detached first (covered with a tmpfs where that is refused), as
/// runc does.
pub fn move_root(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    for mp in full_proc_and_sys_outside(&info, rootfs).iter().rev() {
        // The detach must not propagate to the host.
        match mount(
            None::<&str>,
            mp,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Err(nix::errno::Errno::ENOENT) => continue,
            r => r.with_context(|| format!("making {} a slave", mp.display()))?,
        }
        match umount2(mp, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => mount(
                Some("tmpfs"),
                mp,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .with_context(|| format!("covering {}", mp.display()))?,
            Err(e) => return Err(e).with_context(|| format!("detaching {}", mp.display())),
        }
    }
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

/// Mount points of whole (root "/") procfs and sysfs mounts that are not in the rootfs.
fn full_proc_and_sys_outside(mountinfo: &str, rootfs: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let (root, mp, fstype) = (*f.get(3)?, unescape(f.get(4)?), *f.get(sep + 1)?);
            let mp = PathBuf::from(mp);
            (root == "/" && (fstype == "proc" || fstype == "sysfs") && !mp.starts_with(rootfs))
                .then_some(mp)
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_proc_and_sys_outside_the_rootfs() {
        let info = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
23 1 0:22 / /sys rw - sysfs sysfs rw
24 23 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw
25 1 0:24 /sub /srv/part rw - proc proc rw
26 1 0:25 / /run/b/root\\040fs/proc rw - proc proc rw
27 1 0:26 / /mnt/with\\040space rw - sysfs sysfs rw
";
        let got = full_proc_and_sys_outside(info, Path::new("/run/b/root fs"));
        assert_eq!(
            got,
            [
                PathBuf::from("/proc"),
                PathBuf::from("/sys"),
                PathBuf::from("/mnt/with space")
            ]
        );
    }
}
