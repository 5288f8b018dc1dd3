//! Seccomp user notification (SCMP_ACT_NOTIFY) through the kernel: the runtime hands the
//! filter's listener to the tests' own agent (`seccomp_agent.rs`), which emulates mkdir under
//! /tmp/fake*, fails chmod with ENOMEDIUM and lets everything else through; the container
//! shows what the agent answered, and the agent what the runtime sent it.
use crate::common::*;
use crate::require_root;
use crate::seccomp_agent::{Agent, Mode, Report};
use serde_json::{json, Value};

const MKDIR_CHMOD: &[&str] = &["mkdir", "mkdirat", "chmod", "fchmod", "fchmodat"];

/// The `sleep` example running `args`, with `names` notified to the agent at `listener`.
fn notify_config(args: &[&str], nnp: bool, names: &[&str], listener: &str) -> Value {
    let mut c = config_with_args(args);
    c["root"]["readonly"] = json!(false);
    c["process"]["noNewPrivileges"] = json!(nnp);
    c["annotations"] = json!({"org.rt.test": "notify"});
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": listener,
        "listenerMetadata": "meta-1",
        "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}]
    });
    c
}

/// The container process state the agent got: the runtime spec's fields, for container `c`
/// with `status`, and its listener.
fn check_state(report: &Report, i: usize, c: &Ctr, status: &str) {
    let s = &report.states[i];
    assert_eq!(s["fds"], json!(["seccompFd"]), "{s}");
    assert_eq!(s["metadata"], "meta-1", "{s}");
    assert!(
        s["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{s}"
    );
    assert!(s["pid"].as_i64().is_some_and(|p| p > 0), "{s}");
    let st = &s["state"];
    assert_eq!(st["id"], json!(c.id), "{s}");
    assert_eq!(st["status"], status, "{s}");
    assert_eq!(st["bundle"], json!(c.bundle_str()), "{s}");
    assert_eq!(st["annotations"], json!({"org.rt.test": "notify"}), "{s}");
    assert!(st["ociVersion"].is_string(), "{s}");
    assert!(st["pid"].as_i64().is_some_and(|p| p > 0), "{s}");
    assert_eq!(
        report.fds[i],
        vec!["anon_inode:seccomp notify".to_string()],
        "one fd, the listener"
    );
    // runc 1.1.5 never closes its end (it closes a dup of the connection and leaves the
    // original to Go's garbage collector), which the runtime spec forbids
    if !is_runc() {
        assert!(
            report.closed[i],
            "the runtime left its connection open: {report:#?}"
        );
    }
}

fn saw(report: &Report, name: &[&str], path: &str) -> bool {
    report
        .seen
        .iter()
        .any(|(_, n, p)| name.contains(&n.as_str()) && p.as_deref() == Some(path))
}

/// The agent answers the container's mkdir (done without being done) and chmod (ENOMEDIUM),
/// whether the filter goes on last (noNewPrivileges) or before the user switch; it gets one
/// document per container, with the listener.
#[test]
fn agent_answers_the_container() {
    require_root!();
    let script = "mkdir /tmp/fake-a; echo mkdir=$?; test -d /tmp/fake-a; echo exists=$?; \
                  touch /tmp/f; chmod 600 /tmp/f; echo chmod=$?";
    for nnp in [true, false] {
        let agent = Agent::start(Mode::Answer);
        let cfg = notify_config(&["sh", "-c", script], nnp, MKDIR_CHMOD, agent.path_str());
        let c = Ctr::new("notify-run", cfg);
        let out = c.run();
        let report = agent.finish();
        out.ok();
        assert_eq!(
            out.stdout, "mkdir=0\nexists=1\nchmod=1\n",
            "nnp {nnp}: {out:#?}"
        );
        assert!(out.stderr.contains("No medium found"), "{out:#?}");
        assert_eq!(report.states.len(), 1, "{report:#?}");
        check_state(&report, 0, &c, "creating");
        let s = &report.states[0];
        assert_eq!(s["pid"], s["state"]["pid"], "the process is the init: {s}");
        assert!(
            saw(&report, &["mkdir", "mkdirat"], "/tmp/fake-a"),
            "{report:#?}"
        );
    }
}

/// exec's process runs under the container's filter with a listener of its own, sent as
/// the running container's state with the exec'd pid; the init's came at create.
#[test]
fn exec_gets_its_own_listener() {
    require_root!();
    for nnp in [true, false] {
        let agent = Agent::start(Mode::Answer);
        let cfg = notify_config(&["sleep", "1000"], nnp, MKDIR_CHMOD, agent.path_str());
        let c = Ctr::started("notify-exec", cfg);
        let init = c.state()["pid"].as_i64().unwrap();
        let pid_file = c.bundle.path().join("exec.pid");
        let out = c.exec(
            &["--pid-file", pid_file.to_str().unwrap()],
            &[
                "sh",
                "-c",
                "mkdir /tmp/fake-e; echo $?; test -d /tmp/fake-e; echo $?",
            ],
        );
        out.ok();
        assert_eq!(out.stdout, "0\n1\n", "nnp {nnp}: {out:#?}");
        let exec_pid: i64 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        c.kill(false, Some("KILL")).ok();
        c.wait_status("stopped");
        let report = agent.finish();
        assert_eq!(report.states.len(), 2, "{report:#?}");
        check_state(&report, 0, &c, "creating");
        assert_eq!(report.states[0]["pid"], json!(init));
        assert_eq!(report.states[0]["state"]["pid"], json!(init));
        check_state(&report, 1, &c, "running");
        assert_eq!(report.states[1]["pid"], json!(exec_pid));
        assert_eq!(report.states[1]["state"]["pid"], json!(init));
        assert!(
            saw(&report, &["mkdir", "mkdirat"], "/tmp/fake-e"),
            "{report:#?}"
        );
    }
}

/// Notify rules on the calls the runtime itself makes after the filter is on (reading its
/// sync socket, closing fds, the exec fifo, execve...) do not hang it: the agent answers
/// them, as under runc (its seccomp-notify.bats "important syscalls").
#[test]
fn runtime_syscalls_under_the_filter_are_answered() {
    require_root!();
    let names = [
        "execve",
        "openat",
        "read",
        "recvfrom",
        "sendto",
        "sendmsg",
        "close",
        "futex",
        "mmap",
        "brk",
        "rt_sigaction",
        "close_range",
        "prctl",
        "capset",
        "setresuid",
    ];
    for nnp in [true, false] {
        let agent = Agent::start(Mode::Answer);
        let cfg = notify_config(&["true"], nnp, &names, agent.path_str());
        let c = Ctr::new("notify-important", cfg);
        let out = c.run();
        let report = agent.finish();
        out.ok();
        let seen = report.names();
        for n in ["execve", "close"] {
            assert!(seen.contains(&n), "nnp {nnp}: no {n} notified: {seen:?}");
        }
        // the wait for the runtime's go-ahead once the listener is out (Go reads its pipe,
        // rt its socket)
        assert!(
            seen.contains(&"read") || seen.contains(&"recvfrom"),
            "nnp {nnp}: {seen:?}"
        );
        if !is_runc() {
            // rt's Ready after the hand-over goes by sendto (runc writes its pipe)
            assert!(seen.contains(&"sendto"), "nnp {nnp}: {seen:?}");
        }
    }
}

/// A dead agent (here: one that closes the listener at once) leaves nobody to answer: the
/// notified call fails with ENOSYS rather than hang, since the runtime keeps no copy.
#[test]
fn without_the_agent_notified_calls_fail_with_enosys() {
    require_root!();
    let agent = Agent::start(Mode::CloseAtOnce);
    let cfg = notify_config(
        &["mkdir", "/tmp/fake-z"],
        false,
        &["mkdir", "mkdirat"],
        agent.path_str(),
    );
    let c = Ctr::new("notify-dead", cfg);
    let out = c.run();
    let report = agent.finish();
    assert_eq!(out.code(), 1, "{out:#?}");
    assert!(out.stderr.contains("Function not implemented"), "{out:#?}");
    assert_eq!(report.states.len(), 1);
}

/// startContainer hooks run under the filter (the agent answers their mkdir) and get no fd
/// of the runtime's, the listener least of all (runc's seccomp-notify.bats counts them).
#[test]
fn start_container_hook_runs_under_the_filter_without_extra_fds() {
    require_root!();
    let agent = Agent::start(Mode::Answer);
    let hook =
        "mkdir /tmp/fake-hook; echo $? > /tmp/hook-rc; ls /proc/self/fd | wc -l > /tmp/hook-fds";
    let mut cfg = notify_config(
        &[
            "sh",
            "-c",
            "cat /tmp/hook-rc /tmp/hook-fds; test -d /tmp/fake-hook; echo $?",
        ],
        true,
        &["mkdir", "mkdirat"],
        agent.path_str(),
    );
    cfg["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]});
    let c = Ctr::new("notify-hook", cfg);
    let out = c.run();
    let report = agent.finish();
    out.ok();
    // the hook's mkdir answered; 0, 1, 2 and ls's own directory; the dir was never made
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "4", "1"],
        "{out:#?}"
    );
    assert!(
        saw(&report, &["mkdir", "mkdirat"], "/tmp/fake-hook"),
        "{report:#?}"
    );
}

/// An abstract socket (`@name`, as Go reads it) reaches the agent too.
#[test]
fn abstract_listener_path() {
    require_root!();
    let name = format!("rt-test-agent-{}", std::process::id());
    let agent = Agent::start_abstract(Mode::Answer, &name);
    let cfg = notify_config(
        &["sh", "-c", "mkdir /tmp/fake-b && echo ok"],
        true,
        &["mkdir", "mkdirat"],
        &format!("@{name}"),
    );
    let c = Ctr::new("notify-abstract", cfg);
    let out = c.run();
    let report = agent.finish();
    out.ok();
    assert_eq!(out.stdout, "ok\n");
    assert_eq!(report.states.len(), 1);
}

/// Profiles that cannot work are refused at create with one clear error, and nothing is left
/// behind (the harness checks: state dir, cgroups, processes, mounts).
#[test]
fn unusable_profiles_are_refused() {
    require_root!();
    let refuse = |tag: &str, edit: &dyn Fn(&mut Value), rt_says: &str, runc_says: &str| {
        let mut cfg = notify_config(&["true"], true, &["mkdir"], "/nonexistent/agent.sock");
        edit(&mut cfg["linux"]["seccomp"]);
        let c = Ctr::new(tag, cfg);
        let out = c.create();
        // runc 1.1.5 words two of them its own way (and says them after the filter is on)
        out.fails_with(if is_runc() { runc_says } else { rt_says });
    };
    let agent = Agent::start(Mode::Answer);
    let live = agent.path_str().to_string();
    refuse(
        "notify-nopath",
        &|s| {
            s.as_object_mut().unwrap().remove("listenerPath");
        },
        "SCMP_ACT_NOTIFY rules need linux.seccomp.listenerPath",
        "listenerPath is not set",
    );
    refuse(
        "notify-emptypath",
        &|s| s["listenerPath"] = json!(""),
        "linux.seccomp.listenerPath is empty",
        "listenerPath is not set",
    );
    let unreachable = "failed to connect with seccomp agent specified in the seccomp profile";
    refuse("notify-unreachable", &|_| {}, unreachable, unreachable);
    refuse(
        "notify-abstract-unreachable",
        &|s| s["listenerPath"] = json!("@rt-test-nobody-listens"),
        unreachable,
        unreachable,
    );
    let write = "SCMP_ACT_NOTIFY cannot be used for the write syscall";
    refuse(
        "notify-write",
        &|s| {
            s["listenerPath"] = json!(live);
            s["syscalls"][0]["names"] = json!(["read", "write"]);
        },
        write,
        write,
    );
    let default = "SCMP_ACT_NOTIFY cannot be used as default action";
    refuse(
        "notify-default",
        &|s| {
            s["listenerPath"] = json!(live);
            s["defaultAction"] = json!("SCMP_ACT_NOTIFY");
        },
        default,
        default,
    );
    let report = agent.finish();
    assert!(report.states.is_empty(), "{report:#?}");
}

/// listenerPath without a notify rule is ignored, as the runtime spec says (and runc does):
/// the container runs, no agent is asked; rt warns that it is ignored.
#[test]
fn listener_path_without_notify_rule_is_ignored() {
    require_root!();
    let mut cfg = notify_config(
        &[
            "sh",
            "-c",
            "mkdir /tmp/real && test -d /tmp/real && echo made",
        ],
        true,
        &["mkdir"],
        "/nonexistent/agent.sock",
    );
    cfg["linux"]["seccomp"]["syscalls"][0]["action"] = json!("SCMP_ACT_LOG");
    let c = Ctr::new("notify-ignored", cfg);
    let out = c.run();
    out.ok();
    assert_eq!(out.stdout, "made\n");
    if !is_runc() {
        assert!(
            out.stderr
                .contains("listenerPath /nonexistent/agent.sock is ignored"),
            "{out:#?}"
        );
    }
}

/// `features` lists the action.
#[test]
fn features_list_notify() {
    require_root!();
    let out = run_cmd(
        rt_cmd(
            std::path::Path::new("/tmp"),
            std::path::Path::new("/"),
            &["features"],
        ),
        std::process::Stdio::null(),
    );
    out.ok();
    let f: Value = serde_json::from_str(&out.stdout).unwrap();
    let actions = f["linux"]["seccomp"]["actions"].as_array().unwrap();
    assert!(actions.contains(&json!("SCMP_ACT_NOTIFY")), "{f}");
}
