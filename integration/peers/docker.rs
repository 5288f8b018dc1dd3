//! dockerd 20.10 with `--add-runtime rt=`: it drives rt through its own containerd and shim.
//! Its cgroup driver is cgroupfs, or under the systemd driver its default on cgroup v2,
//! systemd, which makes each container the scope `docker-<id>.scope` in the
//! `--cgroup-parent` slice.

use super::*;

fn docker_cli() -> PathBuf {
    // Debian's CLI matches Debian's dockerd; another docker earlier in PATH may not.
    let deb = PathBuf::from("/usr/bin/docker");
    if deb.is_file() {
        deb
    } else {
        find_bin("docker").unwrap_or(deb)
    }
}

fn docker(s: &Scene, args: &[&str]) -> Command {
    let mut c = clean_cmd(docker_cli());
    c.env("DOCKER_CONFIG", s.path("cli"))
        .arg("-H")
        .arg(format!("unix://{}", s.path("d.sock").display()))
        .args(args);
    c
}

#[test]
fn dockerd_drives_the_runtime() {
    need_or_skip!("dockerd", "docker", "containerd");
    if let Err(why) = images::need_images(true) {
        eprintln!("skip: {why}");
        return;
    }
    let mut s = Scene::new("docker", &[]);
    s.runtime_roots.push(s.path("exec/runtime-runc"));
    s.shim_owners
        .push((s.path("exec/containerd/containerd.sock"), "moby"));
    let mut cmd = clean_cmd("dockerd");
    let d = s.dir.path();
    cmd.arg("--data-root")
        .arg(d.join("data"))
        .arg("--exec-root")
        .arg(d.join("exec"))
        .arg("--pidfile")
        .arg(d.join("docker.pid"))
        .arg("-H")
        .arg(format!("unix://{}", d.join("d.sock").display()))
        .arg("--add-runtime")
        .arg(format!("rt={}", s.wrapper.display()))
        .arg("--cgroup-parent")
        .arg(s.slice.as_deref().unwrap_or(&s.cgroup))
        .args([
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip6tables=false",
        ])
        .args(["--storage-driver", "vfs"]);
    if s.slice.is_none() {
        cmd.args(["--exec-opt", "native.cgroupdriver=cgroupfs"]);
    }
    if let Err(why) = s.start_daemon(cmd, |s| {
        s.path("d.sock").exists() && run(docker(s, &["version"])).status.success()
    }) {
        eprintln!("skip: dockerd cannot start here: {why}");
        return;
    }
    let info = s.ok(docker(&s, &["info", "--format", "{{json .Runtimes}}"]));
    assert!(info.contains(s.wrapper.to_str().unwrap()), "{info}");
    // Under systemd the driver is dockerd's own default (systemd on cgroup v2).
    let driver = s.ok(docker(&s, &["info", "--format", "{{.CgroupDriver}}"]));
    let want = if s.slice.is_some() {
        "systemd"
    } else {
        "cgroupfs"
    };
    assert_eq!(driver.trim(), want);

    let tar = images::docker_archive(s.dir.path());
    let mut c = docker(&s, &["load", "-i"]);
    c.arg(&tar);
    assert!(s.ok(c).contains("rt-busybox:latest"));

    let mut rtrun = vec!["run", "--network", "none", "--runtime", "rt"];
    // A kernel with AppArmor on (Debian's) makes dockerd load its docker-default profile with
    // apparmor_parser, which a host without the apparmor package lacks (the v2 guest): the
    // container goes unconfined, as the runtime is then told.
    if apparmor_without_parser() {
        rtrun.extend(["--security-opt", "apparmor=unconfined"]);
    }
    let mut a = rtrun.to_vec();
    a.extend(["--rm", "rt-busybox", "echo", "hi"]);
    assert_eq!(s.ok(docker(&s, &a)), "hi\n");
    let mut a = rtrun.to_vec();
    a.extend(["--rm", "rt-busybox", "sh", "-c", "exit 5"]);
    s.code(docker(&s, &a), 5);
    // -t without -i needs no terminal on the client side: the pty is the runtime's.
    let mut a = rtrun.to_vec();
    a.extend([
        "--rm",
        "-t",
        "rt-busybox",
        "sh",
        "-c",
        "tty; [ -t 1 ] && echo stdout-is-a-tty",
    ]);
    let out = s.ok(docker(&s, &a));
    assert!(
        out.contains("/dev/pts/") && out.contains("stdout-is-a-tty"),
        "{out:?}"
    );

    let mut a = rtrun.to_vec();
    a.extend([
        "-d",
        "--name",
        "d1",
        "rt-busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 1000 & wait",
    ]);
    let id = s.ok(docker(&s, &a)).trim().to_string();
    let inspect = |f: &str| {
        s.ok(docker(&s, &["inspect", "-f", f, "d1"]))
            .trim()
            .to_string()
    };
    assert_eq!(inspect("{{.State.Status}}"), "running");
    assert_eq!(inspect("{{.HostConfig.Runtime}}"), "rt");
    let pid: i64 = inspect("{{.State.Pid}}").parse().unwrap();
    // the id under cgroupfs, the scope docker-<id>.scope under systemd
    let name = match s.slice {
        Some(_) => format!("docker-{id}"),
        None => id.clone(),
    };
    s.assert_container_cgroup(pid, &name);
    let rt_state = |id: &str| {
        let root = s.path("exec/runtime-runc/moby");
        let out = run(rt_cmd(&root, Path::new("/"), &["state", id]));
        assert!(out.status.success(), "{}", s.context(&out));
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    };
    assert_eq!(rt_state(&id), "running");

    assert_eq!(
        s.ok(docker(&s, &["exec", "d1", "echo", "from-exec"])),
        "from-exec\n"
    );
    s.code(docker(&s, &["exec", "d1", "sh", "-c", "exit 6"]), 6);
    // top: dockerd asks the runtime's `ps` for the pids, then runs the host's ps on them,
    // which a host without procps (the v2 guest) lacks.
    if find_bin("ps").is_some() {
        let top = s.ok(docker(&s, &["top", "d1"]));
        assert!(top.lines().next().unwrap().contains("PID"), "{top}");
        assert!(top.contains("sleep 1000"), "{top}");
    } else {
        let out = run(docker(&s, &["top", "d1"]));
        assert!(
            out.stderr.contains("\"ps\": executable file not found"),
            "{out:#?}"
        );
    }
    let argv = s.argv();
    assert!(
        argv.lines()
            .any(|l| l.contains(" ps --format json ") && l.ends_with(&id)),
        "{argv}"
    );

    s.ok(docker(&s, &["pause", "d1"]));
    assert_eq!(inspect("{{.State.Status}}"), "paused");
    assert_eq!(rt_state(&id), "paused");
    s.ok(docker(&s, &["unpause", "d1"]));
    assert_eq!(inspect("{{.State.Status}}"), "running");
    assert_eq!(rt_state(&id), "running");

    s.ok(docker(
        &s,
        &["update", "--memory", "64m", "--memory-swap", "128m", "d1"],
    ));
    let cg = s.container_cgroup(&name);
    let v1 = format!("/sys/fs/cgroup/memory{cg}/memory.limit_in_bytes");
    let (file, want) = if Path::new(&v1).exists() {
        (v1, "67108864")
    } else {
        // cgroup v2: memory.max, and the swap limit is memory+swap minus memory
        let max = format!("/sys/fs/cgroup{cg}/memory.max");
        let swap = fs::read_to_string(format!("/sys/fs/cgroup{cg}/memory.swap.max")).unwrap();
        assert_eq!(swap.trim(), "67108864", "memory.swap.max of {cg}");
        (max, "67108864")
    };
    let v = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(v.trim(), want, "{file}");

    // SIGTERM stops it well before the grace period ends in a SIGKILL (exit code 137); the
    // grace is long for an emulated guest, where a docker command alone takes seconds.
    let t0 = Instant::now();
    s.ok(docker(&s, &["stop", "-t", "30", "d1"]));
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "SIGTERM did not stop it"
    );
    assert_eq!(inspect("{{.State.ExitCode}}"), "0");
    s.ok(docker(&s, &["rm", "d1"]));
    assert!(s.ok(docker(&s, &["ps", "-aq"])).trim().is_empty());
    s.ok(docker(&s, &["rmi", "rt-busybox"]));
    eprintln!("runtime argv under dockerd:\n{}", s.argv());
}

/// AppArmor on in the kernel, and no apparmor_parser to load a profile with.
fn apparmor_without_parser() -> bool {
    let on = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y");
    on && find_bin("apparmor_parser").is_none()
}
