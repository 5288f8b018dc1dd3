//! OCI hooks: every stage leaves a marker with the state it got on stdin, its args and
//! its env; a failing or hung hook fails the operation cleanly.

use crate::common::*;
use crate::require_root;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// The stages in the order the runtime must run them.
const STAGES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook that records stdin, its argv and its env under `$D`, then appends its stage
/// to `$D/order`. `sh` is the host's for host stages, busybox's for startContainer.
fn marker_hook(stage: &str, dir: &str, path_var: &str) -> Value {
    let script = r#"cat > "$D/$0.json"; printf '%s\n' "$0" "$@" > "$D/$0.args"; env > "$D/$0.env"; readlink /proc/self/ns/mnt > "$D/$0.mnt"; echo "$0" >> "$D/order""#;
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script, stage, "one", "two words"],
        "env": [format!("D={dir}"), "HOOK_VAR=x y", format!("PATH={path_var}")],
    })
}

fn read(dir: &Path, name: &str) -> String {
    let p = dir.join(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_stage_in_order_with_state() {
    require_root!();
    all_stages(false);
}

#[test]
fn start_container_hook_sees_created() {
    require_root!();
    all_stages(true);
}

/// Runs a container with a marker hook at every stage through create, start, kill and
/// delete, and checks the markers. `start_status` adds the startContainer status check.
fn all_stages(start_status: bool) {
    let marks = tempfile::Builder::new()
        .prefix("rt-hooks-")
        .tempdir()
        .unwrap();
    let d = marks.path().to_str().unwrap();
    let mut cfg = config_with_args(&["sleep", "1000"]);
    cfg["root"]["readonly"] = json!(false);
    cfg["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/hooks", "type": "bind", "source": d, "options": ["rbind", "rw"]}),
    );
    let host_path = "/usr/sbin:/usr/bin:/sbin:/bin";
    let mut hooks = json!({});
    for s in STAGES {
        hooks[s] = if s == "startContainer" {
            json!([marker_hook(s, "/hooks", "/bin")])
        } else {
            json!([marker_hook(s, d, host_path)])
        };
    }
    cfg["hooks"] = hooks;
    let c = Ctr::new("hooks-all", cfg);
    c.create().ok();
    let pid = c.state()["pid"].as_i64().unwrap();
    let ctr_mnt = fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    let host_mnt = fs::read_link("/proc/self/ns/mnt").unwrap();
    // runc 1.1 runs poststart at the end of `create`; the spec has it run by `start`
    // after the user's process started, which rt does.
    let (at_create, order) = if is_runc() {
        (
            "prestart\ncreateRuntime\ncreateContainer\npoststart\n",
            "prestart\ncreateRuntime\ncreateContainer\npoststart\nstartContainer\npoststop\n",
        )
    } else {
        (
            "prestart\ncreateRuntime\ncreateContainer\n",
            "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\npoststop\n",
        )
    };
    assert_eq!(read(marks.path(), "order"), at_create);
    c.start().ok();
    c.kill(false, Some("KILL")).ok();
    c.wait_status("stopped");
    c.delete(false).ok();
    assert_eq!(read(marks.path(), "order"), order);

    let bundle = fs::canonicalize(c.bundle.path()).unwrap();
    for s in STAGES {
        let text = read(marks.path(), &format!("{s}.json"));
        let st: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{s}: {e}: {text:?}"));
        check_state_schema(&st);
        assert_eq!(st["id"], c.id.as_str(), "{s}: {st}");
        assert_eq!(
            fs::canonicalize(st["bundle"].as_str().unwrap()).unwrap(),
            bundle,
            "{s}: {st}"
        );
        let want_status = match s {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "startContainer" if !start_status => "",
            "startContainer" => "created",
            // see the order above: in runc 1.1 poststart runs before the start
            "poststart" if is_runc() => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        if !want_status.is_empty() {
            assert_eq!(st["status"], want_status, "{s}: {st}");
        }
        match s {
            // runc hands the hooks that run from its init the pid the init sees, 1; the
            // spec's state.pid is the pid as seen by the host, which rt hands.
            "createContainer" | "startContainer" if is_runc() => {
                assert_eq!(st["pid"], 1, "{s}: {st}")
            }
            "poststop" => {}
            _ => assert_eq!(st["pid"], pid, "{s}: {st}"),
        }

        // createContainer and startContainer run in the container's mount namespace,
        // the others in the runtime's
        let want_mnt = match s {
            "createContainer" | "startContainer" => &ctr_mnt,
            _ => &host_mnt,
        };
        assert_eq!(
            read(marks.path(), &format!("{s}.mnt")).trim(),
            want_mnt.to_str().unwrap(),
            "{s}: mount namespace"
        );
        assert_eq!(
            read(marks.path(), &format!("{s}.args")),
            format!("{s}\none\ntwo words\n")
        );
        let env = read(marks.path(), &format!("{s}.env"));
        let mut vars: Vec<_> = env
            .lines()
            // what the shell itself adds
            .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
            .collect();
        vars.sort();
        let d_var = if s == "startContainer" {
            "D=/hooks".to_string()
        } else {
            format!("D={d}")
        };
        let path_var = if s == "startContainer" {
            "PATH=/bin".to_string()
        } else {
            format!("PATH={host_path}")
        };
        assert_eq!(
            vars,
            [d_var.as_str(), "HOOK_VAR=x y", path_var.as_str()],
            "{s}: hook env is exactly the configured one"
        );
    }
}

fn failing_create_runtime(tag: &str, script: &str) {
    let mut cfg = example("sleep");
    cfg["hooks"] = json!({"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", script]}
    ]});
    let c = Ctr::new(tag, cfg);
    // runc: `error running hook #0: error running hook: exit status 3, …`;
    // rt: `error running hook #0 (createRuntime /bin/sh): failed: exit status: 3`
    c.create().fails_with("hook #0");
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
    assert_ne!(c.rt(&["state", &c.id]).code(), 0, "the container exists");
}

#[test]
fn failing_create_runtime_fails_create() {
    require_root!();
    failing_create_runtime(
        "hooks-fail",
        "cat > /dev/null; echo hook-said-no >&2; exit 3",
    );
}

#[test]
fn hook_exiting_without_reading_state() {
    require_root!();
    // the race is with the runtime's write of the state: a few rounds make it show
    for _ in 0..6 {
        failing_create_runtime("hooks-noread", "exit 3");
    }
}

#[test]
fn hook_timeout_enforced() {
    require_root!();
    let mut cfg = example("sleep");
    cfg["hooks"] = json!({"createRuntime": [
        {"path": "/bin/sleep", "args": ["sleep", "23.4567"], "timeout": 1}
    ]});
    let c = Ctr::new("hooks-timeout", cfg);
    let t0 = Instant::now();
    let out = c.create();
    let took = t0.elapsed();
    assert_ne!(out.code(), 0, "{out:#?}");
    assert!(
        took < Duration::from_secs(10),
        "timeout not enforced: {took:?}"
    );
    assert!(
        out.message().contains("timeout") || out.message().contains("timed out"),
        "{out:#?}"
    );
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

#[test]
fn failing_poststop_is_a_warning() {
    require_root!();
    let marks = tempfile::tempdir().unwrap();
    let after = marks.path().join("second-ran");
    let mut cfg = config_with_args(&["true"]);
    cfg["hooks"] = json!({"poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null; exit 1"]},
        {"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", after.display())]}
    ]});
    let c = Ctr::started("hooks-poststop", cfg);
    c.wait_status("stopped");
    let out = c.delete(false);
    if is_runc() {
        // runc fails delete when a poststop hook fails (after removing the container);
        // the spec says to warn and carry on, which rt does.
        assert!(!c.root.path().join(&c.id).exists());
    } else {
        out.ok();
        assert!(after.exists(), "the hook after the failing one did not run");
        // the warning is a logrus line, as runc's warnings are
        let (level, msg) = parse_log_line(out.stderr.trim_end());
        assert_eq!(level, "warning", "{out:#?}");
        assert!(msg.contains("poststop"), "{out:#?}");
    }
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

#[test]
fn hook_without_env_inherits() {
    require_root!();
    // runc runs a hook without `env` with the environment of whoever runs it (Go's exec with a
    // nil Env): its own for the host stages; for createContainer and startContainer, which its
    // init runs, the container process's environment (startContainer's with HOME, as exec'd)
    let marks = tempfile::Builder::new()
        .prefix("rt-hooks-env-")
        .tempdir()
        .unwrap();
    let d = marks.path().to_str().unwrap();
    let mut cfg = config_with_args(&["sleep", "1000"]);
    cfg["root"]["readonly"] = json!(false);
    cfg["process"]["env"] = json!(["PATH=/bin:/usr/bin", "CTR_VAR=in container"]);
    cfg["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/hooks", "type": "bind", "source": d, "options": ["rbind", "rw"]}),
    );
    let mut hooks = json!({});
    for s in STAGES {
        let dir = if s == "startContainer" { "/hooks" } else { d };
        hooks[s] =
            json!([{"path": "/bin/sh", "args": ["sh", "-c", "env > \"$1/$0.env\"", s, dir]}]);
    }
    // and `"env": []` is an empty environment, not an inherited one
    hooks["prestart"]
        .as_array_mut()
        .unwrap()
        .push(json!({"path": "/bin/sh", "args": ["sh", "-c", "env > \"$1/empty.env\"", "x", d], "env": []}));
    cfg["hooks"] = hooks;
    let c = Ctr::new("hooks-env", cfg);
    let rt = |args: &[&str]| {
        let mut cmd = c.cmd(args);
        cmd.env("RT_HOOK_PROBE", "from the runtime");
        run_cmd(cmd, std::process::Stdio::null())
    };
    rt(&["create", "--bundle", c.bundle_str(), &c.id]).ok();
    c.track_pid();
    rt(&["start", &c.id]).ok();
    c.kill(false, Some("KILL")).ok();
    c.wait_status("stopped");
    rt(&["delete", &c.id]).ok();

    let vars = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = read(marks.path(), name)
            .lines()
            // what the shell itself adds
            .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    for s in ["prestart", "createRuntime", "poststart", "poststop"] {
        let env = vars(&format!("{s}.env"));
        assert!(
            env.iter().any(|v| v == "RT_HOOK_PROBE=from the runtime"),
            "{s}: runtime's environment not inherited: {env:#?}"
        );
    }
    assert_eq!(
        vars("createContainer.env"),
        ["CTR_VAR=in container", "PATH=/bin:/usr/bin"],
        "createContainer"
    );
    assert_eq!(
        vars("startContainer.env"),
        ["CTR_VAR=in container", "HOME=/root", "PATH=/bin:/usr/bin"],
        "startContainer"
    );
    let empty = vars("empty.env");
    assert!(
        !empty.iter().any(|v| v.starts_with("RT_HOOK_PROBE=")),
        "{empty:#?}"
    );
}

/// createContainer hooks run with the container's rootfs as their working directory, as runc
/// runs them (runc's hooks.bats writes a library into ./lib from one).
#[test]
fn create_container_hook_runs_in_the_rootfs() {
    require_root!();
    let mut cfg = config_with_args(&["cat", "/made-by-hook"]);
    cfg["root"]["readonly"] = json!(false);
    cfg["hooks"] = json!({"createContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo here > ./made-by-hook"]}
    ]});
    let c = Ctr::new("hookcwd", cfg);
    let out = c.run();
    out.ok();
    assert_eq!(out.stdout, "here\n");
}

/// A hook gets its stdio and nothing else, as runc's do (Go's exec passes no other fd): not
/// the container's preserved fds, not an fd the runtime's caller left open, nothing of the
/// runtime's own; in the container (startContainer, createContainer) and on the host.
#[test]
fn hooks_get_only_their_stdio() {
    require_root!();
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let marks = tempfile::Builder::new()
        .prefix("rt-hookfds-")
        .tempdir()
        .unwrap();
    let d = marks.path().to_str().unwrap();
    let mut cfg = config_with_args(&["sh", "-c", "ls /proc/self/fd | wc -l"]);
    cfg["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/hooks", "type": "bind", "source": d, "options": ["rbind", "rw"]}),
    );
    let count = |stage: &str, dir: &str| {
        json!([{"path": "/bin/sh", "args": ["sh", "-c",
            format!("ls /proc/self/fd | wc -l > {dir}/{stage}")]}])
    };
    cfg["hooks"] = json!({
        "createRuntime": count("createRuntime", d),
        "createContainer": count("createContainer", d),
        "startContainer": count("startContainer", "/hooks"),
        "poststart": count("poststart", d),
    });
    let c = Ctr::new("hookfds", cfg);
    let high = |f: fs::File| -> OwnedFd {
        // SAFETY: F_DUPFD_CLOEXEC returns a new fd that we then own.
        unsafe {
            let fd = libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10);
            assert!(fd >= 10);
            OwnedFd::from_raw_fd(fd)
        }
    };
    let preserved = high(fs::File::open("/dev/null").unwrap());
    let stray = high(fs::File::open("/dev/null").unwrap());
    let (p, s) = (preserved.as_raw_fd(), stray.as_raw_fd());
    let mut cmd = c.cmd(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        c.bundle_str(),
        &c.id,
    ]);
    // SAFETY: only dup2, which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 clears CLOEXEC: 3 is preserved for the container, 7 merely inherited
            if libc::dup2(p, 3) < 0 || libc::dup2(s, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_cmd(cmd, std::process::Stdio::null());
    out.ok();
    drop((preserved, stray));
    // the process: 0-3 and ls's directory
    assert_eq!(out.stdout.trim(), "5", "{out:#?}");
    for stage in [
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ] {
        let n = read(marks.path(), stage);
        if is_runc() && stage == "createContainer" {
            // runc 1.1.5's init leaks its sync socket, log pipe and exec fifo into them
            continue;
        }
        if is_runc() && stage == "startContainer" {
            // and the preserved fd: Go's exec keeps every fd not marked close-on-exec
            assert_eq!(n.trim(), "5", "{stage}");
            continue;
        }
        // 0-2 and ls's directory
        assert_eq!(n.trim(), "4", "{stage}");
    }
}
