//! The security contexts kubelet sends: read-only rootfs, run_as_user, seccomp profiles,
//! capabilities, privileged pods, and the mounts, env and sysctls it adds to every container.

use super::*;

#[test]
fn cri_read_only_rootfs() {
    let k = kube_or_skip!("rofs");
    let pod = k.run_pod(k.pod_config("rofs", false), "rt");
    let (c, _) = running(
        &k,
        &pod,
        Spec {
            name: "c",
            args: SLEEPS,
            security: cri::LinuxContainerSecurityContext {
                readonly_rootfs: true,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let (code, _, err) = k.exec_in(&c, &["touch", "/new-file"]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    let root = k.sh(&c, "grep ' / / ' /proc/self/mountinfo");
    assert!(root.split(' ').nth(5).unwrap().starts_with("ro"), "{root}");
    // What kubelet mounts for the pod stays writable: the pod's shm.
    k.sh(&c, "touch /dev/shm/ok");
    stop_remove(&k, &[&c]);
    k.remove_pod(&pod);
}

#[test]
fn cri_non_root_run_as_user() {
    let k = kube_or_skip!("user");
    let pod = k.run_pod(k.pod_config("user", false), "rt");
    let (c, pid) = running(
        &k,
        &pod,
        Spec {
            name: "c",
            args: SLEEPS,
            security: cri::LinuxContainerSecurityContext {
                run_as_user: Some(cri::Int64Value { value: 65534 }),
                run_as_group: Some(cri::Int64Value { value: 65534 }),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    for key in ["Uid", "Gid"] {
        let ids: Vec<String> = proc_status(pid, key)
            .split_whitespace()
            .map(String::from)
            .collect();
        assert_eq!(ids, ["65534"; 4], "{key}");
    }
    // A non-root process keeps no effective capabilities.
    assert_eq!(proc_status(pid, "CapEff"), "0000000000000000");
    // ExecSync runs as the container's user too.
    assert_eq!(k.sh(&c, "id -u; id -g"), "65534\n65534\n");
    let (code, _, err) = k.exec_in(&c, &["touch", "/root/x"]);
    assert_ne!(code, 0, "{err}");
    stop_remove(&k, &[&c]);
    k.remove_pod(&pod);
}

#[test]
fn cri_runtime_default_seccomp() {
    let k = kube_or_skip!("seccomp");
    let pod = k.run_pod(k.pod_config("seccomp", false), "rt");
    let (def, pdef) = running(
        &k,
        &pod,
        Spec {
            name: "default",
            args: SLEEPS,
            security: cri::LinuxContainerSecurityContext {
                seccomp: Some(cri::SecurityProfile {
                    profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    // kubelet's "Unconfined": the same container without the profile, to show what it stops.
    let (unc, punc) = running(
        &k,
        &pod,
        Spec {
            name: "unconfined",
            args: SLEEPS,
            security: cri::LinuxContainerSecurityContext {
                seccomp: Some(cri::SecurityProfile {
                    profile_type: cri::security_profile::ProfileType::Unconfined as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_eq!(proc_status(pdef, "Seccomp"), "2");
    assert_eq!(proc_status(punc, "Seccomp"), "0");
    // containerd's default profile allows unshare only with CAP_SYS_ADMIN; a new user
    // namespace needs no capability, so only the filter refuses it.
    let (code, _, err) = k.exec_in(&def, &["unshare", "-U", "true"]);
    assert_ne!(code, 0, "unshare passed the default profile");
    assert!(err.contains("Operation not permitted"), "{err}");
    let (code, _, err) = k.exec_in(&unc, &["unshare", "-U", "true"]);
    assert_eq!(code, 0, "unconfined unshare -U: {err}");
    // ExecSync processes get the container's filter too.
    assert_eq!(
        k.sh(&def, "grep Seccomp: /proc/self/status | tr -d ' \\t'"),
        "Seccomp:2\n"
    );
    stop_remove(&k, &[&def, &unc]);
    k.remove_pod(&pod);
}

/// What kubelet adds to every container: file bind mounts where the image has nothing
/// (`/dev/termination-log`, on the runtime's /dev tmpfs), over image files (`/etc/hosts`),
/// volumes (an emptyDir, a read-only hostPath), a working dir the image lacks, env, the pod's
/// namespaced sysctls, and capabilities dropped to ALL plus one.
#[test]
fn cri_kubelet_mounts_sysctls_and_capabilities() {
    let k = kube_or_skip!("mounts");
    let mut config = k.pod_config("mounts", false);
    let sysctls = &mut config.linux.as_mut().unwrap().sysctls;
    sysctls.insert("kernel.shm_rmid_forced".into(), "1".into());
    sysctls.insert("net.ipv4.ip_local_port_range".into(), "20000 30000".into());
    let pod = k.run_pod(config, "rt");
    let host = k.path("volumes");
    fs::create_dir_all(host.join("empty")).unwrap();
    fs::create_dir_all(host.join("ro")).unwrap();
    fs::write(host.join("termination-log"), "").unwrap();
    fs::write(
        host.join("hosts"),
        "127.0.0.1 localhost\n10.1.2.3 kubelet-wrote-this\n",
    )
    .unwrap();
    fs::write(host.join("ro/file"), "ro\n").unwrap();
    let mount = |ctr: &str, rel: &str, readonly| cri::Mount {
        container_path: ctr.into(),
        host_path: host.join(rel).to_str().unwrap().into(),
        readonly,
        ..Default::default()
    };
    let id = k.create_with(
        &pod,
        Spec {
            name: "c",
            args: SLEEPS,
            security: cri::LinuxContainerSecurityContext {
                capabilities: Some(cri::Capability {
                    add_capabilities: vec!["NET_ADMIN".into()],
                    drop_capabilities: vec!["ALL".into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        },
        |c| {
            c.working_dir = "/work/dir".into();
            c.envs = vec![cri::KeyValue {
                key: "FROM_KUBELET".into(),
                value: "yes".into(),
            }];
            c.mounts = vec![
                mount("/dev/termination-log", "termination-log", false),
                mount("/etc/hosts", "hosts", false),
                mount("/data", "empty", false),
                mount("/ro", "ro", true),
            ];
        },
    );
    k.start(&id);
    k.wait_state(&id, cri::ContainerState::ContainerRunning);
    assert_eq!(k.sh(&id, "pwd; echo $FROM_KUBELET"), "/work/dir\nyes\n");
    k.sh(&id, "echo bye > /dev/termination-log; echo x > /data/x");
    assert_eq!(
        fs::read_to_string(host.join("termination-log")).unwrap(),
        "bye\n"
    );
    assert!(host.join("empty/x").exists());
    assert!(k.sh(&id, "cat /etc/hosts").contains("kubelet-wrote-this"));
    assert_eq!(k.sh(&id, "cat /ro/file"), "ro\n");
    let (code, _, err) = k.exec_in(&id, &["touch", "/ro/new"]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    // CAP_NET_ADMIN alone: bit 12.
    assert_eq!(
        k.sh(&id, "grep CapEff /proc/1/status").trim(),
        "CapEff:\t0000000000001000"
    );
    assert_eq!(
        k.sh(
            &id,
            "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_local_port_range"
        ),
        "1\n20000\t30000\n"
    );
    stop_remove(&k, &[&id]);
    k.remove_pod(&pod);
}

/// A privileged pod (CNI and storage daemonsets): every capability, no seccomp, the host's
/// devices, /sys writable.
#[test]
fn cri_privileged_pod() {
    let k = kube_or_skip!("privileged");
    let mut config = k.pod_config("privileged", false);
    let sc = config.linux.as_mut().unwrap().security_context.as_mut();
    sc.unwrap().privileged = true;
    let pod = k.run_pod(config, "rt");
    let (id, pid) = running(
        &k,
        &pod,
        Spec {
            name: "c",
            args: SLEEPS,
            security: cri::LinuxContainerSecurityContext {
                privileged: true,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let me = std::process::id() as i32;
    assert_eq!(proc_status(pid, "CapEff"), proc_status(me, "CapBnd"));
    assert_eq!(proc_status(pid, "Seccomp"), "0");
    assert!(k.sh(&id, "ls /dev").lines().any(|l| l == "kmsg"));
    let sys = k.sh(&id, "grep ' /sys ' /proc/self/mountinfo");
    assert!(sys.split(' ').nth(5).unwrap().starts_with("rw"), "{sys}");
    stop_remove(&k, &[&id]);
    k.remove_pod(&pod);
}
