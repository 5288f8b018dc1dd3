//! The factory: DESIGN.md §2 steps 1–4 and 8. Everything made here is undone if a later step fails.
use super::config::{load_bundle, validate_id, Bundle};
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

/// `rt create`: DESIGN.md §2's steps in order, each one function; the claim's undo guard removes
/// whatever the earlier steps made when a later one fails.
pub fn create(root: &Path, mut opts: CreateOpts) -> Result<Container> {
    let mut plan = load(&opts)?;
    let mut claim = claim_id(root, opts.id)?;
    // After the id is claimed: a second create of the same id is told so, not about its cgroup.
    check_cgroup_unused(&plan.cgroup)?;
    let console = super::console::connect(opts.console_socket, opts.console_fd.take())?;
    let mut state = first_state(&plan.bundle, &plan.cgroup, opts.id);
    state.write(&claim.dir)?;
    let cgroup = decide_cgroup(&plan, &opts, &mut claim, &mut state)?;
    let init = spawn(&plan, &claim, &cgroup, console.as_ref())?;
    claim.undo.pid = Some(init.spawned.pid);
    // The stages carry runc's names (nsexec, init()): people and scripts reading a runc
    // --debug log look for them.
    let pid = init.spawned.pid;
    crate::debug!(
        "create {}: nsexec container setup: rt init cloned (pid {pid})",
        opts.id
    );
    configure(&plan, &opts, &mut claim, &mut state, &cgroup, init, console)?;
    if let Some(s) = plan.pidfd_socket.take() {
        s.send(state.pid, "standard")?;
    }
    persist(claim, state, opts.pid_file)
}

/// Step 1: the config and the flags checked, the cgroup manager chosen; nothing is made yet.
struct Plan {
    bundle: Bundle,
    cgroups_path: Option<String>,
    cgroup: CgroupManager,
    pidfd_socket: Option<PidfdSocket>,
    tight_memory: bool,
}

fn load(opts: &CreateOpts) -> Result<Plan> {
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
    let (cgroups_path, cgroup) =
        cgroup_for(spec, opts.id, opts.systemd_cgroup, opts.rootless.cgroups)?;
    // (the agent is looked up again where it is used: it borrows from the spec)
    linux
        .seccomp()
        .as_ref()
        .map(seccomp_notify::agent)
        .transpose()?;
    let pidfd_socket = opts.pidfd_socket.map(PidfdSocket::connect).transpose()?;
    let tight_memory = has_tight_memory_limit(spec);
    Ok(Plan {
        bundle,
        cgroups_path,
        cgroup,
        pidfd_socket,
        tight_memory,
    })
}

/// The container's `linux.cgroupsPath` and the manager of its cgroup with the driver asked for
/// (`user`: a rootless caller's systemd), its limits checked against the host; nothing is made.
pub(super) fn cgroup_for(
    spec: &oci_spec::runtime::Spec,
    id: &str,
    systemd: bool,
    user: bool,
) -> Result<(Option<String>, CgroupManager)> {
    let linux = spec.linux().as_ref().context("linux must be set")?;
    let cgroups_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let cgroup = if systemd {
        let annotations = spec.annotations().iter().flatten();
        CgroupManager::systemd(cgroups_path.as_deref(), id, annotations, user)?
    } else {
        CgroupManager::new(cgroups_path.as_deref(), id)?
    };
    if let Some(r) = linux.resources() {
        cgroup.check(r).context("linux.resources")?;
    }
    Ok((cgroups_path, cgroup))
}

/// Step 2: `<root>/<id>` made exclusively and locked, with its exec.fifo; from here on the
/// undo guard owns what is made.
struct Claim {
    dir: PathBuf,
    lock: nix::fcntl::Flock<std::fs::File>,
    fifo_fd: OwnedFd,
    undo: Undo,
}

fn claim_id(root: &Path, id: &str) -> Result<Claim> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("creating state root {}", root.display()))?;
    let dir = root.join(id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id exists: {id}")
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let undo = Undo {
        dir: Some(dir.clone()),
        pid: None,
        cgroup: None,
    };
    let lock = lock_dir(&dir)?;
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
    Ok(Claim {
        dir,
        lock,
        fifo_fd,
        undo,
    })
}

/// The state recorded before the cgroup exists, so `delete --force` can clean up after a
/// create that was killed at any later point (the pid follows once init exists).
pub(super) fn first_state(bundle: &Bundle, cgroup: &CgroupManager, id: &str) -> State {
    let spec = &bundle.spec;
    State {
        oci_version: OCI_VERSION.to_string(),
        id: id.to_string(),
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
    }
}

/// Whether the container gets a cgroup, and the cgroup2 directory init is born in. The
/// cgroup2 directory comes first; the rest is made while init starts. A rootless caller on the
/// cgroupfs driver makes them all now: whether it may decides whether there is a cgroup at all.
struct CgroupPlan {
    exists: bool,
    made_up_front: bool,
    birthplace: Option<OwnedFd>,
}

fn decide_cgroup(
    plan: &Plan,
    opts: &CreateOpts,
    claim: &mut Claim,
    state: &mut State,
) -> Result<CgroupPlan> {
    let cgroup = &plan.cgroup;
    claim.undo.cgroup = Some(cgroup.clone());
    let made_up_front = opts.rootless.cgroups && cgroup.driver_kind() == DriverKind::Cgroupfs;
    let exists = if made_up_front {
        let explicit = plan.cgroups_path.as_deref().is_some_and(|p| !p.is_empty());
        let mode = crate::cgroups::Layout::host()?.mode;
        let resources = plan
            .bundle
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref());
        cgroup_policy::make_rootless(cgroup, mode, explicit, resources)?
    } else {
        true
    };
    if !exists {
        claim.undo.cgroup = None;
        state.no_cgroup = true;
        state.cgroup_dirs = None;
        state.write(&claim.dir)?;
    }
    let birthplace = if exists && (made_up_front || cgroup.create_unified()?) {
        cgroup2_birthplace(cgroup, plan.tight_memory)?
    } else {
        None
    };
    Ok(CgroupPlan {
        exists,
        made_up_front,
        birthplace,
    })
}

/// Step 3: the sync socketpair and `rt init` cloned into its namespaces from a sealed copy of
/// ourselves.
struct Init {
    spawned: super::process::Spawned,
    chan: Channel,
}

fn spawn(
    plan: &Plan,
    claim: &Claim,
    cgroup: &CgroupPlan,
    console: Option<&OwnedFd>,
) -> Result<Init> {
    let spec = &plan.bundle.spec;
    let (parent_sock, child_sock) = UnixStream::pair().context("creating the sync socketpair")?;
    let exe = sealed_self(plan.tight_memory)?;
    let mut keep = vec![child_sock.as_raw_fd(), claim.fifo_fd.as_raw_fd()];
    keep.extend(console.map(|c| c.as_raw_fd()));
    let spawned = spawn_init(&InitSpawn {
        exe: &exe,
        flags: namespaces::clone_flags(spec),
        keep_fds: &keep,
        sync_fd: child_sock.as_raw_fd(),
        wait_for_maps: namespaces::is_new(spec, LinuxNamespaceType::User),
        cgroup: cgroup.birthplace.as_ref().map(|fd| fd.as_raw_fd()),
    })?;
    Ok(Init {
        spawned,
        chan: Channel(parent_sock),
    })
}

/// Step 4: the id maps, the cgroup, the init config, and the hooks and seccomp agent init asks
/// for, until init says it is ready.
fn configure(
    plan: &Plan,
    opts: &CreateOpts,
    claim: &mut Claim,
    state: &mut State,
    cgroup: &CgroupPlan,
    init: Init,
    console: Option<OwnedFd>,
) -> Result<()> {
    let spec = &plan.bundle.spec;
    let linux = spec.linux().as_ref().context("linux must be set")?;
    let Init { spawned, mut chan } = init;
    let pid = spawned.pid;
    state.pid = pid.as_raw();
    state.init_start_time = procfs::start_time(pid.as_raw()).unwrap_or(0);
    state.write(&claim.dir)?;

    // Before init may enter its user namespace (it waits for the maps): what only we may open.
    let new_userns = namespaces::is_new(spec, LinuxNamespaceType::User);
    let sources = match new_userns && namespaces::is_new(spec, LinuxNamespaceType::Mount) {
        true => super::bind_sources::open(pid.as_raw(), spec, &plan.bundle.path),
        false => Vec::new(),
    };
    if new_userns {
        super::idmap::write(pid.as_raw(), spec, opts.rootless.euid)?;
        chan.0
            .write_all(b"g")
            .context("releasing init after the id maps")?;
    }

    let cgroup_tasks = if cgroup.exists {
        place_in_cgroup(
            &plan.cgroup,
            linux,
            opts.rootless.cgroups,
            cgroup.made_up_front,
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
        bundle: plan.bundle.path.clone(),
        rootfs: plan.bundle.rootfs.clone(),
        cgroup_mounts: match cgroup.exists {
            true => cgroup_mounts(spec, &plan.cgroup)?,
            // what the container shows is where it runs: the cgroup rt runs in
            false => cgroup_mounts(spec, &CgroupManager::of_self()?)?,
        },
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.listen_fds + opts.preserve_fds,
        fifo_fd: claim.fifo_fd.as_raw_fd(),
        console_fd: console.as_ref().map(|c| c.as_raw_fd()),
        cgroup_tasks,
        opened_sources: sources.iter().map(Option::is_some).collect(),
    })))?;
    let fds: Vec<_> = sources.iter().flatten().map(AsFd::as_fd).collect();
    if !fds.is_empty() {
        chan.send_fds(&fds)?;
    }
    crate::debug!(
        "create {}: child process in init() (pid {pid}): config sent",
        opts.id
    );
    drop(sources);
    drop(console);
    until_ready(plan, claim, state, &mut chan)
}

/// What init asks of the parent while it sets itself up, until it is ready.
fn until_ready(
    plan: &Plan,
    claim: &mut Claim,
    state: &mut State,
    chan: &mut Channel,
) -> Result<()> {
    let spec = &plan.bundle.spec;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let agent = seccomp.map(seccomp_notify::agent).transpose()?.flatten();
    loop {
        let msg: FromInit = match chan.recv() {
            Ok(m) => m,
            Err(_) => bail!("container init exited before it was ready"),
        };
        match msg {
            FromInit::Pid(p) => {
                // Init forked into a joined pid namespace; the first child is done.
                if let Some(first) = claim.undo.pid {
                    let _ = waitpid(first, None);
                }
                // Undo kills the forked one now (it is not our child: its wait is a no-op).
                claim.undo.pid = Some(Pid::from_raw(p));
                state.pid = p;
                state.init_start_time = procfs::start_time(p).unwrap_or(0);
                state.write(&claim.dir)?;
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
                chan,
                agent.as_ref(),
                state.pid,
                fd,
                OciState::of(state, Status::Creating),
            )?,
            FromInit::Ready => {
                let id = &state.id;
                crate::debug!("create {id}: init: closing the pipe to signal completion (ready)");
                return Ok(());
            }
            FromInit::Error(msg) => bail!("{msg}"),
        }
    }
}

/// Step 8: state.json says created, the --pid-file is written, and the undo guard lets go.
fn persist(mut claim: Claim, mut state: State, pid_file: Option<&Path>) -> Result<Container> {
    state.status = Status::Created;
    state.write(&claim.dir)?;
    if let Some(p) = pid_file {
        write_atomic(p, state.pid.to_string().as_bytes())
            .with_context(|| format!("--pid-file {}", p.display()))?;
    }
    claim.undo.dir = None;
    claim.undo.pid = None;
    claim.undo.cgroup = None;
    Ok(Container::new_locked(claim.dir.clone(), state, claim.lock))
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
