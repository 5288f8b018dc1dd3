//! One cgroup manager over v1, v2 and hybrid hosts, by plain file operations under
//! /sys/fs/cgroup (no cgroup crate: the hybrid layout and the write ordering rules are easier
//! to get right, and cheaper, by hand).
//!
//! - v1: a directory per mounted hierarchy (named ones like name=systemd too, as runc does).
//! - hybrid: the same, plus a directory in the cgroup2 tree so the container's cgroup2
//!   membership follows it; controllers only cgroup2 has (e.g. hugetlb) are used from there.
//! - v2: one directory, with controllers delegated down from the root; device rules become
//!   an eBPF program attached to it (devices_bpf.rs).
//!
//! Who makes and removes the directories is the driver's part (driver.rs): rt itself
//! (cgroupfs), or systemd as a transient unit (systemd/). Everything else — limits, pids,
//! freezing, killing, stats — is the same file work on the directories either way.
// The stats/oom readers are for `events`, which lands after this module.

mod convert;
pub mod devices;
mod devices_bpf;
mod driver;
mod fs;
mod mode;
mod path;
mod resources_v1;
mod resources_v2;
pub mod stats;
pub mod systemd;
mod v1;
mod v2;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_offline;
#[cfg(test)]
mod tests_v2tree;

pub use driver::{Cgroupfs, Driver, DriverKind};
pub use mode::Layout;
pub use path::Resolved as Dirs;

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use resources_v1::V1Dirs;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How the host mounts its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    V1,
    Hybrid,
    V2,
}

/// One mount the container should see under /sys/fs/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMount {
    /// Name under /sys/fs/cgroup, e.g. "cpu,cpuacct", "memory", "unified" (or "" for v2 at the top).
    pub name: String,
    /// Filesystem type to mount with a cgroup namespace: "cgroup" or "cgroup2".
    pub fstype: String,
    /// Mount data for that type, e.g. "cpu,cpuacct" (v1) or "" (v2).
    pub data: String,
    /// The container's own cgroup directory on the host (bind source without a cgroup namespace).
    pub host_dir: PathBuf,
    /// Symlinks the caller must create next to `name`, each pointing at `name`: a co-mounted
    /// hierarchy like "cpu,cpuacct" is also reachable as "cpu" and "cpuacct".
    pub symlinks: Vec<String>,
}

/// Where freeze/thaw act.
enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

#[derive(Clone)]
pub struct CgroupManager {
    path: String,
    layout: Cow<'static, Layout>,
    /// One per `layout.v1` entry (empty on v2).
    v1: Vec<PathBuf>,
    unified: Option<PathBuf>,
    driver: Arc<dyn Driver>,
}

impl CgroupManager {
    /// `cgroups_path` is `linux.cgroupsPath` (absolute or relative); None means "<id>", relative
    /// to our own cgroup, as runc.
    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<Self> {
        let layout = Layout::host()?;
        let inner = path::normalize(cgroups_path, id)?;
        // Only a relative path depends on where we are; skip the read otherwise.
        let own = if inner.starts_with('/') {
            None
        } else {
            Some(
                std::fs::read_to_string("/proc/self/cgroup")
                    .context("reading /proc/self/cgroup")?,
            )
        };
        Self::build(Cow::Borrowed(layout), inner, own.as_deref())
    }

    /// A manager whose cgroup is a systemd unit: `cgroups_path` is `slice:prefix:name` (None or
    /// empty: runc's default, with rt's name as the prefix). `annotations` may carry
    /// `org.systemd.property.*` values for the unit. `user`: the user's own systemd makes it
    /// (a rootless caller), in its part of the tree, as runc has it.
    pub fn systemd<'a>(
        cgroups_path: Option<&str>,
        id: &str,
        annotations: impl Iterator<Item = (&'a String, &'a String)>,
        user: bool,
    ) -> Result<Self> {
        let layout = Layout::host()?;
        let raw = cgroups_path.unwrap_or("");
        let unit = systemd::unit::parse(raw, id, user)?;
        let below = unit.cgroup_path()?;
        let driver = systemd::Systemd::new(unit, layout.mode, annotations, user)?;
        let r = path::resolve(
            layout,
            &format!("{}{below}", driver.manager_cgroup()?),
            None,
        )?;
        // Kept in state.json; the same text parses to the same unit later.
        let path = if raw.is_empty() {
            format!(":rt:{id}")
        } else {
            raw.to_string()
        };
        Ok(Self {
            path,
            layout: Cow::Borrowed(layout),
            v1: r.v1,
            unified: r.unified,
            driver: Arc::new(driver),
        })
    }

    /// The manager of a container whose directories were resolved when it was made (`dirs`),
    /// by the driver it was made with.
    pub fn with_dirs(cgroups_path: &str, dirs: Dirs, kind: DriverKind) -> Result<Self> {
        let layout = Layout::host()?;
        if dirs.v1.len() != layout.v1.len() || dirs.unified.is_some() != layout.unified.is_some() {
            bail!("the host's cgroup hierarchies changed since the container was created");
        }
        let driver: Arc<dyn Driver> = match kind {
            DriverKind::Cgroupfs => Arc::new(Cgroupfs),
            DriverKind::Systemd | DriverKind::SystemdUser => {
                let user = kind == DriverKind::SystemdUser;
                let unit = systemd::unit::parse(cgroups_path, "", user)?;
                Arc::new(systemd::Systemd::new(
                    unit,
                    layout.mode,
                    std::iter::empty(),
                    user,
                )?)
            }
        };
        Ok(Self {
            path: cgroups_path.to_string(),
            layout: Cow::Borrowed(layout),
            v1: dirs.v1,
            unified: dirs.unified,
            driver,
        })
    }

    /// Which driver made this cgroup, to be kept with the container.
    pub fn driver_kind(&self) -> DriverKind {
        self.driver.kind()
    }

    /// A manager over the cgroups the calling process itself is in: what a container sits in
    /// when it has no cgroup of its own (rootless, without permission to make one), and so what
    /// its cgroup mount shows. Nothing is created or removed through it.
    pub fn of_self() -> Result<Self> {
        let layout = Layout::host()?;
        let own =
            std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
        let r = path::own_dirs(layout, &mode::parse_proc_cgroup(&own))?;
        Ok(Self {
            path: String::new(),
            layout: Cow::Borrowed(layout),
            v1: r.v1,
            unified: r.unified,
            driver: Arc::new(Cgroupfs),
        })
    }

    /// The directories `exec --cgroup` names below this container's, which must exist: `path`
    /// (every hierarchy) or, on cgroup v1, `ctrl[,ctrl]:path` (the hierarchies holding those
    /// controllers), as runc takes them. `..` cannot climb out of the container's cgroup.
    pub fn sub_cgroup(&self, args: &[String]) -> Result<Self> {
        let mut m = self.clone();
        for a in args {
            let (ctrls, sub) = match a.split_once(':') {
                Some((c, p)) => (Some(c), p),
                None => (None, a.as_str()),
            };
            // Relative to the container's cgroup: "/" is that cgroup itself; nothing may climb.
            let mut depth = 0usize;
            for c in Path::new(sub).components() {
                match c {
                    std::path::Component::ParentDir if depth == 0 => {
                        bail!("--cgroup {a:?}: {sub} is not a sub cgroup path")
                    }
                    std::path::Component::ParentDir => depth -= 1,
                    std::path::Component::Normal(_) => depth += 1,
                    _ => {}
                }
            }
            let sub = path::clean(sub).trim_start_matches('/').to_string();
            match ctrls {
                None => {
                    for (d, base) in m.v1.iter_mut().zip(&self.v1) {
                        *d = base.join(&sub);
                    }
                    m.unified = self.unified.as_ref().map(|u| u.join(&sub));
                }
                Some(_) if self.layout.mode == Mode::V2 => {
                    bail!("--cgroup {a:?}: cgroup v2 takes a path, without controllers")
                }
                Some(list) => {
                    for c in list.split(',') {
                        let Some(i) = self.layout.v1.iter().position(|h| h.has(c)) else {
                            bail!("--cgroup {a:?}: unknown controller {c}");
                        };
                        m.v1[i] = self.v1[i].join(&sub);
                    }
                }
            }
        }
        for d in m.dirs() {
            if !d.is_dir() {
                // runc's words: its callers match them
                bail!(
                    "--cgroup: adding pid to {}: no such file or directory",
                    d.join("cgroup.procs").display()
                );
            }
        }
        Ok(m)
    }

    /// Where this manager's directories are, to be kept with the container.
    pub fn resolved(&self) -> Dirs {
        Dirs {
            v1: self.v1.clone(),
            unified: self.unified.clone(),
        }
    }

    /// Like `new` for an arbitrary host: `mountinfo` and `proc_self_cgroup` are the texts of
    /// /proc/self/mountinfo and /proc/self/cgroup.
    #[cfg(test)]
    pub fn with_host(
        mountinfo: &str,
        proc_self_cgroup: Option<&str>,
        cgroups_path: Option<&str>,
        id: &str,
    ) -> Result<Self> {
        let layout = Layout::parse(mountinfo)?;
        let inner = path::normalize(cgroups_path, id)?;
        Self::build(Cow::Owned(layout), inner, proc_self_cgroup)
    }

    fn build(layout: Cow<'static, Layout>, inner: String, own: Option<&str>) -> Result<Self> {
        let own = own.map(mode::parse_proc_cgroup);
        let r = path::resolve(&layout, &inner, own.as_deref())?;
        Ok(Self {
            path: inner,
            layout,
            v1: r.v1,
            unified: r.unified,
            driver: Arc::new(Cgroupfs),
        })
    }

    /// The cgroup path as stored in state.json (the same input gives the same manager).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The host's mode. Detection reads /proc/self/mountinfo once per process; a host with no
    /// cgroup mount at all reports V2 (every operation then fails naming what is missing).
    #[cfg(test)]
    pub fn mode() -> Mode {
        Layout::host().map(|l| l.mode).unwrap_or(Mode::V2)
    }

    /// The mode of the layout this manager was built for.
    #[cfg(test)]
    pub fn layout_mode(&self) -> Mode {
        self.layout.mode
    }

    /// This container's directory in the v1 hierarchy holding `subsystem` (v1 and hybrid).
    pub fn v1_dir(&self, subsystem: &str) -> Option<&Path> {
        self.v1_dirs().get(subsystem)
    }

    /// This container's cgroup2 directory (v2, and hybrid's unified tree).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// Every directory this manager owns, v1 hierarchies first.
    pub fn dirs(&self) -> Vec<&Path> {
        self.v1
            .iter()
            .map(PathBuf::as_path)
            .chain(self.unified.as_deref())
            .collect()
    }

    fn v1_dirs(&self) -> V1Dirs<'_> {
        V1Dirs {
            mounts: &self.layout.v1,
            dirs: &self.v1,
        }
    }

    fn unified_mount(&self) -> Result<(&Path, &Path)> {
        match (&self.layout.unified, &self.unified) {
            (Some(m), Some(d)) => Ok((&m.mountpoint, d)),
            _ => bail!("no cgroup2 filesystem is mounted"),
        }
    }

    #[cfg(test)]
    pub fn create(&self) -> Result<()> {
        self.create_unified()?;
        self.create_v1()
    }

    /// The cgroup2 directory (v2, hybrid), when the driver leaves it to rt: true when it was
    /// made, so a process can be cloned into it from then on.
    pub fn create_unified(&self) -> Result<bool> {
        if !self.driver.makes_dirs() {
            return Ok(false);
        }
        self.make_unified()?;
        Ok(self.layout.mode != Mode::V1)
    }

    fn make_unified(&self) -> Result<()> {
        match self.layout.mode {
            Mode::V2 => {
                let (base, dir) = self.unified_mount()?;
                v2::create(base, dir, v2::Enable::All)
            }
            Mode::V1 => Ok(()),
            Mode::Hybrid => {
                let (base, dir) = self.unified_mount()?;
                v2::create(base, dir, v2::Enable::Nothing)
            }
        }
    }

    /// Init exists: the driver places it (systemd starts the unit with it). Then what the
    /// driver did not make is made, and the controllers reach the directory, as runc's
    /// drivers do after systemd is done.
    pub fn attach(&self, pid: i32, r: Option<&LinuxResources>) -> Result<()> {
        self.driver.attach(pid, r)?;
        if !self.driver.makes_dirs() {
            self.make_unified()?;
        }
        Ok(())
    }

    /// New limits on a live container: the driver first (systemd keeps its unit's properties),
    /// then the files.
    pub fn update(&self, r: &LinuxResources) -> Result<()> {
        self.check(r)?;
        self.driver.update(r)?;
        self.apply(r)
    }

    /// The v1 directories (v1, hybrid).
    pub fn create_v1(&self) -> Result<()> {
        match self.layout.mode {
            Mode::V2 => Ok(()),
            Mode::V1 | Mode::Hybrid => v1::create(&self.layout.v1, &self.v1),
        }
    }

    /// Refuses what this host cannot take, before anything is made. As runc (1.1 and current):
    /// `unified` keys need a host that is cgroup v2 only; a hybrid host's cgroup2 tree holds
    /// few controllers or none, so writing them there would not limit what was asked for.
    pub fn check(&self, r: &LinuxResources) -> Result<()> {
        let unified = r.unified().as_ref().is_some_and(|u| !u.is_empty());
        if unified && self.layout.mode != Mode::V2 {
            bail!("invalid configuration: cannot use unified on cgroup v1");
        }
        Ok(())
    }

    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.check(r)?;
        if self.layout.mode == Mode::V2 {
            let (_, dir) = self.unified_mount()?;
            return resources_v2::apply(dir, r);
        }
        let d = self.v1_dirs();
        resources_v1::apply(&d, r)?;
        let huge = r.hugepage_limits().as_deref().unwrap_or(&[]);
        if !huge.is_empty() {
            self.apply_hugetlb_v1_host(huge)?;
        }
        Ok(())
    }

    /// hugetlb on a v1/hybrid host: the v1 hierarchy when mounted, otherwise a hybrid host's
    /// cgroup2 tree, where systemd leaves controllers it did not mount on v1.
    fn apply_hugetlb_v1_host(&self, huge: &[oci_spec::runtime::LinuxHugepageLimit]) -> Result<()> {
        if let Some(dir) = self.v1_dir("hugetlb") {
            for h in huge {
                convert::check_page_size(h.page_size())?;
                resources_v1::hugetlb(dir, h.page_size(), h.limit())?;
            }
            return Ok(());
        }
        let (base, dir) = self.unified_mount().map_err(|_| {
            anyhow!("cannot set hugepageLimits: no hugetlb cgroup controller is mounted")
        })?;
        v2::enable_for(base, dir, &["hugetlb"])?;
        for h in huge {
            resources_v2::hugetlb(dir, h.page_size(), h.limit())?;
        }
        Ok(())
    }

    #[cfg(test)]
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        self.add_pid_v1(pid)?;
        self.add_pid_unified(pid)
    }

    /// Moves `pid` into the cgroup2 directory, if there is one.
    pub fn add_pid_unified(&self, pid: i32) -> Result<()> {
        match &self.unified {
            Some(dir) => fs::write(dir, "cgroup.procs", &pid.to_string()),
            None => Ok(()),
        }
    }

    /// Moves `pid` into the v1 hierarchies only.
    pub fn add_pid_v1(&self, pid: i32) -> Result<()> {
        let s = pid.to_string();
        for dir in &self.v1 {
            fs::write(dir, "cgroup.procs", &s)?;
        }
        Ok(())
    }

    /// The v1 `tasks` files a single-threaded process writes "0" to, to move itself.
    ///
    /// Why not have the parent write the pid to cgroup.procs: moving another process takes the
    /// kernel's global cgroup_threadgroup_rwsem for writing, which waits out an RCU grace
    /// period when the lock has been idle: 5-6 ms on this 2-core VM, more than the rest of
    /// a create. A thread moving itself through `tasks` skips that lock. cgroup2 has no such
    /// door (cgroup.threads stays within a domain); there clone3's CLONE_INTO_CGROUP places
    /// the process at birth instead.
    pub fn v1_task_files(&self) -> Vec<PathBuf> {
        self.v1.iter().map(|d| d.join("tasks")).collect()
    }

    /// Every pid in any of this container's directories (hierarchies can disagree while a
    /// process is being moved).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut all = Vec::new();
        for dir in self.dirs() {
            if let Some(text) = fs::read_opt(dir, "cgroup.procs")? {
                all.extend(
                    fs::parse_pids(&text)
                        .with_context(|| format!("parsing {}/cgroup.procs", dir.display()))?,
                );
            }
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Signals every process. The cgroup is frozen meanwhile (when a freezer exists) so that
    /// nothing forks a child we would miss; like runc, a failed freeze only loses that
    /// guarantee.
    pub fn kill_all(&self, sig: Signal) -> Result<()> {
        if sig == Signal::SIGKILL && self.layout.mode == Mode::V2 {
            if let Some(dir) = &self.unified {
                if v2::kill(dir)? {
                    return Ok(());
                }
            }
        }
        let frozen = self.freeze().is_ok();
        let res = self.signal_each(sig);
        if frozen {
            self.thaw()?;
        }
        if sig == Signal::SIGKILL {
            // A SIGKILLed task still sleeps while a freezer holds it: one the container was left
            // in (paused) or that froze its cgroup before we came (on a hybrid host the cgroup2
            // tree has a freezer of its own) would keep every process alive.
            self.thaw_everywhere()?;
        }
        res
    }

    /// Every freezer that could hold this container's processes lets go.
    fn thaw_everywhere(&self) -> Result<()> {
        if let Some(d) = self.v1_dir("freezer").filter(|d| d.exists()) {
            v1::thaw(d)?;
        }
        if let Some(d) = self
            .unified
            .as_deref()
            .filter(|d| d.join("cgroup.freeze").exists())
        {
            v2::thaw(d)?;
        }
        Ok(())
    }

    /// Whether any freezer already holds one of this container's directories: a container
    /// created there would hang in its first step (runc refuses it too).
    pub fn frozen_anywhere(&self) -> Result<bool> {
        if let Some(d) = self.v1_dir("freezer").filter(|d| d.exists()) {
            if v1::state(d)? != "THAWED" {
                return Ok(true);
            }
        }
        if let Some(d) = self.unified.as_deref() {
            match fs::read_opt(d, "cgroup.freeze")? {
                Some(v) if v.trim() == "1" => return Ok(true),
                _ => {}
            }
        }
        Ok(false)
    }

    fn signal_each(&self, sig: Signal) -> Result<()> {
        for pid in self.pids()? {
            match kill(Pid::from_raw(pid), sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(e).with_context(|| format!("sending {sig} to pid {pid}")),
            }
        }
        Ok(())
    }

    fn freezer(&self) -> Result<Freezer<'_>> {
        if self.layout.mode != Mode::V2 {
            if let Some(dir) = self.v1_dir("freezer") {
                return Ok(Freezer::V1(dir));
            }
        }
        // Pure v2, or a hybrid host without a v1 freezer: cgroup2 has a built-in one.
        match (self.layout.mode, &self.unified) {
            (Mode::V2 | Mode::Hybrid, Some(dir)) => Ok(Freezer::V2(dir)),
            _ => bail!("no freezer: the cgroup v1 freezer hierarchy is not mounted"),
        }
    }

    /// The directory whose freezer holds the container (v1's freezer hierarchy, or cgroup2's
    /// own): what criu freezes the tree with.
    pub fn freezer_dir(&self) -> Option<&Path> {
        match self.freezer().ok()? {
            Freezer::V1(d) | Freezer::V2(d) => Some(d),
        }
    }

    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(d) => v1::freeze(d),
            Freezer::V2(d) => v2::freeze(d),
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(d) => v1::thaw(d),
            Freezer::V2(d) => v2::thaw(d),
        }
    }

    /// False, not an error, when there is no freezer or no cgroup any more: such a
    /// container cannot be paused, and `state` must still work for it.
    pub fn is_frozen(&self) -> Result<bool> {
        let res = match self.freezer() {
            Ok(Freezer::V1(d)) => v1::is_frozen(d),
            Ok(Freezer::V2(d)) => v2::is_frozen(d),
            Err(_) => return Ok(false),
        };
        match res {
            Err(e) if fs::errno(&e) == Some(libc::ENOENT) => Ok(false),
            other => other,
        }
    }

    /// Removes every directory of this cgroup; missing ones are fine; retries while busy.
    /// Kills nothing: the caller ends the processes first.
    pub fn remove(&self) -> Result<()> {
        let mut first_err = self.driver.destroy().err();
        for dir in self.dirs() {
            if let Err(e) = fs::remove_tree(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// What to mount under the container's /sys/fs/cgroup.
    pub fn container_mounts(&self) -> Result<Vec<ContainerMount>> {
        let mut out = Vec::new();
        if self.layout.mode == Mode::V2 {
            let (_, dir) = self.unified_mount()?;
            out.push(ContainerMount {
                name: String::new(),
                fstype: "cgroup2".into(),
                data: String::new(),
                host_dir: dir.to_path_buf(),
                symlinks: Vec::new(),
            });
            return Ok(out);
        }
        for (m, dir) in self.layout.v1.iter().zip(&self.v1) {
            let name = mount_name(&m.mountpoint)?;
            let symlinks = if m.subsystems.len() > 1 {
                m.subsystems
                    .iter()
                    .filter(|s| !s.starts_with("name=") && **s != name)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            out.push(ContainerMount {
                name,
                fstype: "cgroup".into(),
                data: m.data(),
                host_dir: dir.clone(),
                symlinks,
            });
        }
        if let (Some(m), Some(dir)) = (&self.layout.unified, &self.unified) {
            out.push(ContainerMount {
                name: mount_name(&m.mountpoint)?,
                fstype: "cgroup2".into(),
                data: String::new(),
                host_dir: dir.clone(),
                symlinks: Vec::new(),
            });
        }
        Ok(out)
    }

    /// Usage numbers in runc's `events --stats` shape.
    pub fn stats(&self) -> Result<stats::Stats> {
        if self.layout.mode == Mode::V2 {
            return stats::v2(self.unified_mount()?.1);
        }
        let s = stats::V1StatDirs {
            cpu: self.v1_dir("cpu"),
            cpuacct: self.v1_dir("cpuacct"),
            memory: self.v1_dir("memory"),
            pids: self.v1_dir("pids"),
            blkio: self.v1_dir("blkio"),
            hugetlb: self.v1_dir("hugetlb"),
        };
        let mut out = stats::v1(&s)?;
        // A hybrid host may run hugetlb on its cgroup2 tree only (see apply).
        if s.hugetlb.is_none() {
            if let Some(dir) = self.unified.as_deref().filter(|d| d.exists()) {
                out.hugetlb = stats::hugetlb_v2(dir)?;
            }
        }
        Ok(out)
    }

    /// How many times the OOM killer has killed in this cgroup.
    pub fn oom_kills(&self) -> Result<u64> {
        match self.layout.mode {
            Mode::V2 => stats::oom_kills(self.unified_mount()?.1, true),
            _ => {
                let dir = self
                    .v1_dir("memory")
                    .context("the cgroup v1 memory hierarchy is not mounted")?;
                stats::oom_kills(dir, false)
            }
        }
    }
}

fn mount_name(mountpoint: &Path) -> Result<String> {
    mountpoint
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("cgroup mount {} has no name", mountpoint.display()))
}
