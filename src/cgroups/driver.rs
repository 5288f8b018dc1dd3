//! The seam between the cgroup manager and whoever makes the container's cgroup.
//!
//! The manager does the file work (limits, pids, freezer, kill, stats) on the directories;
//! a driver decides how they come to exist and go away: rt makes them itself (cgroupfs), or
//! systemd makes a transient unit for them (systemd/), which callers on systemd hosts ask
//! for with `--systemd-cgroup`.
use anyhow::Result;
use oci_spec::runtime::LinuxResources;

pub trait Driver: Send + Sync {
    /// As recorded with the container.
    fn kind(&self) -> DriverKind;
    /// Whether rt makes the directories itself, before init exists (so init can be born in
    /// its cgroup2 directory). Otherwise they appear at `attach`.
    fn makes_dirs(&self) -> bool;
    /// Init (`pid`) exists and waits: after this it is in the container's cgroup as far as
    /// the driver goes. `r` are the limits the driver should know of from the start.
    fn attach(&self, pid: i32, r: Option<&LinuxResources>) -> Result<()>;
    /// New limits, told to the driver before they are written to the files.
    fn update(&self, r: &LinuxResources) -> Result<()>;
    /// Before the directories are removed.
    fn destroy(&self) -> Result<()>;
}

/// Which driver a container's cgroup has, as kept in its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    #[default]
    Cgroupfs,
    Systemd,
    /// A unit of the user's own systemd (a rootless caller's `--systemd-cgroup`).
    #[serde(rename = "systemd-user")]
    SystemdUser,
}

/// rt makes and removes the directories itself; nothing else is told.
pub struct Cgroupfs;

impl Driver for Cgroupfs {
    fn kind(&self) -> DriverKind {
        DriverKind::Cgroupfs
    }

    fn makes_dirs(&self) -> bool {
        true
    }

    fn attach(&self, _pid: i32, _r: Option<&LinuxResources>) -> Result<()> {
        Ok(())
    }

    fn update(&self, _r: &LinuxResources) -> Result<()> {
        Ok(())
    }

    fn destroy(&self) -> Result<()> {
        Ok(())
    }
}
