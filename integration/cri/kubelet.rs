//! One pod through every call kubelet makes in a pod's life, in kubelet's order.

use super::*;

/// A container that logs a line to each stream, then waits for SIGTERM and leaves cleanly.
const TRAPS_TERM: &[&str] = &[
    "sh",
    "-c",
    "echo out-line; echo err-line >&2; trap 'echo got-term; exit 0' TERM; \
     while true; do sleep 0.1; done",
];

#[test]
fn cri_kubelet_path() {
    let k = kube_or_skip!("kubelet");
    let v = k.ok(
        "Version",
        k.version(cri::VersionRequest {
            version: "v1".into(),
        }),
    );
    assert_eq!(v.runtime_name, "containerd");
    assert_eq!(v.runtime_api_version, "v1");
    let st = k.ok("Status", k.status(cri::StatusRequest { verbose: false }));
    let conds = st.status.unwrap().conditions;
    for want in ["RuntimeReady", "NetworkReady"] {
        let c = conds.iter().find(|c| c.r#type == want);
        assert!(c.is_some_and(|c| c.status), "{want} in {conds:#?}");
    }
    let images = k.ok(
        "ListImages",
        k.list_images(cri::ListImagesRequest { filter: None }),
    );
    let tags: Vec<&String> = images.images.iter().flat_map(|i| &i.repo_tags).collect();
    for want in [BUSYBOX, PAUSE] {
        assert!(tags.iter().any(|t| *t == want), "{want} not in {tags:?}");
        let r = k.image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: want.into(),
                ..Default::default()
            }),
            verbose: false,
        });
        assert!(k.ok("ImageStatus", r).image.is_some(), "{want}");
    }

    let pod = k.run_pod(k.pod_config("web", false), "rt");
    let r = k.pod_sandbox_status(cri::PodSandboxStatusRequest {
        pod_sandbox_id: pod.id.clone(),
        verbose: false,
    });
    let ps = k.ok("PodSandboxStatus", r).status.unwrap();
    assert_eq!(ps.state, cri::PodSandboxState::SandboxReady as i32);
    assert_eq!(ps.runtime_handler, "rt");
    let ip = ps.network.unwrap().ip;
    assert!(ip.starts_with(&format!("{SUBNET}.")), "pod ip {ip}");
    // The sandbox itself was made by the runtime under test.
    let argv = k.scene().argv();
    assert!(
        argv.lines()
            .any(|l| l.contains(" create --bundle ") && l.ends_with(&pod.id)),
        "the handler's runtime did not create the sandbox: {argv}"
    );

    let id = k.run_container(
        &pod,
        Spec {
            name: "app",
            args: TRAPS_TERM,
            ..Default::default()
        },
    );
    let st = k.wait_state(&id, cri::ContainerState::ContainerRunning);
    assert!(st.started_at > 0, "{st:#?}");
    assert_eq!(st.metadata.as_ref().unwrap().name, "app");
    let list = k.ok(
        "ListContainers",
        k.list_containers(cri::ListContainersRequest { filter: None }),
    );
    assert!(list.containers.iter().any(|c| c.id == id), "{list:#?}");

    // ExecSync: exit code and both streams.
    let (code, out, err) = k.exec_in(&id, &["sh", "-c", "echo hi; echo oops >&2; exit 5"]);
    assert_eq!((code, out.as_str(), err.as_str()), (5, "hi\n", "oops\n"));
    assert_eq!(k.sh(&id, "hostname"), "web\n");
    // A probe whose binary is missing: an error, with the runtime's reason.
    let e = k
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["nope".into()],
            timeout: 5,
        })
        .expect_err("exec of a missing binary");
    assert!(
        e.message()
            .ends_with("exec: \"nope\": executable file not found in $PATH: unknown"),
        "{e:?}"
    );
    // An exec probe that overruns its timeout: containerd kills it and says so.
    let r = k.exec_sync(cri::ExecSyncRequest {
        container_id: id.clone(),
        cmd: vec!["sleep".into(), "77".into()],
        timeout: 1,
    });
    let e = r.expect_err("sleep 77 beat a 1 s timeout");
    assert!(e.message().contains("timeout"), "{e:?}");
    wait_for("the timed-out exec gone", || {
        (!k.sh(&id, "ps -o args").contains("sleep 77")).then_some(())
    });
    // Exec hands out a URL of containerd's streaming server (kubelet proxies it).
    let r = k.exec(cri::ExecRequest {
        container_id: id.clone(),
        cmd: vec!["true".into()],
        stdout: true,
        ..Default::default()
    });
    let url = k.ok("Exec", r).url;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // The log, in CRI format, where kubelet asked for it.
    let log = Path::new(&pod.config.log_directory).join("app/0.log");
    let lines = wait_for("both log lines", || {
        let l = cri_log(&log);
        (l.len() >= 2).then_some(l)
    });
    for (stream, msg) in [("stdout", "out-line"), ("stderr", "err-line")] {
        assert!(
            lines
                .iter()
                .any(|(s, tag, m)| s == stream && tag == "F" && m == msg),
            "{stream} {msg} not in {lines:?}"
        );
    }

    // UpdateContainerResources lands in the cgroup (runtime `update`).
    let cg = k.cgroup_of(&pod, &id, k.pid(&id));
    k.cgroup_of(&pod, &pod.id, sandbox_pid(&k, &pod));
    let r = k.update_container_resources(cri::UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(cri::LinuxContainerResources {
            memory_limit_in_bytes: 96 << 20,
            cpu_period: 100_000,
            cpu_quota: 30_000,
            cpu_shares: 256,
            ..Default::default()
        }),
        ..Default::default()
    });
    k.ok("UpdateContainerResources", r);
    cg.assert_limits(96 << 20, 30_000, 100_000, 256);
    let argv = k.scene().argv();
    assert!(
        argv.lines()
            .any(|l| l.contains("update --resources -") && l.ends_with(&id)),
        "{argv}"
    );

    // ContainerStats: the shim reads the container's cgroup.
    k.sh(&id, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done");
    let r = k.container_stats(cri::ContainerStatsRequest {
        container_id: id.clone(),
    });
    let stats = k.ok("ContainerStats", r).stats.unwrap();
    assert_eq!(stats.attributes.as_ref().unwrap().id, id);
    let cpu = stats.cpu.unwrap().usage_core_nano_seconds.unwrap().value;
    let mem = stats.memory.unwrap().working_set_bytes.unwrap().value;
    assert!(cpu > 0 && mem > 0, "cpu {cpu} ns, working set {mem} B");

    // StopContainer: SIGTERM, which this container traps and leaves on: well within grace.
    let t = Instant::now();
    k.stop(&id, 20);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let st = k.wait_state(&id, cri::ContainerState::ContainerExited);
    assert_eq!(
        (st.exit_code, st.reason.as_str()),
        (0, "Completed"),
        "{st:#?}"
    );
    assert!(st.finished_at >= st.started_at);
    let lines = cri_log(&log);
    assert!(lines.iter().any(|l| l.2 == "got-term"), "{lines:?}");
    k.remove(&id);
    let list = k.ok(
        "ListContainers",
        k.list_containers(cri::ListContainersRequest { filter: None }),
    );
    assert!(!list.containers.iter().any(|c| c.id == id), "{list:#?}");

    // A pid 1 without a SIGTERM handler ignores it: SIGKILL when the grace period ends.
    let id = k.run_container(
        &pod,
        Spec {
            name: "stubborn",
            args: &["sleep", "1000"],
            ..Default::default()
        },
    );
    k.wait_state(&id, cri::ContainerState::ContainerRunning);
    let t = Instant::now();
    k.stop(&id, 1);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "killed before its grace: {took:?}"
    );
    let st = k.wait_state(&id, cri::ContainerState::ContainerExited);
    assert_eq!(
        (st.exit_code, st.reason.as_str()),
        (137, "Error"),
        "{st:#?}"
    );
    k.remove(&id);

    k.remove_pod(&pod);
}
