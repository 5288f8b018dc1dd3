//! Mounts, propagation, pivot_root, devices, masked and read-only paths.
mod devices;
mod fd;
mod mounts;
mod options;
mod path;
mod pivot;
mod setattr;

use crate::cgroups::CgroupManager;
use crate::libcontainer::namespaces::is_new;
use crate::libcontainer::sync::InitConfig;
use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::Path;

fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => Ok(None),
        Some(p) => options::propagation(p)
            .map(Some)
            .with_context(|| format!("linux.rootfsPropagation: unknown value {p:?}")),
    }
}

/// Before pivot_root: cut propagation to the host, bind the rootfs, mount, make /dev.
pub fn prepare(cfg: &InitConfig) -> Result<()> {
    let spec = &cfg.spec;
    let propagation = root_propagation(spec)?;
    // Nothing we mount may show up on the host: everything is a slave (or what the config says).
    let flags = propagation.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .context("setting propagation of /")?;
    if propagation.is_some_and(|p| p.contains(MsFlags::MS_SHARED)) {
        // pivot_root refuses a new root whose parent mount is shared.
        pivot::make_parent_mount_private(&cfg.rootfs)?;
    }
    let rootfs = &cfg.rootfs;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind mounting rootfs {}", rootfs.display()))?;

    let cgroup = CgroupManager::new(Some(&cfg.cgroup_path), &cfg.id)?;
    let ctx = mounts::MountCtx {
        rootfs,
        bundle: &cfg.bundle,
        cgroup_ns: crate::libcontainer::namespaces::has(spec, LinuxNamespaceType::Cgroup),
        cgroup: &cgroup,
    };
    let list = spec.mounts().as_deref().unwrap_or_default();
    for m in list {
        mounts::mount_entry(&ctx, m)
            .with_context(|| format!("mount {}", m.destination().display()))?;
    }
    // runc's rule: unless /dev is bound from somewhere, rt fills it.
    let dev_is_bind = list.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o == "bind" || o == "rbind"))
    });
    if !dev_is_bind {
        let devs = spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default();
        devices::create(rootfs, devs, is_new(spec, LinuxNamespaceType::User))
            .context("creating devices")?;
    }
    Ok(())
}

/// Makes the rootfs the process's `/`.
pub fn enter(cfg: &InitConfig) -> Result<()> {
    if cfg.no_pivot {
        pivot::move_root(&cfg.rootfs)
    } else {
        pivot::pivot_root(&cfg.rootfs)
    }
}

/// After pivot_root: read-only root, masked and read-only paths, final propagation.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(p) = root_propagation(spec)? {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
            .context("setting linux.rootfsPropagation")?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mounts::remount(Path::new("/"), MsFlags::MS_RDONLY).context("making root read-only")?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
    {
        readonly_path(Path::new(p)).with_context(|| format!("linux.readonlyPaths {p}"))?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default()
    {
        mask_path(Path::new(p)).with_context(|| format!("linux.maskedPaths {p}"))?;
    }
    Ok(())
}

fn readonly_path(p: &Path) -> Result<()> {
    let Some(target) = open_target(p)? else {
        return Ok(());
    };
    let t = fd::proc_path(&target);
    mount(
        Some(&t),
        &t,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("bind")?;
    mounts::remount(p, MsFlags::MS_RDONLY | MsFlags::MS_REC)
}

/// Opens a path to mount over without following a final symlink: a path the container's image
/// turned into a symlink is refused, never followed (the CVE-2025-31133 family).
fn open_target(p: &Path) -> Result<Option<std::os::fd::OwnedFd>> {
    match std::fs::symlink_metadata(p) {
        Err(_) => return Ok(None),
        Ok(m) if m.file_type().is_symlink() => {
            bail!("{} is a symlink; refusing to mount over it", p.display())
        }
        Ok(_) => {}
    }
    let target = fd::open_nofollow(p)?;
    if fd::fstat(&target)?.st_mode & libc::S_IFMT == libc::S_IFLNK {
        bail!("{} is a symlink; refusing to mount over it", p.display());
    }
    Ok(Some(target))
}

fn mask_path(p: &Path) -> Result<()> {
    let Some(target) = open_target(p)? else {
        return Ok(());
    };
    let is_dir = fd::fstat(&target)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let t = fd::proc_path(&target);
    if is_dir {
        return mount(
            Some("tmpfs"),
            &t,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .context("mounting a read-only tmpfs");
    }
    // The mask must really be the null device, not whatever the image put at /dev/null.
    let null = fd::open_nofollow(Path::new("/dev/null"))?;
    let st = fd::fstat(&null)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        bail!("/dev/null in the container is not the null device (1:3); refusing to mask with it");
    }
    mount(
        Some(&fd::proc_path(&null)),
        &t,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .context("binding /dev/null")
}

/// /dev/console is the container's pty slave (checked to be one).
pub fn bind_console(slave: &str) -> Result<()> {
    let src = fd::open_nofollow(Path::new(slave))?;
    let st = fd::fstat(&src)?;
    let major = nix::sys::stat::major(st.st_rdev);
    // Unix98 pty slaves use majors 136-143.
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || !(136..=143).contains(&major) {
        bail!("{slave} is not a pty slave");
    }
    let console = Path::new("/dev/console");
    if std::fs::symlink_metadata(console).is_err() {
        std::fs::File::create(console).context("creating /dev/console")?;
    }
    let target = open_target(console)?.context("/dev/console vanished")?;
    mount(
        Some(&fd::proc_path(&src)),
        &fd::proc_path(&target),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .context("binding the pty onto /dev/console")
}
