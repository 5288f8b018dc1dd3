use super::{Exit, GlobalOpts};
use crate::libcontainer::config::parse_process;
use crate::libcontainer::container::Container;
use crate::libcontainer::exec::{exec, ExecOpts};
use crate::libcontainer::{console, runner};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// process.json describing the process (instead of the command line form)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Unix socket that receives the pty master when a terminal is allocated
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Do not wait for the process
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<String>,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// uid[:gid] to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Add a capability (bounding, effective and permitted; never inheritable)
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long)]
    pub process_label: Option<String>,
    /// Pass this many extra fds (from 3 on) to the process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Exec even if the container is paused
    #[arg(long)]
    pub ignore_paused: bool,
    /// Run in a sub-cgroup of the container's: PATH, or CONTROLLER[,CONTROLLER]:PATH on
    /// cgroup v1 (repeatable)
    #[arg(long = "cgroup")]
    pub cgroups: Vec<String>,
    /// Unix socket that receives a pidfd of the process (SCM_RIGHTS)
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let c = Container::load_unlocked(&g.root, &a.id)?;
    let process = match &a.process {
        Some(path) => {
            let text = std::fs::read(path)
                .with_context(|| format!("reading --process {}", path.display()))?;
            parse_process(&text).with_context(|| format!("--process {}", path.display()))?
        }
        None => from_flags(&c, &a)?,
    };
    let terminal = process.terminal().unwrap_or(false);
    if a.detach && terminal && a.console_socket.is_none() {
        bail!("cannot allocate a tty for a detached exec without --console-socket");
    }
    let signals = (!a.detach).then(runner::block_signals).transpose()?;
    let (ours, theirs) = if terminal && a.console_socket.is_none() {
        let (x, y) = UnixStream::pair().context("socketpair for the console")?;
        (Some(OwnedFd::from(x)), Some(OwnedFd::from(y)))
    } else {
        (None, None)
    };
    let pid = exec(
        &c,
        ExecOpts {
            process,
            console_socket: a.console_socket.as_deref(),
            console_fd: theirs,
            pid_file: a.pid_file.as_deref(),
            preserve_fds: a.preserve_fds,
            ignore_paused: a.ignore_paused,
            sub_cgroups: &a.cgroups,
            pidfd_socket: a.pidfd_socket.as_deref(),
            rootless_cgroups: g.rootless.cgroups,
        },
    )?;
    let Some(signals) = signals else { return Ok(0) };
    let master = ours.as_ref().map(console::recv_master).transpose()?;
    runner::wait(pid, &signals, master)
}

/// runc's command line form: the container's own process, with the flags laid over it.
fn from_flags(c: &Container, a: &Args) -> anyhow::Result<oci_spec::runtime::Process> {
    if a.command.is_empty() {
        bail!("exec: a command is required (or --process FILE)");
    }
    let mut p: Value = serde_json::to_value(c.state.config.process())?;
    if p.is_null() {
        p = json!({"user": {"uid": 0, "gid": 0}, "cwd": "/"});
    }
    p["args"] = json!(a.command);
    p["terminal"] = json!(a.tty);
    p["env"] = crate::libcontainer::config::merge_env(&p["env"], &a.env);
    if let Some(cwd) = &a.cwd {
        p["cwd"] = json!(cwd);
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let uid: u32 = uid
            .parse()
            .with_context(|| format!("--user {u}: uid must be a number"))?;
        let gid: u32 = gid
            .parse()
            .with_context(|| format!("--user {u}: gid must be a number"))?;
        p["user"]["uid"] = json!(uid);
        p["user"]["gid"] = json!(gid);
    }
    if !a.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(a.additional_gids);
    }
    if !a.cap.is_empty() {
        for set in ["bounding", "effective", "permitted"] {
            let mut caps: Vec<Value> = p["capabilities"][set]
                .as_array()
                .cloned()
                .unwrap_or_default();
            caps.extend(a.cap.iter().map(|c| json!(c)));
            p["capabilities"][set] = Value::Array(caps);
        }
    }
    if a.no_new_privs {
        p["noNewPrivileges"] = json!(true);
    }
    if let Some(x) = &a.apparmor {
        p["apparmorProfile"] = json!(x);
    }
    if let Some(x) = &a.process_label {
        p["selinuxLabel"] = json!(x);
    }
    parse_process(&serde_json::to_vec(&p)?)
}
