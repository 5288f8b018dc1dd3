//! dockerd 20.10 with `--add-runtime rt=`: it drives rt through its own containerd and shim.

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
    need_or_skip!("dockerd", "docker", "containerd", "skopeo", "umoci");
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
        .arg(&s.cgroup)
        .args([
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip6tables=false",
        ])
        .args([
            "--storage-driver",
            "vfs",
            "--exec-opt",
            "native.cgroupdriver=cgroupfs",
        ]);
    if let Err(why) = s.start_daemon(cmd, |s| {
        s.path("d.sock").exists() && run(docker(s, &["version"])).status.success()
    }) {
        eprintln!("skip: dockerd cannot start here: {why}");
        return;
    }
    let info = s.ok(docker(&s, &["info", "--format", "{{json .Runtimes}}"]));
    assert!(info.contains(s.wrapper.to_str().unwrap()), "{info}");

    let layout = s.path("image");
    busybox_layout(&layout);
    let tar = s.path("image.tar");
    let mut c = clean_cmd("skopeo");
    c.arg("copy")
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!(
            "docker-archive:{}:rt-busybox:latest",
            tar.display()
        ));
    s.ok(c);
    let mut c = docker(&s, &["load", "-i"]);
    c.arg(&tar);
    assert!(s.ok(c).contains("rt-busybox:latest"));

    let rtrun = ["run", "--network", "none", "--runtime", "rt"];
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
    let top = s.ok(docker(&s, &["top", "d1"]));
    assert!(top.lines().next().unwrap().contains("PID"), "{top}");
    assert!(top.contains("sleep 1000"), "{top}");

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
    let limit_file = format!("{}/{id}/memory.limit_in_bytes", s.cgroup);
    let host = cgroup_dirs(&format!("{}/{id}", s.cgroup))
        .into_iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/memory/"));
    match host {
        Some(d) => {
            let v = fs::read_to_string(format!("{d}/memory.limit_in_bytes")).unwrap();
            assert_eq!(v.trim(), "67108864", "{limit_file}");
        }
        None => {
            // cgroup v2 host: memory.max
            let d = cgroup_dirs(&format!("{}/{id}", s.cgroup))
                .pop()
                .expect("container cgroup");
            let v = fs::read_to_string(format!("{d}/memory.max")).unwrap();
            assert_eq!(v.trim(), "67108864");
        }
    }

    let t0 = Instant::now();
    s.ok(docker(&s, &["stop", "-t", "10", "d1"]));
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "SIGTERM did not stop it"
    );
    assert_eq!(inspect("{{.State.ExitCode}}"), "0");
    s.ok(docker(&s, &["rm", "d1"]));
    assert!(s.ok(docker(&s, &["ps", "-aq"])).trim().is_empty());
    s.ok(docker(&s, &["rmi", "rt-busybox"]));
    eprintln!("runtime argv under dockerd:\n{}", s.argv());
}
