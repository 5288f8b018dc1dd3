//! OCI hooks: each runs with the container state JSON on stdin, its own args, env and timeout.
//!
//! A hook without `env` gets the environment of whoever runs it, as in runc (Go's exec with a nil
//! Env): rt's own for the hooks rt runs on the host (prestart, createRuntime, poststart,
//! poststop); for the two init runs in the container's namespaces (createContainer,
//! startContainer) the container process's environment, which is what runc's init holds then
//! (rt init's own is nothing but its sync fd).
use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// poststart and poststop: a failing hook is a warning, and the hooks after it still run.
pub fn run_all_warn(stage: &str, hooks: Option<&Vec<Hook>>, state_json: &[u8]) {
    for (i, hook) in hooks.into_iter().flatten().enumerate() {
        if let Err(e) = run(hook, state_json, None) {
            crate::logging::warn(&format!(
                "{stage} hook #{i} ({}): {e:#}",
                hook.path().display()
            ));
        }
    }
}

pub fn run_all(stage: &str, hooks: Option<&Vec<Hook>>, state_json: &[u8]) -> Result<()> {
    run_all_env(stage, hooks, state_json, None)
}

/// As `run_all`; a hook without `env` gets `default_env` (None: rt's own environment).
pub fn run_all_env(
    stage: &str,
    hooks: Option<&Vec<Hook>>,
    state_json: &[u8],
    default_env: Option<&[String]>,
) -> Result<()> {
    for (i, hook) in hooks.into_iter().flatten().enumerate() {
        run(hook, state_json, default_env).with_context(|| {
            // runc's "error running hook #N", which callers match, with the stage and path
            format!(
                "error running hook #{i} ({stage} {})",
                hook.path().display()
            )
        })?;
    }
    Ok(())
}

fn run(hook: &Hook, state_json: &[u8], default_env: Option<&[String]>) -> Result<()> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    // `"env": []` is an empty environment; no `env` at all inherits.
    if let Some(env) = hook.env().as_deref().or(default_env) {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped());
    // SAFETY: the closure makes one async-signal-safe syscall between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            cloexec_from_3();
            Ok(())
        })
    };
    let mut child = cmd.spawn().context("starting it")?;
    // A hook that does not read its stdin must not fail the write.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(state_json);
    }
    let status = match hook.timeout() {
        None => child.wait().context("waiting for it")?,
        Some(t) => {
            let pidfd = super::process::pidfd_open(child.id() as i32)?;
            if !super::process::wait_pidfd(&pidfd, (t.clamp(1, 2_000_000) * 1000) as i32)? {
                let _ = child.kill();
                let _ = child.wait();
                bail!("timed out after {t}s");
            }
            child.wait().context("waiting for it")?
        }
    };
    if let Some(sig) = status.signal() {
        // Go's wording, which runc's callers and tests match: "signal: bad system call"
        bail!("signal: {}", signal_name(sig));
    }
    if !status.success() {
        bail!("failed: {status}");
    }
    Ok(())
}

/// A hook gets its stdio and nothing else, as runc's (Go's exec) do: not the fds rt inherited
/// from its caller, not the container's preserved fds, nothing of init's. (runc's
/// seccomp-notify.bats counts a startContainer hook's fds.) Errors are ignored: a kernel
/// without close_range (before 5.11) leaves the fds as they were.
fn cloexec_from_3() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only sets the close-on-exec flag on the calling process's own fds.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
}

/// strsignal(3)'s lowercase description, as Go prints a signal.
fn signal_name(sig: i32) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local string (or NULL).
    let p = unsafe { libc::strsignal(sig) };
    if p.is_null() {
        return format!("signal {sig}");
    }
    // SAFETY: a NUL-terminated string from libc, copied out at once.
    let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy();
    s.to_lowercase()
}
