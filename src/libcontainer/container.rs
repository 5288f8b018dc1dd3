//! A container on disk: its state directory, its lock, and its live status.
use super::procfs;
use super::state::{State, Status, EXEC_FIFO};
use crate::cgroups::CgroupManager;
use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The error callers branch on: runc's phrase, which shims match.
#[derive(Debug)]
pub struct NotExist(pub String);

impl std::fmt::Display for NotExist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container \"{}\" does not exist", self.0)
    }
}
impl std::error::Error for NotExist {}

/// A container made rootless without permission for a cgroup: there is none to act on. runc's
/// words (its callers see them from pause and resume).
#[derive(Debug)]
pub struct NoCgroup;

impl std::fmt::Display for NoCgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cgroups not configured for container")
    }
}
impl std::error::Error for NoCgroup {}

pub struct Container {
    pub dir: PathBuf,
    pub state: State,
    /// Held for the life of this value, so two commands on one id never interleave.
    _lock: Option<Flock<File>>,
}

impl Container {
    /// Loads and locks a container; waits while another rt command holds it.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        super::config::validate_id(id)?;
        let dir = root.join(id);
        let lock = lock_dir(&dir).map_err(|_| NotExist(id.to_string()))?;
        // The directory may have been deleted while we waited for the lock.
        let state = read_state(&dir, id)?;
        Ok(Container {
            dir,
            state,
            _lock: Some(lock),
        })
    }

    /// Loads without locking: for readers (`state`, `list`) that must not wait on a create.
    pub fn load_unlocked(root: &Path, id: &str) -> Result<Container> {
        super::config::validate_id(id)?;
        let dir = root.join(id);
        let state = read_state(&dir, id)?;
        Ok(Container {
            dir,
            state,
            _lock: None,
        })
    }

    pub fn new_locked(dir: PathBuf, state: State, lock: Flock<File>) -> Container {
        Container {
            dir,
            state,
            _lock: Some(lock),
        }
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn is_alive(&self) -> bool {
        procfs::is_alive(self.state.pid, self.state.init_start_time)
    }

    pub fn cgroup(&self) -> Result<CgroupManager> {
        if self.state.no_cgroup {
            return Err(NoCgroup.into());
        }
        match &self.state.cgroup_dirs {
            Some(d) => CgroupManager::with_dirs(
                &self.state.cgroup_path,
                d.clone(),
                self.state.cgroup_driver,
            ),
            None => CgroupManager::new(Some(&self.state.cgroup_path), &self.state.id),
        }
    }

    /// Every process of the container: its cgroup's, or, without a cgroup, those in its own pid
    /// namespace (only the init when it shares another's).
    pub fn pids(&self) -> Result<Vec<i32>> {
        if !self.state.no_cgroup {
            return self.cgroup()?.pids();
        }
        if !self.is_alive() {
            return Ok(Vec::new());
        }
        let own_pidns = super::namespaces::is_new(
            &self.state.config,
            oci_spec::runtime::LinuxNamespaceType::Pid,
        );
        if !own_pidns {
            return Ok(vec![self.state.pid]);
        }
        Ok(procfs::in_pid_namespace_of(self.state.pid))
    }

    /// The status now, not the one last written: the init may have exited since.
    pub fn status(&self) -> Status {
        if !self.is_alive() {
            return Status::Stopped;
        }
        if self.state.status == Status::Creating {
            return Status::Creating;
        }
        if self.dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup().and_then(|c| c.is_frozen()).unwrap_or(false) {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn save(&self) -> Result<()> {
        self.state.write(&self.dir)
    }
}

/// state.json, with a missing one reported as runc's "does not exist".
fn read_state(dir: &Path, id: &str) -> Result<State> {
    State::read(dir).map_err(|e| match e.root_cause().downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() == std::io::ErrorKind::NotFound => {
            anyhow::Error::new(NotExist(id.to_string()))
        }
        _ => e,
    })
}

/// flock on the state directory itself: no extra file to clean up, and it dies with the dir.
pub fn lock_dir(dir: &Path) -> Result<Flock<File>> {
    let f = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", dir.display()))
}
