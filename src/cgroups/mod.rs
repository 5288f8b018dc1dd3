//! One cgroup manager over v1, v2 and hybrid hosts.
//!
//! STUB: the real implementation lands from the cgroups work; this file fixes the API that
//! libcontainer and rootfs call.
#![allow(dead_code)]
use anyhow::Result;
use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxResources;
use std::path::PathBuf;

/// How the host mounts its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    V1,
    Hybrid,
    V2,
}

/// One mount the container should see under /sys/fs/cgroup.
#[derive(Debug, Clone)]
pub struct ContainerMount {
    /// Name under /sys/fs/cgroup, e.g. "cpu,cpuacct", "memory", "unified" (or "" for v2 at the top).
    pub name: String,
    /// Filesystem type to mount with a cgroup namespace: "cgroup" or "cgroup2".
    pub fstype: String,
    /// Mount data for that type, e.g. "cpu,cpuacct" (v1) or "" (v2).
    pub data: String,
    /// The container's own cgroup directory on the host (bind source without a cgroup namespace).
    pub host_dir: PathBuf,
}

pub struct CgroupManager {
    path: String,
}

impl CgroupManager {
    /// `cgroups_path` is `linux.cgroupsPath` (absolute or relative); None means "/rt/<id>".
    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<Self> {
        Ok(Self { path: cgroups_path.map(str::to_string).unwrap_or_else(|| format!("/rt/{id}")) })
    }
    /// The cgroup path as stored in state.json (the same input gives the same manager).
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn mode() -> Mode {
        Mode::Hybrid
    }
    pub fn create(&self) -> Result<()> {
        Ok(())
    }
    pub fn apply(&self, _resources: &LinuxResources) -> Result<()> {
        Ok(())
    }
    pub fn add_pid(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(vec![])
    }
    pub fn kill_all(&self, _sig: Signal) -> Result<()> {
        Ok(())
    }
    pub fn freeze(&self) -> Result<()> {
        Ok(())
    }
    pub fn thaw(&self) -> Result<()> {
        Ok(())
    }
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(false)
    }
    /// Removes every directory of this cgroup; missing ones are fine; retries while busy.
    pub fn remove(&self) -> Result<()> {
        Ok(())
    }
    /// What to mount under the container's /sys/fs/cgroup.
    pub fn container_mounts(&self) -> Result<Vec<ContainerMount>> {
        Ok(vec![])
    }
}
