//! The pod shapes kubelet sends, one test each: what the containers saw, checked from inside
//! (ExecSync) and from the host (their /proc and cgroups).

use super::*;

#[test]
fn cri_two_containers_share_the_pods_network_and_ipc() {
    let k = kube_or_skip!("share");
    let pod = k.run_pod(k.pod_config("duo", false), "rt");
    let sandbox = sandbox_pid(&k, &pod);
    let spec = |name| Spec {
        name,
        args: SLEEPS,
        ..Default::default()
    };
    let (a, pa) = running(&k, &pod, spec("a"));
    let (b, pb) = running(&k, &pod, spec("b"));
    let me = std::process::id() as i32;
    // Joined by path through the sandbox: the pause container's network, IPC and UTS.
    for kind in ["net", "ipc", "uts"] {
        assert_eq!(ns(pa, kind), ns(sandbox, kind), "{kind} of a");
        assert_eq!(ns(pb, kind), ns(sandbox, kind), "{kind} of b");
        assert_ne!(ns(pa, kind), ns(me, kind), "{kind} is the host's");
    }
    // Each its own pids and mounts.
    for kind in ["pid", "mnt"] {
        assert_ne!(ns(pa, kind), ns(pb, kind), "{kind} shared");
        assert_ne!(
            ns(pa, kind),
            ns(sandbox, kind),
            "{kind} shared with the sandbox"
        );
    }
    assert_eq!(
        k.sh(&a, "cat /proc/1/cmdline | tr '\\0' ' '"),
        "sleep 1000 "
    );
    // IPC: the pod's /dev/shm is one tmpfs.
    k.sh(&a, "echo from-a > /dev/shm/note");
    assert_eq!(k.sh(&b, "cat /dev/shm/note"), "from-a\n");
    // Network: b reaches a's listener on the pod's loopback.
    k.sh(&a, "nc -l -p 7777 -e echo hello-from-a >/dev/null 2>&1 &");
    let got = wait_for("a's listener", || {
        let (code, out, _) = k.exec_in(&b, &["nc", "127.0.0.1", "7777"]);
        (code == 0 && !out.is_empty()).then_some(out)
    });
    assert_eq!(got, "hello-from-a\n");
    assert_eq!(k.sh(&b, "hostname"), "duo\n");
    stop_remove(&k, &[&a, &b]);
    k.remove_pod(&pod);
}

#[test]
fn cri_host_network_pod() {
    let k = kube_or_skip!("hostnet");
    let pod = k.run_pod(k.pod_config("hostnet", true), "rt");
    let (c, pid) = running(
        &k,
        &pod,
        Spec {
            name: "c",
            args: SLEEPS,
            ..Default::default()
        },
    );
    let me = std::process::id() as i32;
    assert_eq!(ns(pid, "net"), ns(me, "net"), "not the host's network");
    assert_eq!(ns(pid, "uts"), ns(me, "uts"), "not the host's UTS");
    assert_ne!(ns(pid, "ipc"), ns(me, "ipc"), "host IPC was not asked for");
    let host = nix::unistd::gethostname().unwrap();
    assert_eq!(k.sh(&c, "hostname").trim(), host.to_str().unwrap());
    // The host's interfaces (but the veths other pods on this host may be adding and
    // removing meanwhile), and no veth on the pods' bridge for this pod.
    let links = k.sh(&c, "ls /sys/class/net");
    let host: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("veth"))
        .collect();
    assert!(host.iter().any(|l| l == "lo"), "{host:?}");
    for l in &host {
        assert!(
            links.lines().any(|c| c == l),
            "{l} not in the pod's {links}"
        );
    }
    assert_eq!(
        k.bridge_links(),
        Vec::<String>::new(),
        "a host-network pod got a veth"
    );
    stop_remove(&k, &[&c]);
    k.remove_pod(&pod);
}

#[test]
fn cri_bridge_network_pods_reach_each_other() {
    let k = kube_or_skip!("bridge");
    let p1 = k.run_pod(k.pod_config("one", false), "rt");
    let p2 = k.run_pod(k.pod_config("two", false), "rt");
    let (ip1, ip2) = (k.pod_ip(&p1), k.pod_ip(&p2));
    for ip in [&ip1, &ip2] {
        assert!(ip.starts_with(&format!("{SUBNET}.")), "pod ip {ip}");
    }
    assert_ne!(ip1, ip2);
    let spec = |name| Spec {
        name,
        args: SLEEPS,
        ..Default::default()
    };
    let (c1, _) = running(&k, &p1, spec("c1"));
    let (c2, _) = running(&k, &p2, spec("c2"));
    let addr = k.sh(&c1, "ip -4 -o addr show eth0");
    assert!(addr.contains(&format!(" {ip1}/24 ")), "{addr}");
    // Two veths on the test's bridge, which has no address of its own.
    let veths = k.bridge_links();
    assert_eq!(veths.len(), 2, "{veths:#?}");
    let br = run({
        let mut c = Command::new("ip");
        c.args(["-o", "-4", "addr", "show", "dev", &k.bridge]);
        c
    });
    assert_eq!(br.stdout, "", "the bridge got an address on the host");
    // Pod to pod over the bridge.
    k.sh(
        &c1,
        "nc -l -p 8080 -e echo hello-from-one >/dev/null 2>&1 &",
    );
    let got = wait_for("pod one's listener", || {
        let (code, out, _) = k.exec_in(&c2, &["nc", "-w", "2", &ip1, "8080"]);
        (code == 0 && !out.is_empty()).then_some(out)
    });
    assert_eq!(got, "hello-from-one\n");
    stop_remove(&k, &[&c1, &c2]);
    k.remove_pod(&p1);
    k.remove_pod(&p2);
}

#[test]
fn cri_resource_limits_land_in_the_cgroup() {
    let k = kube_or_skip!("limits");
    let pod = k.run_pod(k.pod_config("limits", false), "rt");
    let (c, pid) = running(
        &k,
        &pod,
        Spec {
            name: "c",
            args: SLEEPS,
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                cpu_period: 100_000,
                cpu_quota: 50_000,
                cpu_shares: 512,
                oom_score_adj: 900,
                cpuset_cpus: "0".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let cg = k.cgroup_of(&pod, &c, pid);
    k.cgroup_of(&pod, &pod.id, sandbox_pid(&k, &pod));
    cg.assert_limits(64 << 20, 50_000, 100_000, 512);
    assert_eq!(cg.read("cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap()
            .trim(),
        "900"
    );
    // The container is in that cgroup, and sees its own limit.
    let procs = cg.read("memory", "cgroup.procs", "cgroup.procs");
    assert!(procs.lines().any(|p| p == pid.to_string()), "{procs}");
    let mem = (64u64 << 20).to_string();
    let own = if cgroup_v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    assert_eq!(k.sh(&c, &format!("cat {own}")).trim(), mem);
    stop_remove(&k, &[&c]);
    k.remove_pod(&pod);
}

#[test]
fn cri_oom_killed_container_reports_oomkilled() {
    let k = kube_or_skip!("oom");
    let pod = k.run_pod(k.pod_config("oom", false), "rt");
    let id = k.run_container(
        &pod,
        Spec {
            name: "hog",
            // dd's one 64 MiB buffer, filled from /dev/zero, under a 16 MiB limit. Once the
            // test says so: the shim watches the cgroup's OOM events only once the runtime's
            // `start` has returned, and an OOM before that is reported as a plain `Error` (seen
            // with runc on a loaded machine and in the emulated guest).
            args: &[
                "sh",
                "-c",
                "while [ ! -e /tmp/go ]; do sleep 0.1; done; \
                 exec dd if=/dev/zero of=/dev/null bs=64M count=1",
            ],
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 16 << 20,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    // StartContainer has returned: the shim watches the OOM events now.
    k.sh(&id, "touch /tmp/go");
    let st = k.wait_state(&id, cri::ContainerState::ContainerExited);
    assert_eq!(st.exit_code, 137, "{st:#?}\n{}", k.scene().story());
    // The shim's OOM event and its exit event reach containerd in either order; kubelet
    // sees the reason on a later poll.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut st = st;
    while st.reason != "OOMKilled" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        st = k.ctr_status(&id).0;
    }
    assert_eq!(st.reason, "OOMKilled", "{st:#?}\n{}", k.scene().story());
    k.remove(&id);
    k.remove_pod(&pod);
}

#[test]
fn cri_exited_container_is_recreated_as_kubelet_restarts_it() {
    let k = kube_or_skip!("restart");
    let pod = k.run_pod(k.pod_config("restart", false), "rt");
    let job = |attempt, args| Spec {
        name: "job",
        attempt,
        args,
        ..Default::default()
    };
    let first = k.run_container(&pod, job(0, &["sh", "-c", "echo attempt; exit 3"]));
    let st = k.wait_state(&first, cri::ContainerState::ContainerExited);
    assert_eq!((st.exit_code, st.reason.as_str()), (3, "Error"), "{st:#?}");
    // Both set; not ordered: containerd stamps started_at after StartContainer's task start
    // returns, and a process this short may have exited by then.
    assert!(st.finished_at > 0 && st.started_at > 0, "{st:#?}");
    // The restart: a new container of the same name, the next attempt, in the same sandbox.
    let second = k.run_container(&pod, job(1, &["sh", "-c", "echo attempt; exec sleep 1000"]));
    let st = k.wait_state(&second, cri::ContainerState::ContainerRunning);
    assert_eq!(st.metadata.unwrap().attempt, 1);
    assert_eq!(
        k.state(&first),
        cri::ContainerState::ContainerExited,
        "the dead one stays until kubelet collects it"
    );
    let logs = Path::new(&pod.config.log_directory).join("job");
    for n in ["0.log", "1.log"] {
        let lines = wait_for(n, || {
            let l = cri_log(&logs.join(n));
            (!l.is_empty()).then_some(l)
        });
        assert_eq!(lines[0].2, "attempt", "{n}: {lines:?}");
    }
    // kubelet's garbage collection of the dead attempt, then the pod's end.
    k.remove(&first);
    stop_remove(&k, &[&second]);
    k.remove_pod(&pod);
}

/// What kubelet shows for a container whose binary cannot run: StartContainer fails with the
/// runtime's error, and the container is EXITED with 128 and `StartError`, the runtime's
/// message in it (from the `--log` file the shim reads).
#[test]
fn cri_container_that_cannot_start_reports_start_error() {
    let k = kube_or_skip!("starterr");
    let pod = k.run_pod(k.pod_config("starterr", false), "rt");
    for (path, why) in [
        ("/etc/passwd", "permission denied"),
        ("/nope", "stat /nope: no such file or directory"),
    ] {
        let id = k.create(
            &pod,
            Spec {
                name: "bad",
                args: &[path],
                ..Default::default()
            },
        );
        let e = k
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .expect_err("a container without a binary started");
        let want = format!("exec: \"{path}\": {why}: unknown");
        assert!(e.message().ends_with(&want), "{e:?}");
        let (st, _) = k.ctr_status(&id);
        assert_eq!(st.state, cri::ContainerState::ContainerExited as i32);
        assert_eq!((st.exit_code, st.reason.as_str()), (128, "StartError"));
        assert!(st.message.ends_with(&want), "{st:#?}");
        k.remove(&id);
    }
    k.remove_pod(&pod);
}
