//! Seccomp user notification (`SCMP_ACT_NOTIFY`): getting the filter's listener from the
//! container's process to the seccomp agent at `linux.seccomp.listenerPath`, as the runtime
//! spec's "Container Process State" has it and as runc arranges it.
//!
//! ```text
//! init (create's or exec's)                   parent (rt create / run / exec)
//!  seccomp(NEW_LISTENER) -> fd N
//!  write {"SeccompListener":N}  ────────────▶ pidfd_getfd(init, N): its own copy
//!                                             connect(listenerPath), sendmsg: the state
//!                                               JSON with the fd in SCM_RIGHTS; close both
//!                               ◀──────────── SeccompDone
//!  close(N)
//!  ... Ready, exec fifo, hooks, execve
//! ```
//!
//! - That write is the only syscall init makes between seccomp(2) and the parent holding the
//!   fd (the message is formatted without allocating, `sync::encode_listener`, and written with
//!   write(2) itself, not std's sendto), so it is the one syscall a notify rule may not name;
//!   such a rule is refused, in runc's words. Every call
//!   init makes after it may be notified (the read of SeccompDone, close, futex, openat,
//!   execve, …): it waits for the agent, which the parent reaches by itself.
//! - Init keeps its copy until SeccompDone: closing it first would drop the last reference, and
//!   the listener with it. The parent sends SeccompDone only once the agent has the fd (runc
//!   1.1.5's order), so when the agent cannot be reached init is still waiting, and goes when
//!   the parent fails and closes the socket: it never runs on with nobody to answer.
//! - Only the agent keeps the listener: when the agent dies, notified syscalls fail with ENOSYS
//!   rather than hang (the kernel's rule for a filter whose listener is gone).
//! - The fd reaches the parent by pidfd_getfd (Linux 5.6) rather than SCM_RIGHTS on the sync
//!   socket, as in runc: a profile may notify sendmsg (a network policy agent would), and write
//!   is the call runc's agents already know to be off limits.
//! - The parent sends it before the user's process runs: create's init goes on to Ready and the
//!   exec fifo under the filter (so a notify filter is installed before Ready, even where a
//!   plain one would wait for execve), and startContainer hooks run under it, as in runc.
use super::state::{State, Status};
use super::sync::{Channel, ToInit};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Where the listener goes, and what the agent is told with it.
#[derive(Debug, PartialEq)]
pub struct Agent<'a> {
    pub path: &'a str,
    pub metadata: Option<&'a str>,
}

fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|e| e.action() == LinuxSeccompAction::ScmpActNotify)
}

/// The agent of a profile with notify rules; None without any (listenerPath is then ignored,
/// as the runtime spec says). Notify rules without a listenerPath have nobody to answer them.
pub fn agent(s: &LinuxSeccomp) -> Result<Option<Agent<'_>>> {
    if !uses_notify(s) {
        return Ok(None);
    }
    match s.listener_path().as_deref().and_then(Path::to_str) {
        None => bail!(
            "linux.seccomp: SCMP_ACT_NOTIFY rules need linux.seccomp.listenerPath, the socket of \
             the seccomp agent that answers them"
        ),
        Some("") => bail!(
            "linux.seccomp.listenerPath is empty: SCMP_ACT_NOTIFY rules need the socket of the \
             seccomp agent that answers them"
        ),
        Some(path) => Ok(Some(Agent {
            path,
            metadata: s.listener_metadata().as_deref().filter(|m| !m.is_empty()),
        })),
    }
}

/// `create`'s and `exec`'s check of the profile's agent before anything is made; a
/// listenerPath nothing will use is worth a warning.
pub fn check(s: &LinuxSeccomp) -> Result<()> {
    if agent(s)?.is_none() {
        if let Some(p) = s.listener_path() {
            crate::logging::warn(&format!(
                "linux.seccomp.listenerPath {} is ignored: no syscall has SCMP_ACT_NOTIFY",
                p.display()
            ));
        }
    }
    Ok(())
}

/// The OCI state inside the container process state: the runtime spec's six fields.
#[derive(Serialize, Debug)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

impl<'a> OciState<'a> {
    pub fn of(s: &'a State, status: Status) -> OciState<'a> {
        OciState {
            oci_version: &s.oci_version,
            id: &s.id,
            status,
            pid: s.pid,
            bundle: &s.bundle,
            annotations: &s.annotations,
        }
    }
}

/// The runtime spec's container process state, for one listener.
#[derive(Serialize, Debug)]
struct ProcessState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'static str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a str>,
    state: OciState<'a>,
}

/// The parent's side: init `pid` says its listener is its fd `fd`. Takes a copy, hands it to
/// the agent, and lets init go on. `state` is the container's (creating for create,
/// running for exec; its pid the container's init, where `pid` is the process the filter is on).
pub fn hand_over(
    chan: &mut Channel,
    agent: Option<&Agent>,
    pid: i32,
    fd: i32,
    state: OciState,
) -> Result<()> {
    let agent = agent.context(
        "container init sent a seccomp listener, but the profile has no SCMP_ACT_NOTIFY rule",
    )?;
    let listener = take(pid, fd)?;
    let msg = serde_json::to_vec(&ProcessState {
        oci_version: super::OCI_VERSION,
        fds: ["seccompFd"],
        pid,
        metadata: agent.metadata,
        state,
    })?;
    // runc's words for the first, which its tests and users match
    let sock = super::fdpass::connect(Path::new(agent.path)).with_context(|| {
        format!(
            "failed to connect with seccomp agent specified in the seccomp profile: {}",
            agent.path
        )
    })?;
    super::fdpass::send_fds(sock.as_fd(), &msg, &[listener.as_fd()])
        .with_context(|| format!("sending the seccomp listener to {}", agent.path))?;
    chan.send(&ToInit::SeccompDone)
}

/// A copy of fd `fd` of process `pid`.
fn take(pid: i32, fd: i32) -> Result<OwnedFd> {
    let pidfd = super::process::pidfd_open(pid)?;
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a pidfd we own; the result is a new fd of ours.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOSYS) {
            bail!("seccomp notify unsupported: pidfd_getfd: {e} (SCMP_ACT_NOTIFY needs Linux 5.6 or later)");
        }
        return Err(e)
            .with_context(|| format!("taking the seccomp listener from init {pid} (pidfd_getfd)"));
    }
    // SAFETY: a fresh fd from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    const NOTIFY: &str = "SCMP_ACT_NOTIFY";

    #[test]
    fn agent_needs_a_notify_rule_and_a_path() {
        let rules = json!([{"names": ["mkdir"], "action": NOTIFY}]);
        let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules,
            "listenerPath": "/run/a.sock", "listenerMetadata": "m"}));
        assert_eq!(
            agent(&p).unwrap(),
            Some(Agent {
                path: "/run/a.sock",
                metadata: Some("m")
            })
        );
        let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules,
            "listenerPath": "@abstract", "listenerMetadata": ""}));
        assert_eq!(
            agent(&p).unwrap(),
            Some(Agent {
                path: "@abstract",
                metadata: None
            })
        );
        // No notify rule: the path is ignored (the runtime spec), and so is the metadata.
        let p = profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        );
        assert_eq!(agent(&p).unwrap(), None);
        check(&p).unwrap();
        let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
        let e = format!("{:#}", agent(&p).unwrap_err());
        assert!(e.contains("need linux.seccomp.listenerPath"), "{e}");
        let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules,
            "listenerPath": ""}));
        let e = format!("{:#}", check(&p).unwrap_err());
        assert!(e.starts_with("linux.seccomp.listenerPath is empty"), "{e}");
    }

    #[test]
    fn process_state_is_the_runtime_spec_document() {
        let ann = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let v = serde_json::to_value(ProcessState {
            oci_version: "1.2.1",
            fds: ["seccompFd"],
            pid: 42,
            metadata: Some("meta"),
            state: OciState {
                oci_version: "1.2.1",
                id: "c1",
                status: Status::Creating,
                pid: 7,
                bundle: Path::new("/b"),
                annotations: &ann,
            },
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"ociVersion": "1.2.1", "fds": ["seccompFd"], "pid": 42, "metadata": "meta",
                "state": {"ociVersion": "1.2.1", "id": "c1", "status": "creating", "pid": 7,
                          "bundle": "/b", "annotations": {"k": "v"}}})
        );
        let none = BTreeMap::new();
        let v = serde_json::to_value(ProcessState {
            oci_version: "1.2.1",
            fds: ["seccompFd"],
            pid: 42,
            metadata: None,
            state: OciState {
                oci_version: "1.2.1",
                id: "c1",
                status: Status::Running,
                pid: 7,
                bundle: Path::new("/b"),
                annotations: &none,
            },
        })
        .unwrap();
        assert!(v.get("metadata").is_none() && v["state"].get("annotations").is_none());
    }
}
