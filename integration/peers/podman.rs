//! podman 4.3 (through conmon) with `--runtime`: no `--root`, so the default root is used.

use super::*;

fn podman(s: &Scene, args: &[&str]) -> Command {
    let mut c = clean_cmd("podman");
    let d = s.dir.path();
    c.arg("--root")
        .arg(d.join("root"))
        .arg("--runroot")
        .arg(d.join("runroot"))
        .arg("--tmpdir")
        .arg(d.join("tmp"))
        .arg("--volumepath")
        .arg(d.join("volumes"))
        .arg("--network-config-dir")
        .arg(d.join("net"))
        .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
        .args(["--storage-driver", "vfs"])
        .arg("--runtime")
        .arg(&s.wrapper)
        .args(args);
    c
}

/// `podman run` flags every container here needs. The rlimits: podman asks for
/// nofile/nproc 1048576, which needs CAP_SYS_RESOURCE, and this machine's root lacks it
/// (runc fails the same way), so ask for what is already allowed.
fn podman_run_flags(s: &Scene) -> Vec<String> {
    [
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--cgroup-parent",
        &s.cgroup,
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn podman_drives_the_runtime() {
    need_or_skip!("podman", "conmon", "umoci", "script");
    let s = Scene::new("podman", &["conmon"]);
    let layout = s.path("image");
    busybox_layout(&layout);
    let pulled = s.ok(podman(
        &s,
        &["pull", "-q", &format!("oci:{}:latest", layout.display())],
    ));
    let image = pulled.trim().to_string();
    let flags = podman_run_flags(&s);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    let mut a = vec!["run", "--rm"];
    a.extend(&flags);
    a.extend([image.as_str(), "echo", "hi"]);
    assert_eq!(s.ok(podman(&s, &a)), "hi\n");

    let mut a = vec!["run", "--rm"];
    a.extend(&flags);
    a.extend([image.as_str(), "sh", "-c", "exit 3"]);
    s.code(podman(&s, &a), 3);

    // A terminal: podman -t needs one itself, so it runs under script(1).
    let mut a = vec!["run", "--rm", "-it"];
    a.extend(&flags);
    a.extend([
        image.as_str(),
        "sh",
        "-c",
        "tty; [ -t 0 ] && echo stdio-is-a-tty",
    ]);
    // podman -it under script(1) on a loaded machine sometimes exits before conmon has copied
    // the container's output to it (seen with runc too): a lost copy is retried, a wrong one is not.
    let mut out = String::new();
    for _ in 0..3 {
        out = s.ok(under_script(&mut podman(&s, &a)));
        if !out.is_empty() {
            break;
        }
    }
    assert!(
        out.contains("/dev/pts/") && out.contains("stdio-is-a-tty"),
        "{out:?}"
    );

    // Detached, exec, stop (SIGTERM reaches the container: it exits 0 by its trap), rm.
    let mut a = vec!["run", "-d", "--name", "p1"];
    a.extend(&flags);
    a.extend([
        image.as_str(),
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 1000 & wait",
    ]);
    let id = s.ok(podman(&s, &a)).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let st = s.ok(podman(&s, &["inspect", "-f", "{{.State.Status}}", "p1"]));
    assert_eq!(st.trim(), "running");
    let out = s.ok(podman(
        &s,
        &[
            "exec",
            "p1",
            "sh",
            "-c",
            "echo from-exec; cat /proc/1/cmdline",
        ],
    ));
    assert!(out.starts_with("from-exec\nsh"), "{out:?}");
    s.code(podman(&s, &["exec", "p1", "sh", "-c", "exit 4"]), 4);
    // pause/unpause reach the runtime (podman asks it, then reads its state).
    s.ok(podman(&s, &["pause", "p1"]));
    let st = s.ok(podman(&s, &["inspect", "-f", "{{.State.Status}}", "p1"]));
    assert_eq!(st.trim(), "paused");
    s.ok(podman(&s, &["unpause", "p1"]));
    let st = s.ok(podman(&s, &["inspect", "-f", "{{.State.Status}}", "p1"]));
    assert_eq!(st.trim(), "running");
    // A terminal for an exec: conmon gets the pty master over --console-socket.
    let mut line = podman(
        &s,
        &["exec", "-it", "p1", "sh", "-c", "tty; echo exec-tty-ok"],
    );
    let out = s.ok(under_script(&mut line));
    assert!(
        out.contains("/dev/pts/") && out.contains("exec-tty-ok"),
        "{out:?}"
    );
    let t0 = Instant::now();
    s.ok(podman(&s, &["stop", "-t", "10", "p1"]));
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "SIGTERM did not stop it"
    );
    let code = s.ok(podman(&s, &["inspect", "-f", "{{.State.ExitCode}}", "p1"]));
    assert_eq!(code.trim(), "0", "the container's TERM trap did not run");
    s.ok(podman(&s, &["rm", "p1"]));
    // podman sends no --root: the state went to the runtime's default root and is gone.
    let argv = s.argv();
    assert!(!argv.contains("--root"), "{argv}");
    assert!(
        argv.lines()
            .any(|l| l.starts_with("exec ") && l.contains("--tty --console-socket")),
        "{argv}"
    );
    assert!(!default_root().join(&id).exists());
    assert!(s.ok(podman(&s, &["ps", "-aq"])).trim().is_empty());
    s.ok(podman(&s, &["rmi", "-a"]));
    eprintln!("runtime argv under podman:\n{argv}");
}
