//! /dev in the container: the default nodes, linux.devices, and the standard symlinks.
use super::path::secure_join;
use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chown, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

struct Dev<'a> {
    path: &'a Path,
    kind: SFlag,
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

/// `bind_from_host`: in a user namespace mknod is refused, so nodes are bound from the host.
pub fn create(rootfs: &Path, devices: &[LinuxDevice], bind_from_host: bool) -> Result<()> {
    for (path, major, minor) in DEFAULTS {
        // A config entry for the same path wins over the default.
        if devices.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        let dev = Dev {
            path: Path::new(path),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        make(rootfs, &dev, bind_from_host)?;
    }
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => bail!(
                "linux.devices: {}: type \"a\" is not a device node",
                d.path().display()
            ),
        };
        let dev = Dev {
            path: d.path(),
            kind,
            major: d.major(),
            minor: d.minor(),
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        make(rootfs, &dev, bind_from_host && kind != SFlag::S_IFIFO)?;
    }
    links(rootfs)
}

fn make(rootfs: &Path, d: &Dev, bind_from_host: bool) -> Result<()> {
    if !d.path.starts_with("/dev") {
        bail!("linux.devices: {} is not under /dev", d.path.display());
    }
    let dest = secure_join(rootfs, d.path)?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let _ = std::fs::remove_file(&dest);
    if bind_from_host {
        std::fs::File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
        return mount(
            Some(d.path),
            &dest,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("binding host device {}", d.path.display()));
    }
    let dev = makedev(d.major as u64, d.minor as u64);
    mknod(&dest, d.kind, Mode::from_bits_truncate(d.mode), dev)
        .with_context(|| format!("mknod {}", d.path.display()))?;
    // mknod's mode is filtered by umask; set it exactly.
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(d.mode))?;
    chown(
        &dest,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
    )
    .with_context(|| format!("chown {}", d.path.display()))
}

fn links(rootfs: &Path) -> Result<()> {
    let dev = rootfs.join("dev");
    let mut list = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        list.push(("/proc/kcore", "core"));
    }
    for (target, name) in list {
        match symlink(target, dev.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("linking /dev/{name}")),
        }
    }
    // /dev/ptmx must be the container's own devpts instance, not the host's.
    let ptmx = dev.join("ptmx");
    let _ = std::fs::remove_file(&ptmx);
    symlink("pts/ptmx", &ptmx).context("linking /dev/ptmx")
}
