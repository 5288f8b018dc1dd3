//! podman 4.3 (through conmon) with `--runtime`: no `--root`, so the default root is used.
//! Its cgroup manager is cgroupfs, or under the systemd driver its default, systemd, which
//! makes each container the scope `libpod-<id>.scope` in the `--cgroup-parent` slice.

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
        .arg(d.join("net"));
    if s.slice.is_none() {
        c.args(["--cgroup-manager", "cgroupfs"]);
    }
    c.args(["--events-backend", "file"])
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
        s.slice.as_deref().unwrap_or(&s.cgroup),
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn podman_drives_the_runtime() {
    need_or_skip!("podman", "conmon", "script");
    if let Err(why) = images::need_images(false) {
        eprintln!("skip: {why}");
        return;
    }
    let s = Scene::new("podman", &["conmon"]);
    // The driver is podman's own choice under systemd: its default must be systemd.
    let manager = s.ok(podman(&s, &["info", "--format", "{{.Host.CgroupManager}}"]));
    let want = if s.slice.is_some() {
        "systemd"
    } else {
        "cgroupfs"
    };
    assert_eq!(manager.trim(), want);
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
    let pid = s.ok(podman(&s, &["inspect", "-f", "{{.State.Pid}}", "p1"]));
    // libpod-<id> with either manager (a scope under systemd)
    s.assert_container_cgroup(pid.trim().parse().unwrap(), &format!("libpod-{id}"));
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
    // SIGTERM stops it well before the grace period ends in a SIGKILL (exit code 137); the
    // grace is long for an emulated guest, where a podman command alone takes seconds.
    let t0 = Instant::now();
    s.ok(podman(&s, &["stop", "-t", "30", "p1"]));
    assert!(
        t0.elapsed() < Duration::from_secs(30),
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

/// Rootless podman (a user the test makes, with subordinate ids) with `--runtime`: podman runs
/// the runtime as root in podman's own user namespace, with `XDG_RUNTIME_DIR` set and no
/// `--root`, and a config without a user namespace; on this v1 host with `--cgroup-manager
/// cgroupfs`, where podman sends no cgroupsPath, so the runtime goes without a cgroup.
fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn rootless_podman_drives_the_runtime() {
    need_or_skip!("podman", "conmon", "newuidmap");
    if let Err(why) = images::need_images(false) {
        eprintln!("skip: {why}");
        return;
    }
    let Some(u) = crate::rootless::harness::User::new() else {
        return;
    };
    if u.subids().is_none() {
        eprintln!(
            "skip: useradd gave {} no subordinate ids, which rootless podman needs",
            u.name
        );
        return;
    }
    // lower case only: podman names an image pulled from `oci:DIR` after DIR
    let dir = tempfile::Builder::new()
        .prefix(&format!("rt-peers-rlpodman-{}", std::process::id()))
        .rand_bytes(0)
        .tempdir()
        .unwrap();
    let d = dir.path();
    busybox_layout(&d.join("image"));
    let wrapper = d.join("rt-wrapper");
    let argv_log = d.join("argv.log");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            argv_log.display(),
            rt_bin().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(&argv_log, "").unwrap();
    let xdg = d.join("xdg");
    fs::create_dir(&xdg).unwrap();
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
    let st = Command::new("chown")
        .args(["-R", &format!("{}:{}", u.uid, u.gid)])
        .arg(d)
        .status()
        .unwrap();
    assert!(st.success());
    let podman = |args: &[&str]| {
        let at = |rel: &str| d.join(rel).display().to_string();
        let mut all: Vec<String> = vec![
            "--root".into(),
            at("root"),
            "--runroot".into(),
            at("runroot"),
            "--tmpdir".into(),
            at("tmp"),
        ];
        all.extend(
            ["--cgroup-manager", "cgroupfs", "--events-backend", "file"]
                .into_iter()
                .chain(["--storage-driver", "vfs", "--runtime"])
                .map(String::from),
        );
        all.push(wrapper.display().to_string());
        all.extend(args.iter().map(|s| s.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut c = u.command(Path::new("/usr/bin/podman"), &all, d, &[]);
        c.env("HOME", d.join("home"))
            .env("XDG_RUNTIME_DIR", &xdg)
            .env("XDG_CONFIG_HOME", d.join("home/.config"))
            .env("XDG_DATA_HOME", d.join("home/.local/share"));
        run(c)
    };
    let info = podman(&["info", "--format", "{{.Host.Security.Rootless}}"]);
    if !info.status.success() || info.stdout.trim() != "true" {
        eprintln!("skip: rootless podman cannot work on this host: {info:#?}");
        return;
    }
    let ok = |args: &[&str]| {
        let out = podman(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {out:#?}\n--- runtime argv:\n{}",
            fs::read_to_string(&argv_log).unwrap_or_default()
        );
        out.stdout
    };
    let layout = format!("oci:{}:latest", d.join("image").display());
    let image = ok(&["pull", "-q", &layout]).trim().to_string();
    let flags = ["--network", "none"];
    let with = |pre: &[&str], post: &[&str]| -> Vec<String> {
        pre.iter()
            .chain(&flags)
            .chain(&[image.as_str()])
            .chain(post)
            .map(|s| s.to_string())
            .collect()
    };
    assert_eq!(ok(&strs(&with(&["run", "--rm"], &["echo", "ok"]))), "ok\n");
    let out = podman(&strs(&with(&["run", "--rm"], &["sh", "-c", "exit 3"])));
    assert_eq!(out.status.code(), Some(3), "{out:#?}");
    let id = ok(&strs(&with(
        &["run", "-d", "--name", "p1"],
        &["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"],
    )))
    .trim()
    .to_string();
    // root in podman's namespace, which maps the user and its subordinate ids
    let out = ok(&[
        "exec",
        "p1",
        "sh",
        "-c",
        "echo from-exec; id -u; cat /proc/self/uid_map",
    ]);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[..2], ["from-exec", "0"], "{out}");
    assert_eq!(lines[2], format!("0 {} 1", u.uid), "{out}");
    let out = podman(&["exec", "p1", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{out:#?}");
    let t0 = Instant::now();
    ok(&["stop", "-t", "10", "p1"]);
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "SIGTERM did not stop it"
    );
    assert_eq!(
        ok(&["inspect", "-f", "{{.State.ExitCode}}", "p1"]).trim(),
        "0"
    );
    ok(&["rm", "p1"]);
    assert!(ok(&["ps", "-aq"]).trim().is_empty());
    ok(&["rmi", "-a"]);
    let argv = fs::read_to_string(&argv_log).unwrap();
    assert!(!argv.contains("--root"), "{argv}");
    // the runtime's state went to podman's XDG_RUNTIME_DIR, and is gone
    let root = xdg.join(u.state_root().file_name().unwrap());
    assert!(root.is_dir(), "{argv}");
    assert!(fs::read_dir(&root).unwrap().next().is_none(), "{argv}");
    assert!(!root.join(&id).exists());
    // podman keeps a process holding its user namespace; it is this test's to end
    if let Ok(pid) = fs::read_to_string(d.join("tmp/pause.pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
    }
    eprintln!("runtime argv under rootless podman:\n{argv}");
}
