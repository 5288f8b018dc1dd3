//! Pods and containers as kubelet describes them, and what the tests read back.

use super::*;

/// One pod as kubelet describes it, and its sandbox id once it runs.
pub struct Pod {
    pub config: cri::PodSandboxConfig,
    pub id: String,
}

/// What a container of a test pod runs and how.
#[derive(Default)]
pub struct Spec<'a> {
    pub name: &'a str,
    pub attempt: u32,
    pub args: &'a [&'a str],
    pub resources: Option<cri::LinuxContainerResources>,
    pub security: cri::LinuxContainerSecurityContext,
}

/// kubelet's namespace options for a container: the pod's network and IPC, its own pids.
fn ns_options(network: cri::NamespaceMode) -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: network as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

impl Kube {
    /// The config kubelet sends for pod `name`: its log directory (made, as kubelet makes it)
    /// and a cgroup parent below the test's cgroup.
    pub fn pod_config(&self, name: &str, host_network: bool) -> cri::PodSandboxConfig {
        let uid = format!("{name}-{}", POD_SEQ.fetch_add(1, Ordering::Relaxed));
        let log_dir = self.path(&format!("pods/default_{name}_{uid}"));
        fs::create_dir_all(&log_dir).unwrap();
        let cgroup_parent = format!("{}/pod{uid}", self.scene().cgroup);
        self.pod_cgroups.borrow_mut().push(cgroup_parent.clone());
        let network = if host_network {
            cri::NamespaceMode::Node
        } else {
            cri::NamespaceMode::Pod
        };
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid,
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: if host_network {
                String::new()
            } else {
                name.into()
            },
            log_directory: log_dir.to_str().unwrap().into(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent,
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(ns_options(network)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// RunPodSandbox with the `rt` handler (or `handler`).
    pub fn run_pod(&self, config: cri::PodSandboxConfig, handler: &str) -> Pod {
        let r = self.run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        });
        let id = self.ok("RunPodSandbox", r).pod_sandbox_id;
        self.sandboxes.borrow_mut().push(id.clone());
        Pod { config, id }
    }

    /// CreateContainer, the log at `<name>/<attempt>.log` as kubelet names it.
    pub fn create(&self, pod: &Pod, spec: Spec) -> String {
        self.create_with(pod, spec, |_| {})
    }

    /// CreateContainer of `spec` with what `more` adds to its config (mounts, env...).
    pub fn create_with(
        &self,
        pod: &Pod,
        spec: Spec,
        more: impl FnOnce(&mut cri::ContainerConfig),
    ) -> String {
        let log_dir = Path::new(&pod.config.log_directory).join(spec.name);
        fs::create_dir_all(log_dir).unwrap();
        let mut security = spec.security;
        let network = pod
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .map(|n| n.network)
            .unwrap_or_default();
        security.namespace_options = Some(cri::NamespaceOption {
            network,
            ..ns_options(cri::NamespaceMode::Pod)
        });
        let mut config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: spec.name.into(),
                attempt: spec.attempt,
            }),
            image: Some(cri::ImageSpec {
                image: BUSYBOX.into(),
                ..Default::default()
            }),
            args: spec.args.iter().map(|a| a.to_string()).collect(),
            log_path: format!("{}/{}.log", spec.name, spec.attempt),
            linux: Some(cri::LinuxContainerConfig {
                resources: spec.resources,
                security_context: Some(security),
            }),
            ..Default::default()
        };
        more(&mut config);
        let r = self.create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        });
        self.ok("CreateContainer", r).container_id
    }

    pub fn start(&self, id: &str) {
        let r = self.start_container(cri::StartContainerRequest {
            container_id: id.into(),
        });
        self.ok("StartContainer", r);
    }

    pub fn run_container(&self, pod: &Pod, spec: Spec) -> String {
        let id = self.create(pod, spec);
        self.start(&id);
        id
    }

    /// ContainerStatus, verbose: the status and containerd's info (pid, runtime spec).
    pub fn ctr_status(&self, id: &str) -> (cri::ContainerStatus, Value) {
        let r = self.container_status(cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        });
        let r = self.ok("ContainerStatus", r);
        let info = r
            .info
            .get("info")
            .map(|i| serde_json::from_str(i).unwrap())
            .unwrap_or(Value::Null);
        (r.status.expect("ContainerStatus has a status"), info)
    }

    pub fn state(&self, id: &str) -> cri::ContainerState {
        cri::ContainerState::try_from(self.ctr_status(id).0.state).unwrap()
    }

    /// Wait until the container reaches `want` (what kubelet's PLEG polls for).
    #[track_caller]
    pub fn wait_state(&self, id: &str, want: cri::ContainerState) -> cri::ContainerStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let (st, _) = self.ctr_status(id);
            if st.state == want as i32 {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} never {want:?}: {st:#?}\n{}",
                self.scene().story()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The container's init pid on the host.
    pub fn pid(&self, id: &str) -> i32 {
        let (_, info) = self.ctr_status(id);
        info["pid"].as_i64().expect("verbose status has a pid") as i32
    }

    /// The container's cgroup path (cgroupfs: `<pod cgroup parent>/<id>`).
    pub fn cgroup(&self, id: &str) -> String {
        let (_, info) = self.ctr_status(id);
        info["runtimeSpec"]["linux"]["cgroupsPath"]
            .as_str()
            .expect("runtime spec has a cgroupsPath")
            .to_string()
    }

    /// ExecSync: (exit code, stdout, stderr).
    pub fn exec_in(&self, id: &str, cmd: &[&str]) -> (i32, String, String) {
        let r = self.exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|a| a.to_string()).collect(),
            timeout: 20,
        });
        let r = self.ok("ExecSync", r);
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    /// ExecSync that must succeed: its stdout.
    #[track_caller]
    pub fn sh(&self, id: &str, script: &str) -> String {
        let (code, out, err) = self.exec_in(id, &["sh", "-c", script]);
        assert_eq!(code, 0, "exec {script:?} in {id}: {out}{err}");
        out
    }

    pub fn stop(&self, id: &str, grace: i64) {
        let r = self.stop_container(cri::StopContainerRequest {
            container_id: id.into(),
            timeout: grace,
        });
        self.ok("StopContainer", r);
    }

    pub fn remove(&self, id: &str) {
        let r = self.remove_container(cri::RemoveContainerRequest {
            container_id: id.into(),
        });
        self.ok("RemoveContainer", r);
    }

    /// StopPodSandbox + RemovePodSandbox, then what kubelet does after: the pod's cgroup
    /// parent goes (it must be empty by then).
    pub fn remove_pod(&self, pod: &Pod) {
        let r = self.stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        });
        self.ok("StopPodSandbox", r);
        let r = self.remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        });
        self.ok("RemovePodSandbox", r);
        let parent = &pod.config.linux.as_ref().unwrap().cgroup_parent;
        for d in cgroup_dirs(parent) {
            let kids: Vec<_> = fs::read_dir(&d)
                .unwrap()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            assert!(kids.is_empty(), "pod cgroup {d} still has {kids:?}");
            fs::remove_dir(&d).unwrap_or_else(|e| panic!("rmdir {d}: {e}"));
        }
    }

    /// The pod's IP from PodSandboxStatus.
    pub fn pod_ip(&self, pod: &Pod) -> String {
        let r = self.pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.id.clone(),
            verbose: false,
        });
        let st = self.ok("PodSandboxStatus", r).status.unwrap();
        st.network.map(|n| n.ip).unwrap_or_default()
    }
}

/// Lines of a CRI log file: (stream, tag, message) of `<RFC3339Nano> <stream> <P|F> <msg>`.
pub fn cri_log(path: &Path) -> Vec<(String, String, String)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, ' ').collect();
            assert_eq!(f.len(), 4, "not a CRI log line: {l:?}");
            let t = f[0].as_bytes();
            assert!(
                t.len() > 20 && t[4] == b'-' && t[10] == b'T' && t[13] == b':',
                "no RFC 3339 time in {l:?}"
            );
            (f[1].to_string(), f[2].to_string(), f[3].to_string())
        })
        .collect()
}

/// A cgroup v1 file of a container (`controller/<cgroup>/file`), trimmed.
pub fn v1_file(controller: &str, cgroup: &str, file: &str) -> String {
    let p = format!(
        "/sys/fs/cgroup/{controller}/{}/{file}",
        cgroup.trim_start_matches('/')
    );
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {p}: {e}"))
        .trim()
        .to_string()
}

/// A line of /proc/PID/status (`Uid`, `Seccomp`, ...), value part.
pub fn proc_status(pid: i32, key: &str) -> String {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("/proc/{pid}/status has no {key}"))
        .trim()
        .to_string()
}

pub const SLEEPS: &[&str] = &["sleep", "1000"];

pub fn ns(pid: i32, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{kind}: {e}"))
        .display()
        .to_string()
}

pub fn sandbox_pid(k: &Kube, pod: &Pod) -> i32 {
    let r = k.pod_sandbox_status(cri::PodSandboxStatusRequest {
        pod_sandbox_id: pod.id.clone(),
        verbose: true,
    });
    let info: Value = serde_json::from_str(&k.ok("PodSandboxStatus", r).info["info"]).unwrap();
    info["pid"].as_i64().expect("sandbox info has a pid") as i32
}

/// Start `spec` in `pod` and wait until it runs: (id, host pid).
pub fn running(k: &Kube, pod: &Pod, spec: Spec) -> (String, i32) {
    let id = k.run_container(pod, spec);
    k.wait_state(&id, cri::ContainerState::ContainerRunning);
    let pid = k.pid(&id);
    (id, pid)
}

pub fn stop_remove(k: &Kube, ids: &[&str]) {
    for id in ids {
        k.stop(id, 0);
        k.remove(id);
    }
}
