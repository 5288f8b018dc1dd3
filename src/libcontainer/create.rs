//! The factory: DESIGN.md §2 steps 1–4 and 8. Everything made here is undone if a later step fails.
use super::config::{load_bundle, validate_id};
use super::container::{lock_dir, Container};
use super::fdpass::PidfdSocket;
use super::namespaces;
use super::process::{cgroup2_birthplace, sealed_self, spawn_init, InitSpawn};
use super::seccomp_notify::{self, OciState};
use super::state::{write_atomic, State, Status, EXEC_FIFO};
use super::sync::{Channel, FromInit, InitConfig, ToInit};
use super::OCI_VERSION;
use super::{cgroup_policy, hooks, procfs, time};
use crate::cgroups::{CgroupManager, DriverKind};
use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub struct CreateOpts<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    /// `run` without --console-socket brings its own end of a socketpair instead.
    pub console_fd: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// Socket activation: this many fds from 3 on were passed to rt for the container (see
    /// `socket_activation_fds`); --preserve-fds counts after them.
    pub listen_fds: i32,
    pub systemd_cgroup: bool,
    /// `--pidfd-socket`: a pidfd of the container's init goes there once it is ready.
    pub pidfd_socket: Option<&'a Path>,
    pub rootless: super::rootless::Rootless,
}

/// systemd's socket activation protocol, as runc takes it (go-systemd's `activation.Files`):
/// when `LISTEN_PID` is rt's own pid, `LISTEN_FDS` fds from 3 on are the container's too, and
/// its process is told `LISTEN_FDS=N LISTEN_PID=1`. Anything else (unset, another pid, not a
/// positive number) means none.
pub fn socket_activation_fds() -> i32 {
    let var = |k| std::env::var(k).ok().and_then(|v| v.parse::<i32>().ok());
    match (var("LISTEN_PID"), var("LISTEN_FDS")) {
        (Some(pid), Some(n)) if pid == std::process::id() as i32 && n > 0 => n,
        _ => 0,
    }
}

/// `process.env` with the socket activation variables set (replacing any the config had, as
/// runc's later entries win).
fn with_listen_env(spec: &oci_spec::runtime::Spec, n: i32) -> oci_spec::runtime::Spec {
    let mut spec = spec.clone();
    if let Some(p) = spec.process_mut().as_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".to_string());
        p.set_env(Some(env));
    }
    spec
}

/// Undoes a half-made container: kills the child, removes the cgroup and the state dir.
struct Undo {
    dir: Option<PathBuf>,
    pid: Option<Pid>,
    cgroup: Option<CgroupManager>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.remove() {
                crate::logging::warn(&format!("removing cgroup {}: {e:#}", cg.path()));
            }
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn create(root: &Path, opts: CreateOpts) -> Result<Container> {
    validate_id(opts.id)?;
    let bundle = load_bundle(opts.bundle)?;
    if opts.rootless.euid {
        super::rootless::validate_config(&bundle.spec)
            .with_context(|| format!("bundle {}", bundle.path.join("config.json").display()))?;
    }
    crate::debug!("create {}: config loaded", opts.id);
    let spec = &bundle.spec;
    let process = spec.process().as_ref().context("process must be set")?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && opts.console_fd.is_none() {
        bail!("process.terminal is true: --console-socket is required");
    }
    if !terminal && opts.console_socket.is_some() {
        bail!("--console-socket is only for containers with process.terminal set");
    }
    let linux = spec.linux().as_ref().context("linux must be set")?;
    let cgroups_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let cgroup = if opts.systemd_cgroup {
        let annotations = spec.annotations().iter().flatten();
        let user = opts.rootless.cgroups;
        CgroupManager::systemd(cgroups_path.as_deref(), opts.id, annotations, user)?
    } else {
        CgroupManager::new(cgroups_path.as_deref(), opts.id)?
    };
    if let Some(r) = linux.resources() {
        cgroup.check(r).context("linux.resources")?;
    }
    let agent = linux
        .seccomp()
        .as_ref()
        .map(seccomp_notify::agent)
        .transpose()?
        .flatten();
    let pidfd_socket = opts.pidfd_socket.map(PidfdSocket::connect).transpose()?;

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("creating state root {}", root.display()))?;
    let dir = root.join(opts.id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id exists: {}", opts.id)
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let mut undo = Undo {
        dir: Some(dir.clone()),
        pid: None,
        cgroup: None,
    };
    let lock = lock_dir(&dir)?;
    // After the id is claimed: a second create of the same id is told so, not about its cgroup.
    check_cgroup_unused(&cgroup)?;

    // The fifo is how `start` releases init; 0622 so a non-root container user can still open it.
    let fifo = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622)).context("creating exec.fifo")?;
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))?;
    let fifo_fd = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening exec.fifo")?;

    let console = super::console::connect(opts.console_socket, opts.console_fd)?;

    let (parent_sock, child_sock) = UnixStream::pair().context("creating the sync socketpair")?;
    let tight = has_tight_memory_limit(spec);
    let exe = sealed_self(tight)?;

    // Recorded before the cgroup exists, so `delete --force` can clean up after a create that
    // was killed at any later point (the pid follows once init exists).
    let mut state = State {
        oci_version: OCI_VERSION.to_string(),
        id: opts.id.to_string(),
        status: Status::Creating,
        pid: 0,
        init_start_time: 0,
        bundle: bundle.path.clone(),
        rootfs: bundle.rootfs.clone(),
        created: time::now_rfc3339(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup_path: cgroup.path().to_string(),
        cgroup_dirs: Some(cgroup.resolved()),
        cgroup_driver: cgroup.driver_kind(),
        no_cgroup: false,
        config: spec.clone(),
    };
    state.write(&dir)?;

    // The cgroup2 directory comes first so that init can be born in it; the rest is made while
    // init starts. A rootless caller on the cgroupfs driver makes them all now: whether it may
    // decides whether the container gets a cgroup at all.
    undo.cgroup = Some(cgroup.clone());
    let rootless_dirs = opts.rootless.cgroups && cgroup.driver_kind() == DriverKind::Cgroupfs;
    let has_cgroup = if rootless_dirs {
        let explicit = cgroups_path.as_deref().is_some_and(|p| !p.is_empty());
        let mode = crate::cgroups::Layout::host()?.mode;
        cgroup_policy::make_rootless(&cgroup, mode, explicit, linux.resources().as_ref())?
    } else {
        true
    };
    if !has_cgroup {
        undo.cgroup = None;
        state.no_cgroup = true;
        state.cgroup_dirs = None;
        state.write(&dir)?;
    }
    let unified = if !has_cgroup {
        None
    } else if rootless_dirs || cgroup.create_unified()? {
        cgroup2_birthplace(&cgroup, tight)?
    } else {
        None
    };

    let new_userns = namespaces::is_new(spec, LinuxNamespaceType::User);
    let mut keep = vec![child_sock.as_raw_fd(), fifo_fd.as_raw_fd()];
    keep.extend(console.as_ref().map(|c| c.as_raw_fd()));
    let spawned = spawn_init(&InitSpawn {
        exe: &exe,
        flags: namespaces::clone_flags(spec),
        keep_fds: &keep,
        sync_fd: child_sock.as_raw_fd(),
        wait_for_maps: new_userns,
        cgroup: unified.as_ref().map(|fd| fd.as_raw_fd()),
    })?;
    let pid = spawned.pid;
    undo.pid = Some(pid);
    crate::debug!("create {}: init cloned", opts.id);
    drop((child_sock, exe, unified));
    let mut chan = Channel(parent_sock);

    state.pid = pid.as_raw();
    state.init_start_time = procfs::start_time(pid.as_raw()).unwrap_or(0);
    state.write(&dir)?;

    // Before init may enter its user namespace (it waits for the maps): what only we may open.
    let sources = match new_userns && namespaces::is_new(spec, LinuxNamespaceType::Mount) {
        true => super::bind_sources::open(pid.as_raw(), spec, &bundle.path),
        false => Vec::new(),
    };
    if new_userns {
        super::idmap::write(pid.as_raw(), spec, opts.rootless.euid)?;
        chan.0
            .write_all(b"g")
            .context("releasing init after the id maps")?;
    }

    let cgroup_tasks = if has_cgroup {
        place_in_cgroup(
            &cgroup,
            linux,
            opts.rootless.cgroups,
            rootless_dirs,
            pid,
            &spawned,
            new_userns,
        )?
    } else {
        Vec::new()
    };
    crate::debug!("create {}: cgroup ready", opts.id);

    chan.send(&ToInit::Config(Box::new(InitConfig {
        id: opts.id.to_string(),
        spec: if opts.listen_fds > 0 {
            with_listen_env(spec, opts.listen_fds)
        } else {
            spec.clone()
        },
        bundle: bundle.path.clone(),
        rootfs: bundle.rootfs.clone(),
        cgroup_mounts: match has_cgroup {
            true => cgroup_mounts(spec, &cgroup)?,
            // what the container shows is where it runs: the cgroup rt runs in
            false => cgroup_mounts(spec, &CgroupManager::of_self()?)?,
        },
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.listen_fds + opts.preserve_fds,
        fifo_fd: fifo_fd.as_raw_fd(),
        console_fd: console.as_ref().map(|c| c.as_raw_fd()),
        cgroup_tasks,
        opened_sources: sources.iter().map(Option::is_some).collect(),
    })))?;
    let fds: Vec<_> = sources.iter().flatten().map(AsFd::as_fd).collect();
    if !fds.is_empty() {
        chan.send_fds(&fds)?;
    }
    drop(sources);
    drop(console);

    loop {
        let msg: FromInit = match chan.recv() {
            Ok(m) => m,
            Err(_) => bail!("container init exited before it was ready"),
        };
        match msg {
            FromInit::Pid(p) => {
                // Init forked into a joined pid namespace; the first child is done.
                let _ = waitpid(pid, None);
                // Undo kills the forked one now (it is not our child: its wait is a no-op).
                undo.pid = Some(Pid::from_raw(p));
                state.pid = p;
                state.init_start_time = procfs::start_time(p).unwrap_or(0);
                state.write(&dir)?;
            }
            FromInit::Hooks => {
                let json = serde_json::to_vec(&state.public(Status::Creating))?;
                let h = spec.hooks().as_ref();
                hooks::run_all("prestart", h.and_then(|h| h.prestart().as_ref()), &json)?;
                hooks::run_all(
                    "createRuntime",
                    h.and_then(|h| h.create_runtime().as_ref()),
                    &json,
                )?;
                chan.send(&ToInit::Continue(String::from_utf8(json)?))?;
            }
            FromInit::SeccompListener(fd) => seccomp_notify::hand_over(
                &mut chan,
                agent.as_ref(),
                state.pid,
                fd,
                OciState::of(&state, Status::Creating),
            )?,
            FromInit::Ready => break,
            FromInit::Error(msg) => bail!("{msg}"),
        }
    }
    if let Some(s) = pidfd_socket {
        s.send(state.pid, "standard")?;
    }

    state.status = Status::Created;
    crate::debug!("create {}: init ready", opts.id);
    state.write(&dir)?;
    if let Some(p) = opts.pid_file {
        write_atomic(p, state.pid.to_string().as_bytes())
            .with_context(|| format!("--pid-file {}", p.display()))?;
    }
    undo.dir = None;
    undo.pid = None;
    undo.cgroup = None;
    Ok(Container::new_locked(dir, state, lock))
}

/// Makes the rest of the cgroup, applies linux.resources and moves init in; returns the v1
/// `tasks` files init writes itself into.
#[allow(clippy::too_many_arguments)]
fn place_in_cgroup(
    cgroup: &CgroupManager,
    linux: &oci_spec::runtime::Linux,
    rootless: bool,
    made_up_front: bool,
    pid: Pid,
    spawned: &super::process::Spawned,
    new_userns: bool,
) -> Result<Vec<PathBuf>> {
    cgroup
        .attach(pid.as_raw(), linux.resources().as_ref())
        .context("creating the container's cgroup")?;
    if !made_up_front {
        cgroup.create_v1()?;
    }
    if let Some(resources) = linux.resources() {
        // linux.resources.devices alone decides device access (after rt's default set): a node
        // linux.devices creates is not allowed by that alone, as in runc (1.1.5 and current),
        // so a deny-all rule denies it unless a rule allows it.
        if rootless {
            let (rest, devices) = cgroup_policy::split_devices(resources);
            cgroup.apply(&rest).context("applying linux.resources")?;
            if let Some(Err(e)) = devices.map(|d| cgroup.apply(&d)) {
                crate::debug!("rootless: device rules not applied: {e:#}");
            }
        } else {
            cgroup
                .apply(resources)
                .context("applying linux.resources")?;
        }
    }
    // cgroup2: born there, or moved now. v1: init moves itself, unless it is in a new user
    // namespace, where host cgroup files are not its to write.
    if !spawned.in_cgroup {
        cgroup.add_pid_unified(pid.as_raw())?;
    }
    if new_userns {
        cgroup.add_pid_v1(pid.as_raw())?;
        Ok(Vec::new())
    } else {
        Ok(cgroup.v1_task_files())
    }
}

/// A cgroup someone froze would hold init forever; one with processes in it is shared with
/// them (runc warns, and newer runc refuses it).
fn check_cgroup_unused(cgroup: &CgroupManager) -> Result<()> {
    if cgroup.frozen_anywhere()? {
        bail!("container's cgroup unexpectedly frozen");
    }
    let n = cgroup.pids()?.len();
    if n > 0 {
        crate::logging::warn(&format!(
            "container's cgroup is not empty: {n} process(es) found"
        ));
    }
    Ok(())
}

/// What a cgroup mount of the config shows, for init's rootfs set-up; nothing without one.
fn cgroup_mounts(
    spec: &oci_spec::runtime::Spec,
    cgroup: &CgroupManager,
) -> Result<Vec<crate::rootfs::CgroupMount>> {
    let wanted = spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| matches!(m.typ().as_deref(), Some("cgroup") | Some("cgroup2")));
    if !wanted {
        return Ok(Vec::new());
    }
    Ok(cgroup
        .container_mounts()?
        .into_iter()
        .map(|m| crate::rootfs::CgroupMount {
            name: m.name,
            fstype: m.fstype,
            data: m.data,
            host_dir: m.host_dir,
            symlinks: m.symlinks,
        })
        .collect())
}

/// A memory limit under which rt's own pages in the container's cgroup would matter.
pub(crate) fn has_tight_memory_limit(spec: &oci_spec::runtime::Spec) -> bool {
    const TIGHT: i64 = 64 << 20;
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .is_some_and(|l| l > 0 && l < TIGHT)
}
