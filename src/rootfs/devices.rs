//! /dev in the container: the default nodes, linux.devices, and the standard symlinks, each
//! made in the tree (mknodat/symlinkat/unlinkat on the resolved parent), so an image whose /dev
//! is a symlink to a host directory gets them inside its own rootfs (CVE-2026-41579).
use super::fd::{self, proc_path};
use super::tree::{clean, Inode, Tree};
use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, umask, Mode};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

struct Dev {
    path: PathBuf,
    kind: LinuxDeviceType,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
}

const DEFAULTS: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Restores the umask on drop: nodes get exactly the mode the config gives them.
struct ZeroUmask(Mode);

impl ZeroUmask {
    fn set() -> ZeroUmask {
        ZeroUmask(umask(Mode::empty()))
    }
}

impl Drop for ZeroUmask {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// `bind_from_host`: in a user namespace mknod is refused, so nodes are bound from the host.
pub fn create(tree: &Tree, devices: &[LinuxDevice], bind_from_host: bool) -> Result<()> {
    let _umask = ZeroUmask::set();
    for (path, major, minor) in DEFAULTS {
        // A config entry for the same path wins over the default.
        if devices.iter().any(|d| clean(d.path()) == Path::new(path)) {
            continue;
        }
        let dev = Dev {
            path: PathBuf::from(path),
            kind: LinuxDeviceType::C,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        make(tree, &dev, bind_from_host)?;
    }
    for d in devices {
        if !d.path().is_absolute() {
            bail!(
                "linux.devices: {} is not an absolute path",
                d.path().display()
            );
        }
        let dev = Dev {
            path: clean(d.path()),
            kind: d.typ(),
            major: d.major(),
            minor: d.minor(),
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        make(tree, &dev, bind_from_host && dev.kind != LinuxDeviceType::P)?;
    }
    links(tree)
}

fn make(tree: &Tree, d: &Dev, bind_from_host: bool) -> Result<()> {
    let shown = d.path.display();
    if d.path == Path::new("/") {
        bail!("linux.devices: a device cannot be the container's root");
    }
    if let Some(parent) = d.path.parent() {
        tree.dir(parent)?;
    }
    if bind_from_host {
        tree.replace(&d.path, &Inode::File(0o600))?;
        let target = tree
            .existing_nofollow(&d.path)?
            .with_context(|| format!("{shown} vanished"))?;
        mount(
            Some(&d.path),
            &proc_path(target.as_fd()),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("binding host device {shown}"))?;
        return Ok(());
    }
    let dev = makedev(d.major as u64, d.minor as u64);
    let inode = match d.kind {
        LinuxDeviceType::C | LinuxDeviceType::U => Inode::CharDevice(d.mode, dev),
        LinuxDeviceType::B => Inode::BlockDevice(d.mode, dev),
        LinuxDeviceType::P => Inode::Fifo(d.mode),
        LinuxDeviceType::A => bail!("linux.devices: {shown}: type \"a\" is not a device node"),
    };
    tree.replace(&d.path, &inode)
        .with_context(|| format!("mknod {shown}"))?;
    let node = tree
        .existing_nofollow(&d.path)?
        .with_context(|| format!("{shown} vanished"))?;
    fd::chown(node.as_fd(), d.uid, d.gid).with_context(|| format!("chown {shown}"))
}

fn links(tree: &Tree) -> Result<()> {
    let mut list = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    // The host's, before pivot_root: whether this kernel has one.
    if Path::new("/proc/kcore").exists() {
        list.push(("/proc/kcore", "/dev/core"));
    }
    for (target, path) in list {
        tree.symlink(Path::new(path), target)?;
    }
    // /dev/ptmx must be the container's own devpts instance, not the host's.
    tree.replace(Path::new("/dev/ptmx"), &Inode::Symlink("pts/ptmx"))
        .context("linking /dev/ptmx")
}
