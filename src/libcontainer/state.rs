//! state.json: what rt remembers about a container, written atomically and read without locks.
use anyhow::{Context, Result};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// The persisted record. The public fields follow the OCI state; the rest is rt's own.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    /// The last status rt wrote; the live status is computed by `Container::status`.
    pub status: Status,
    pub pid: i32,
    /// Start time of the init process (clock ticks since boot), so a reused pid is not taken for it.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    /// Sorted, so `state` and `list` print them in the same order every time (as Go does).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub cgroup_path: String,
    /// Where cgroup_path resolved at create (absent in states written before rt kept it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_dirs: Option<crate::cgroups::Dirs>,
    /// Who made the cgroup: later commands use the same driver whatever flags they get
    /// (conmon leaves --systemd-cgroup off for exec).
    #[serde(default)]
    pub cgroup_driver: crate::cgroups::DriverKind,
    /// Made rootless without permission for a cgroup: the container runs in the cgroup of the
    /// runtime that created it and has none to freeze, limit or remove.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_cgroup: bool,
    /// The config the container was created with: hooks, resources and namespaces are read from
    /// here later, never from a bundle that may have changed since.
    pub config: Spec,
}

/// What `rt state` and `list --format json` print: the OCI state plus the fields runc adds, in
/// runc's order (its containerState struct).
#[derive(Serialize, Debug)]
pub struct PublicState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
    pub owner: &'a str,
}

impl State {
    pub fn public(&self, status: Status) -> PublicState<'_> {
        PublicState {
            oci_version: &self.oci_version,
            id: &self.id,
            // runc reports no pid for a stopped container: the number may belong to someone else now.
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: "",
        }
    }

    pub fn read(dir: &Path) -> Result<State> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Write to a temp file and rename over, so a reader never sees half a state.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(self).context("encoding state")?;
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&data)
            .with_context(|| format!("writing {}", tmp.display()))?;
        drop(f);
        std::fs::rename(&tmp, dir.join(STATE_FILE))
            .with_context(|| format!("renaming {}", tmp.display()))
    }
}

/// Writes a file atomically (temp + rename) in the destination's directory: used for --pid-file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
