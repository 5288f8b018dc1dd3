//! The last steps: find the binary, switch user, report ready, wait for `start`, exec.
use super::user;
use crate::libcontainer::hooks;
use crate::libcontainer::procfs;
use crate::libcontainer::seccomp;
use crate::libcontainer::sync::{self, Channel, FromInit, InitConfig, ToInit};
use anyhow::{bail, Context, Result};
use nix::unistd::{access, AccessFlags};
use oci_spec::runtime::{LinuxSeccomp, Process};
use pathrs::flags::OpenFlags;
use std::convert::Infallible;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A process ready to exec: everything resolved and checked while errors can still reach the
/// parent.
pub struct Prepared {
    binary: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    preserve_fds: i32,
    /// Installed right before execve (unless it had to go on before the user switch).
    late_filter: Option<seccomp::Filter>,
}

impl Prepared {
    /// The environment the process gets, as strings.
    pub fn env(&self) -> Vec<String> {
        self.envp
            .iter()
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }
}

/// Environment, user and capabilities, binary lookup, cwd, no_new_privs: the part shared by
/// create and exec.
pub fn prepare(
    process: &Process,
    preserve_fds: i32,
    profile: Option<&LinuxSeccomp>,
    chan: &mut Channel,
) -> Result<Prepared> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        bail!("process.args must not be empty");
    }
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    // Compiled before Ready so a bad profile fails `rt create`.
    let filter = profile.map(seccomp::compile).transpose()?.flatten();
    // The cwd first, while still root and before any filter (a profile may deny getcwd): as runc
    // does, a directory root may not enter is tried again as the user.
    let entered = enter_cwd(process.cwd(), true)?;
    // Without no_new_privs only CAP_SYS_ADMIN may install a filter: when the process will not
    // keep it, the filter goes on now, before the user switch (as runc does).
    let late = seccomp::can_install_after_user_switch(process);
    let mut late_filter = None;
    if let Some(f) = filter {
        if late {
            late_filter = Some(f);
        } else {
            install(&f, chan)?;
        }
    }
    if !process.terminal().unwrap_or(false) {
        user::give_stdio_to_user(process)?;
    }
    user::switch_user(process)?;
    if !entered {
        enter_cwd(process.cwd(), false)?;
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let binary = look_path(&args[0], path_var)?;
    if process.no_new_privileges().unwrap_or(false) {
        user::set_no_new_privs()?;
    }
    // A listener must reach the agent through the parent, which stops listening at Ready
    // (create's is gone by `start`): a filter that notifies cannot wait for execve.
    if let Some(f) = late_filter.take_if(|f| f.notifies()) {
        install(&f, chan)?;
    }
    Ok(Prepared {
        binary: CString::new(binary.as_os_str().as_bytes())?,
        argv: args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()?,
        envp: env
            .iter()
            .map(|e| CString::new(e.as_bytes()))
            .collect::<Result<_, _>>()?,
        preserve_fds,
        late_filter,
    })
}

/// Installs the filter; a listener it yields goes to the parent, for the seccomp agent
/// (seccomp_notify.rs has the protocol). Between seccomp(2) and the write that tells the parent
/// which fd to take, nothing may make a syscall the filter could notify.
fn install(f: &seccomp::Filter, chan: &mut Channel) -> Result<()> {
    let mut buf = [0u8; 64];
    let Some(listener) = seccomp::install(f)? else {
        return Ok(());
    };
    chan.send_raw(sync::encode_listener(listener.as_raw_fd(), &mut buf))?;
    let reply = chan.recv()?;
    // The parent has its copy: from here on the agent's is the only one.
    drop(listener);
    match reply {
        ToInit::SeccompDone => Ok(()),
        other => bail!("expected SeccompDone, got {other:?}"),
    }
}

/// The end of init: LSM labels, close every fd of ours, seccomp, execve. The filter goes on
/// last, so the profile never sees rt's own calls: only the user's execve follows it.
pub fn exec(p: Prepared, process: &Process) -> Result<Infallible> {
    super::attrs::apply_lsm_labels(process)?;
    close_fds_from(3 + p.preserve_fds);
    // rt ignores SIGPIPE (Rust's default); an ignored signal survives execve, so the user's
    // process gets the default back.
    // SAFETY: setting a default disposition has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if let Some(f) = &p.late_filter {
        // never one that notifies: `prepare` installed that
        seccomp::install(f)?;
    }
    let err = nix::unistd::execve(&p.binary, &p.argv, &p.envp).unwrap_err();
    bail!("exec {}: {err}", p.binary.to_string_lossy())
}

/// create's path: prepare, report ready, block on exec.fifo until `start`, exec.
pub fn wait_and_exec(
    cfg: &InitConfig,
    chan: &mut Channel,
    state_json: Option<&str>,
) -> Result<Infallible> {
    let process = cfg.spec.process().as_ref().context("process must be set")?;
    let profile = cfg.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let mut prepared = prepare(process, cfg.preserve_fds, profile, chan)?;
    chan.send(&FromInit::Ready)?;
    // Blocks until `rt start` opens the other end.
    let mut fifo = procfs::reopen(&format!("fd/{}", cfg.fifo_fd), OpenFlags::O_WRONLY)
        .context("opening exec.fifo")?;
    fifo.write_all(b"0").context("writing exec.fifo")?;
    if let Some(json) = state_json {
        // startContainer hooks: after `start`, inside the container, before the user's process.
        let hooks = cfg
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.start_container().as_ref());
        // The state the parent sent was taken while creating; the container is created now.
        let mut state: serde_json::Value = serde_json::from_str(json).context("state for hooks")?;
        state["status"] = serde_json::json!("created");
        // the process's environment as it will exec (with HOME), as runc's init has it then
        let env = prepared.env();
        if hooks.is_some_and(|h| !h.is_empty()) {
            // runc runs them under the container's seccomp filter: what the profile forbids
            // the container, its startContainer hooks may not do either.
            if let Some(f) = prepared.late_filter.take() {
                seccomp::install(&f)?;
            }
        }
        hooks::run_all_env(
            "startContainer",
            hooks,
            &serde_json::to_vec(&state)?,
            Some(&env),
        )?;
    }
    exec(prepared, process)
}

/// chdir to process.cwd and check where it landed. With `may_retry`, a permission error is
/// Ok(false): the caller tries again after the user switch.
fn enter_cwd(cwd: &Path, may_retry: bool) -> Result<bool> {
    match std::env::set_current_dir(cwd) {
        Ok(()) => {}
        // EACCES and EPERM
        Err(e) if may_retry && e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Ok(false)
        }
        Err(e) => return Err(e).with_context(|| format!("chdir to process.cwd {}", cwd.display())),
    }
    // A cwd that resolves outside the container root (a leaked host fd, CVE-2024-21626) shows up
    // in getcwd as a path that does not start with "/".
    let real = nix::unistd::getcwd().context("getcwd")?;
    if !real.as_os_str().as_bytes().starts_with(b"/") {
        bail!(
            "process.cwd {} is outside the container root",
            cwd.display()
        );
    }
    Ok(true)
}

/// Every fd from `first` up is closed at exec: nothing of rt's reaches the container.
fn close_fds_from(first: i32) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes flags on our own descriptors.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        // Kernels before 5.11: walk the fd table instead.
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect();
            for fd in fds.into_iter().filter(|fd| *fd >= first) {
                super::set_cloexec(fd);
            }
        }
    }
}

/// execvp's search, with runc's wording (Go's exec.LookPath) when nothing is found: a path
/// that cannot be stat'ed says why, one that is there but no executable file is "permission
/// denied" (what a CRI caller shows as the StartError message).
fn look_path(name: &str, path_var: &str) -> Result<PathBuf> {
    if name.contains('/') {
        if let Err(e) = nix::sys::stat::stat(name) {
            bail!("exec: {name:?}: stat {name}: {}", e.desc().to_lowercase());
        }
        return if is_executable(Path::new(name)) {
            Ok(PathBuf::from(name))
        } else {
            bail!("exec: {name:?}: permission denied")
        };
    }
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    bail!("exec: {name:?}: executable file not found in $PATH")
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        && access(p, AccessFlags::X_OK).is_ok()
}

/// HOME from the container's /etc/passwd, "/" when the user has no entry (as runc does).
fn home_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
        })
        .next()
        .unwrap_or_else(|| "/".to_string())
}
