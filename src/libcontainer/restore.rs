//! `restore`: a container brought back from criu's images (see checkpoint.rs), as runc does
//! it. The new container is made from the bundle as `create` would make its state and
//! cgroup; criu, placed in that cgroup first, rebuilds the process tree in it, with the
//! namespaces the config joins by path handed over, the host's mount sources bound again, the
//! caller's stdio in place of the pipes the init had, and a new pty (sent to
//! --console-socket) for a terminal. The restored init is rt's child (criu's sibling), so a
//! restore in the foreground waits for it and returns its exit status.
use super::checkpoint::{open_dir, MARK};
use super::config::{load_bundle, validate_id};
use super::container::{lock_dir, Container};
use super::criu::mounts::{self, For};
use super::criu::proto::{CgMode, Opts, Req, ReqType};
use super::criu::{self, Notified, Swrk};
use super::state::{write_atomic, State, Status};
use super::{hooks, namespaces, procfs};
use crate::cgroups::CgroupManager;
use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub struct RestoreOpts<'a> {
    pub criu: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub image_path: &'a Path,
    pub work_path: Option<&'a Path>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<CgMode>,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    /// Without --console-socket, the pty master of a terminal container comes back to the
    /// caller (a restore in the foreground proxies it).
    pub keep_master: bool,
    pub empty_ns: u32,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    pub lsm_profile: Option<&'a str>,
    pub lsm_mount_context: Option<&'a str>,
    pub systemd_cgroup: bool,
}

pub struct Restored {
    pub container: Container,
    /// The pty master, when `keep_master` and the container has a terminal.
    pub master: Option<OwnedFd>,
}

/// Undoes a half-made restore: the restored tree, criu's root mount, the cgroup, the state dir.
struct Undo {
    dir: Option<PathBuf>,
    pid: Option<i32>,
    cgroup: Option<CgroupManager>,
    criu_root: Option<PathBuf>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(Signal::SIGKILL);
            if let Err(e) = cg.remove() {
                crate::logging::warn(&format!("removing cgroup {}: {e:#}", cg.path()));
            }
        }
        if let Some(r) = &self.criu_root {
            let _ = umount2(r, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(r);
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn restore(root: &Path, o: RestoreOpts) -> Result<Restored> {
    validate_id(o.id)?;
    let bundle = load_bundle(o.bundle)?;
    let spec = &bundle.spec;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && o.console_socket.is_none() && !o.keep_master {
        bail!("process.terminal is true: --console-socket is required");
    }
    if !terminal && o.console_socket.is_some() {
        bail!("--console-socket is only for containers with process.terminal set");
    }
    let linux = spec.linux().as_ref().context("linux must be set")?;
    let descriptors = o.image_path.join(criu::DESCRIPTORS);
    let stdio: Vec<String> =
        serde_json::from_slice(&std::fs::read(&descriptors).with_context(|| {
            format!(
                "--image-path {}: no checkpoint of a container there (reading {})",
                o.image_path.display(),
                criu::DESCRIPTORS
            )
        })?)
        .with_context(|| format!("parsing {}", descriptors.display()))?;
    let images = open_dir(o.image_path, "--image-path")?;
    let work = o
        .work_path
        .map(|p| open_dir(p, "--work-path"))
        .transpose()?;
    // (rootless restore is not supported: the system's systemd, never a user's)
    let (_, cgroup) = super::create::cgroup_for(spec, o.id, o.systemd_cgroup, false)?;
    let console = o
        .console_socket
        .map(|p| {
            super::fdpass::connect(p)
                .with_context(|| format!("connecting to console socket {}", p.display()))
        })
        .transpose()?;
    let (joined, ns_files) = joined_namespaces(spec)?;

    // criu is asked first (its version): where it is missing or cannot run, nothing is made.
    let mut pass = vec![images.as_fd()];
    pass.extend(work.as_ref().map(|w| w.as_fd()));
    pass.extend(ns_files.iter().map(|(_, f)| f.as_fd()));
    let swrk = Swrk::start(o.criu, &pass)?;

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("creating state root {}", root.display()))?;
    let dir = root.join(o.id);
    claim(root, &dir, o.id)?;
    let mut undo = Undo {
        dir: Some(dir.clone()),
        pid: None,
        cgroup: None,
        criu_root: None,
    };
    let lock = lock_dir(&dir)?;
    let mut state = super::create::first_state(&bundle, &cgroup, o.id);
    state.write(&dir)?;

    // criu wants its root to be a mount point whose parent is not over-mounted.
    crate::rootfs::make_mountpoints(&bundle.rootfs, spec.mounts().as_deref().unwrap_or_default())
        .context("making the mount points for criu")?;
    let criu_root = dir.join("criu-root");
    std::fs::create_dir(&criu_root).with_context(|| format!("creating {}", criu_root.display()))?;
    mount(
        Some(&bundle.rootfs),
        &criu_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("binding the rootfs to {}", criu_root.display()))?;
    undo.criu_root = Some(criu_root.clone());

    // criu goes into the container's cgroup first; the tree it restores is born there.
    undo.cgroup = Some(cgroup.clone());
    let criu_pid = swrk.pid();
    cgroup.create_unified()?;
    cgroup
        .attach(criu_pid, linux.resources().as_ref())
        .context("creating the container's cgroup")?;
    cgroup.create_v1()?;
    cgroup.add_pid_unified(criu_pid)?;
    cgroup.add_pid_v1(criu_pid)?;
    if let Some(r) = linux.resources() {
        cgroup.apply(r).context("applying linux.resources")?;
    }

    let shown = match namespaces::has(spec, LinuxNamespaceType::Cgroup) {
        true => Vec::new(),
        false => cgroup.container_mounts()?,
    };
    let mut opts = Opts {
        images_dir_fd: images.as_raw_fd(),
        evasive_devices: true,
        log_level: Some(4),
        log_file: Some("restore.log".into()),
        rst_sibling: true,
        root: Some(criu_root.to_string_lossy().into_owned()),
        manage_cgroups: true,
        manage_cgroups_mode: o.manage_cgroups_mode,
        notify_scripts: true,
        shell_job: o.shell_job,
        ext_unix_sk: o.ext_unix_sk,
        tcp_established: o.tcp_established,
        file_locks: o.file_locks,
        empty_ns: Some(o.empty_ns),
        orphan_pts_master: true,
        auto_dedup: o.auto_dedup,
        lazy_pages: o.lazy_pages,
        lsm_profile: o.lsm_profile.map(str::to_string),
        lsm_mount_context: o.lsm_mount_context.map(str::to_string),
        work_dir_fd: work.as_ref().map(|w| w.as_raw_fd()),
        config_file: criu::config_file(&state.annotations),
        join_ns: joined,
        ext_mnt: mounts::external(spec, &bundle.rootfs, &shown, None, For::Restore),
        cg_root: cgroup_roots(criu_pid)?,
        ..Default::default()
    };
    for (key, f) in &ns_files {
        opts.inherit_fd.push((key.clone(), f.as_raw_fd()));
    }
    // The caller's stdio stand in for the pipes the init had (criu has ours as its own).
    for (i, s) in stdio.iter().enumerate() {
        if s.contains("pipe:") {
            opts.inherit_fd.push((s.clone(), i as i32));
        }
    }

    let log = o.work_path.unwrap_or(o.image_path).join("restore.log");
    let mut n = RestoreNotes {
        state: &mut state,
        console,
        keep_master: o.keep_master,
        master: None,
        undo: &mut undo,
    };
    let resp = swrk.run(Req::new(ReqType::Restore, Some(opts)), log, &mut n)?;
    let master = n.master.take();
    drop(n);
    drop((images, work, ns_files));
    let pid = resp.restored_pid.unwrap_or(state.pid);
    if pid <= 0 {
        bail!("criu restored no process");
    }
    undo.pid = Some(pid);
    let _ = umount2(&criu_root, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(&criu_root);
    undo.criu_root = None;

    state.pid = pid;
    state.init_start_time = procfs::start_time(pid).unwrap_or(0);
    state.status = Status::Running;
    state.write(&dir)?;
    if let Some(p) = o.pid_file {
        write_atomic(p, pid.to_string().as_bytes())
            .with_context(|| format!("--pid-file {}", p.display()))?;
    }
    crate::debug!("restore {}: pid {pid}", o.id);
    undo.dir = None;
    undo.pid = None;
    undo.cgroup = None;
    Ok(Restored {
        container: Container::new_locked(dir, state, lock),
        master,
    })
}

/// Takes the id: new, or the container of that id that a checkpoint stopped (runc deletes
/// it at checkpoint; rt keeps it, stopped, until it is deleted or restored over).
fn claim(root: &Path, dir: &Path, id: &str) -> Result<()> {
    let make = || std::fs::DirBuilder::new().mode(0o711).create(dir);
    match make() {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let old =
        Container::load(root, id).map_err(|_| anyhow::anyhow!("container with id exists: {id}"))?;
    if old.status() != Status::Stopped || !old.dir.join(MARK).exists() {
        bail!("container with id exists: {id}");
    }
    super::lifecycle::destroy(old).context("removing the checkpointed container")?;
    make().with_context(|| format!("creating {}", dir.display()))
}

/// The namespaces the config joins by path: criu's `join_ns` for most; network and pid as
/// inherited files under the keys the dump named them by (their fds go to criu).
#[allow(clippy::type_complexity)]
fn joined_namespaces(spec: &Spec) -> Result<(Vec<(String, String)>, Vec<(String, std::fs::File)>)> {
    let mut join = Vec::new();
    let mut files = Vec::new();
    for ns in namespaces::namespaces(spec) {
        let Some(path) = ns.path() else { continue };
        let name = namespaces::proc_name(ns.typ());
        match ns.typ() {
            LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {
                let f = std::fs::File::open(path).with_context(|| {
                    format!("the {name} namespace {} to restore into", path.display())
                })?;
                files.push((criu::ext_ns_key(name), f));
            }
            LinuxNamespaceType::Cgroup => {
                bail!("criu cannot restore into a cgroup namespace joined by path")
            }
            _ => join.push((name.to_string(), path.to_string_lossy().into_owned())),
        }
    }
    Ok((join, files))
}

/// Where criu (already in the container's cgroup) is, hierarchy by hierarchy: the roots the
/// restored tree's cgroups are put below, so a restore under another id or path lands in its
/// own cgroup, not the dumped one's.
fn cgroup_roots(pid: i32) -> Result<Vec<(Option<String>, String)>> {
    let text =
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).context("reading criu's cgroups")?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        // cgroup2's line has no controllers: the root of every controller not named
        let ctrl = (!ctrls.is_empty()).then(|| ctrls.to_string());
        out.push((ctrl, path.to_string()));
    }
    Ok(out)
}

struct RestoreNotes<'a> {
    state: &'a mut State,
    console: Option<std::os::unix::net::UnixStream>,
    keep_master: bool,
    master: Option<OwnedFd>,
    undo: &'a mut Undo,
}

impl Notified for RestoreNotes<'_> {
    fn notify(&mut self, script: &str, pid: i32, fds: Vec<OwnedFd>) -> Result<()> {
        match script {
            // The namespaces exist, nothing runs yet: the hooks that runc runs at create.
            "setup-namespaces" => {
                self.state.pid = pid;
                let json = serde_json::to_vec(&self.state.public(Status::Creating))?;
                let h = self.state.config.hooks().clone();
                let h = h.as_ref();
                hooks::run_all("prestart", h.and_then(|h| h.prestart().as_ref()), &json)?;
                hooks::run_all(
                    "createRuntime",
                    h.and_then(|h| h.create_runtime().as_ref()),
                    &json,
                )?;
            }
            "post-restore" => {
                self.state.pid = pid;
                self.undo.pid = Some(pid);
            }
            "orphan-pts-master" => {
                let master = fds.into_iter().next().context("criu sent no pty master")?;
                match &self.console {
                    Some(sock) => {
                        super::fdpass::send_fds(sock.as_fd(), b"/dev/ptmx", &[master.as_fd()])
                            .context("sending the pty master to the console socket")?
                    }
                    None if self.keep_master => self.master = Some(master),
                    None => {}
                }
            }
            _ => {}
        }
        Ok(())
    }
}
