//! Mounts, propagation, pivot_root, devices, masked and read-only paths.
//!
//! Everything done to the container's tree before pivot_root goes through one handle of it
//! (`tree::Tree`: openat2 lookups, pathrs where the kernel has no openat2): resolved in-root,
//! acted on with *at calls and fds, never a path string into the image. The input is this module's own (`Setup`): it knows nothing of
//! the runtime's state or of cgroups beyond the mounts it is told to make.
mod console;
mod devices;
mod fd;
mod inroot;
mod mounts;
mod options;
mod paths;
mod pivot;
mod setattr;
mod tree;

pub use console::{bind_console, open_pty, Pty};
pub use tree::Tree;

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, Mount};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

/// One cgroup hierarchy to show under the container's cgroup mount.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupMount {
    /// Name under the cgroup mount, e.g. "cpu,cpuacct", "memory", "unified"; empty on a pure v2
    /// host, where the one hierarchy is mounted at the destination itself.
    pub name: String,
    /// Filesystem type to mount with a cgroup namespace: "cgroup" or "cgroup2".
    pub fstype: String,
    /// Mount data for that type, e.g. "cpu,cpuacct" (v1) or "" (v2).
    pub data: String,
    /// The container's own cgroup directory on the host (bind source without a cgroup namespace).
    pub host_dir: std::path::PathBuf,
    /// Symlinks next to `name`, each pointing at it: a co-mounted hierarchy like "cpu,cpuacct"
    /// is also reachable as "cpu" and "cpuacct".
    pub symlinks: Vec<String>,
}

/// What the container's tree is made of.
pub struct Setup<'a> {
    pub rootfs: &'a Path,
    /// Relative bind sources are relative to it.
    pub bundle: &'a Path,
    pub mounts: &'a [Mount],
    /// mounts[] sources opened by the runtime before init entered a user namespace, by index
    /// (empty, or one entry per mount).
    pub sources: &'a [Option<std::os::fd::BorrowedFd<'a>>],
    pub devices: &'a [LinuxDevice],
    /// linux.rootfsPropagation.
    pub propagation: Option<&'a str>,
    /// In a user namespace (the container's own, or the one rt runs in) mknod is refused:
    /// device nodes are bound from the host.
    pub bind_devices: bool,
    pub cgroup_ns: bool,
    pub cgroups: &'a [CgroupMount],
    pub masked_paths: &'a [String],
    pub readonly_paths: &'a [String],
    pub readonly_root: bool,
    /// process.cwd, made when missing.
    pub cwd: &'a Path,
    /// False: the container shares the host's mount namespace. Nothing is mounted then (the
    /// config was checked to ask for no mount), and the rootfs is entered with chroot.
    pub mount_ns: bool,
}

/// Whether mounts[] entry `m` is a bind mount (by type or by option).
pub fn is_bind_mount(m: &Mount) -> bool {
    let typ = m.typ().as_deref().unwrap_or("");
    if typ == "cgroup" || typ == "cgroup2" {
        return false;
    }
    typ == "bind"
        || options::parse(m.options().as_deref().unwrap_or_default()).is_ok_and(|o| o.is_bind())
}

/// A bind source opened O_PATH as the container's mount namespace resolves it, `root` being
/// that namespace's `/` (`/proc/<init>/root`): by the runtime, which may reach what init in its
/// user namespace may not. In-root, so an absolute symlink on the way stays in that namespace.
pub fn open_source_in(
    root: std::os::fd::BorrowedFd<'_>,
    path: &Path,
) -> std::io::Result<std::os::fd::OwnedFd> {
    inroot::open(root, path, libc::O_PATH)
}

fn root_propagation(p: Option<&str>) -> Result<Option<MsFlags>> {
    match p {
        None | Some("") => Ok(None),
        Some(p) => options::propagation(p)
            .map(Some)
            .with_context(|| format!("linux.rootfsPropagation: unknown value {p:?}")),
    }
}

/// `/proc` and `/sys` of the image are where procfs and sysfs go: they must be directories of
/// the image itself, not symlinks that would carry those mounts elsewhere.
fn check_special_dirs(tree: &Tree) -> Result<()> {
    for dir in ["/proc", "/sys"] {
        if let Some(t) = tree.existing_nofollow(Path::new(dir))? {
            if !fd::is_dir(t.as_fd())? {
                // runc's words, which its users' scripts match
                bail!("rootfs {dir}: filesystem must be mounted on ordinary directory, not a symlink or file");
            }
        }
    }
    Ok(())
}

/// Before pivot_root: cut propagation to the host, bind the rootfs, mount, make /dev, make the
/// cwd. Returns the tree for the rest of the set-up.
pub fn prepare(s: &Setup) -> Result<Tree> {
    fd::check_proc()?;
    if !s.mount_ns {
        // The host's mount table: no propagation change, no bind, no mount. Device nodes and the
        // cwd are files made in-root, as any other runtime makes them in the rootfs.
        let tree = Tree::open(s.rootfs)?;
        devices::create(&tree, s.devices, false).context("creating devices")?;
        tree.dir(s.cwd)
            .with_context(|| format!("process.cwd {}", s.cwd.display()))?;
        return Ok(tree);
    }
    let propagation = root_propagation(s.propagation)?;
    // Nothing we mount may show up on the host: everything is a slave (or what the config says).
    // Unbindable waits for the new `/` (`finalize`); until then it is private, which it implies:
    // put on the host's tree first (as runc does) it makes every bind from the host EINVAL,
    // rt's masks with the host's /dev/null included, and 1.1.5 even the rootfs bind below.
    let flags = match propagation {
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) if p.contains(MsFlags::MS_UNBINDABLE) => {
            (p - MsFlags::MS_UNBINDABLE) | MsFlags::MS_PRIVATE
        }
        Some(p) => p,
    };
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .context("setting propagation of /")?;
    // runc's order: the mount holding the rootfs becomes private (slave when the config asks for
    // a slave), whatever `/` was just made: pivot_root refuses a new root whose parent mount is
    // shared, and a bind of a shared tree would show on the host. `shared` is put on the new `/`
    // after pivot_root.
    let keep_slave = propagation.is_some_and(|p| p.contains(MsFlags::MS_SLAVE));
    pivot::make_rootfs_mount_private(s.rootfs, keep_slave)?;
    mount(
        Some(s.rootfs),
        s.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind mounting rootfs {}", s.rootfs.display()))?;
    // Opened after the bind: the tree is the new mount, so what is mounted in it goes with it.
    let tree = Tree::open(s.rootfs)?;
    check_special_dirs(&tree)?;
    let ctx = mounts::MountCtx {
        tree: &tree,
        sources: s.sources,
        bundle: s.bundle,
        cgroup_ns: s.cgroup_ns,
        cgroups: s.cgroups,
    };
    for (i, m) in s.mounts.iter().enumerate() {
        mounts::mount_entry(&ctx, m, i)
            .with_context(|| format!("mount {}", m.destination().display()))?;
    }
    // runc's rule: unless /dev is bound from somewhere, rt fills it.
    let dev_is_bind = s.mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o == "bind" || o == "rbind"))
    });
    if !dev_is_bind {
        devices::create(&tree, s.devices, s.bind_devices).context("creating devices")?;
    }
    tree.dir(s.cwd)
        .with_context(|| format!("process.cwd {}", s.cwd.display()))?;
    Ok(tree)
}

/// Still before pivot_root: masked and read-only paths, then the read-only root (last:
/// everything before may still have had to create mount points).
pub fn protect(tree: &Tree, s: &Setup) -> Result<()> {
    if !s.mount_ns {
        return Ok(());
    }
    for p in s.readonly_paths {
        paths::readonly(tree, Path::new(p)).with_context(|| format!("linux.readonlyPaths {p}"))?;
    }
    if !s.masked_paths.is_empty() {
        let null = paths::null_device()?;
        for p in s.masked_paths {
            paths::mask(tree, Path::new(p), &null)
                .with_context(|| format!("linux.maskedPaths {p}"))?;
        }
    }
    if s.mounts.iter().any(mounts::is_readonly_dev) {
        let dev = mounts::mounted(tree, Path::new("/dev"))?;
        mounts::remount(dev.as_fd(), MsFlags::MS_RDONLY).context("making /dev read-only")?;
    }
    if s.readonly_root {
        mounts::remount(tree.fd(), MsFlags::MS_RDONLY).context("making root read-only")?;
    }
    Ok(())
}

/// Makes the tree the process's `/`.
pub fn enter(tree: Tree, rootfs: &Path, no_pivot: bool, mount_ns: bool) -> Result<()> {
    if !mount_ns {
        // pivot_root and the move would change the host's mount table; chroot only changes
        // this process's root
        pivot::chroot_into(tree.fd())
    } else if no_pivot {
        pivot::move_root(rootfs)
    } else {
        pivot::pivot_root(tree.fd())
    }
}

/// After pivot_root: the propagation the config asks for on the new `/` (for private and slave
/// already so from `prepare`; shared and unbindable happen only here).
pub fn finalize(s: &Setup) -> Result<()> {
    if !s.mount_ns {
        return Ok(());
    }
    if let Some(p) = root_propagation(s.propagation)? {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
            .context("unable to apply root propagation flags (linux.rootfsPropagation)")?;
    }
    Ok(())
}

/// Where `dest` lands inside `rootfs` once the image's symlinks on the way are followed
/// in-root, as a path from the container's `/`; None when it does not resolve (missing).
/// criu names mounts by where they really are.
pub fn resolve_in_root(rootfs: &Path, dest: &Path) -> Option<std::path::PathBuf> {
    let root = std::fs::File::open(rootfs).ok()?;
    let fd = inroot::open(root.as_fd(), dest, libc::O_PATH).ok()?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let rel = real.strip_prefix(rootfs).ok()?;
    Some(Path::new("/").join(rel))
}

/// The mount points of `mounts` made in `rootfs` where missing, for a restore: criu mounts
/// onto them but does not make them, and a restored container's rootfs may be a fresh one.
/// Not those on a tmpfs of the list (criu brings back the tmpfs with its content), nor on
/// proc or sysfs, nor cgroup mounts (the cgroup mount point comes with sysfs).
pub fn make_mountpoints(rootfs: &Path, mounts: &[Mount]) -> Result<()> {
    let tree = Tree::open(rootfs)?;
    let tmpfs: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().as_path())
        .collect();
    for m in mounts {
        let dest = m.destination();
        let under = |p: &Path| dest != p && dest.starts_with(p);
        let typ = m.typ().as_deref().unwrap_or("");
        if tmpfs.iter().any(|t| under(t))
            || under(Path::new("/proc"))
            || under(Path::new("/sys"))
            || typ == "cgroup"
            || typ == "cgroup2"
        {
            continue;
        }
        let file_source = is_bind_mount(m)
            && m.source()
                .as_deref()
                .is_some_and(|s| std::fs::metadata(s).is_ok_and(|md| !md.is_dir()));
        if file_source {
            tree.file(dest)?;
        } else {
            tree.dir(dest)?;
        }
    }
    Ok(())
}
