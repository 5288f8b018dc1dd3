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
    /// and a cgroup parent below the test's cgroup, or under the systemd driver the pod's slice
    /// as kubelet names it (dashes of the uid escaped), which kubelet starts first.
    pub fn pod_config(&self, name: &str, host_network: bool) -> cri::PodSandboxConfig {
        let uid = format!("{name}-{}", POD_SEQ.fetch_add(1, Ordering::Relaxed));
        let log_dir = self.path(&format!("pods/default_{name}_{uid}"));
        fs::create_dir_all(&log_dir).unwrap();
        let cgroup_parent = if self.scene().slice.is_some() {
            let slice = format!("kubepods-burstable-pod{}.slice", uid.replace('-', "_"));
            let mut c = clean_cmd("systemctl");
            c.args(["start", &slice]);
            self.scene().ok(c);
            format!("/kubepods.slice/kubepods-burstable.slice/{slice}")
        } else {
            format!("{}/pod{uid}", self.scene().cgroup)
        };
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

    /// The cgroupsPath the CRI plugin gave container `id`, or the sandbox of `pod`.
    pub fn cgroups_path(&self, pod: &Pod, id: &str) -> String {
        let info = if id == pod.id {
            let r = self.pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: pod.id.clone(),
                verbose: true,
            });
            serde_json::from_str(&self.ok("PodSandboxStatus", r).info["info"]).unwrap()
        } else {
            self.ctr_status(id).1
        };
        info["runtimeSpec"]["linux"]["cgroupsPath"]
            .as_str()
            .expect("runtime spec has a cgroupsPath")
            .to_string()
    }

    /// The cgroup of container `id` (or of a pod's sandbox) of `pod`, checked to be where the
    /// CRI plugin asked for it: cgroupsPath `<pod cgroup parent>/<id>` (cgroupfs), or
    /// `<pod slice>:cri-containerd:<id>` and the scope `cri-containerd-<id>.scope` in the pod's
    /// slice (systemd); the init `pid` is in it.
    #[track_caller]
    pub fn cgroup_of(&self, pod: &Pod, id: &str, pid: i32) -> Cgroup {
        let parent = &pod.config.linux.as_ref().unwrap().cgroup_parent;
        let path = self.cgroups_path(pod, id);
        let dir = if self.scene().slice.is_some() {
            let slice = parent.rsplit('/').next().unwrap();
            assert_eq!(path, format!("{slice}:cri-containerd:{id}"));
            let unit = format!("cri-containerd-{id}.scope");
            assert!(
                unit_exists(&unit),
                "no unit {unit}: {}",
                self.scene().story()
            );
            format!("{parent}/{unit}")
        } else {
            assert_eq!(path, format!("{parent}/{id}"));
            path
        };
        assert_in_cgroup_everywhere(pid as i64, &dir, id);
        Cgroup { dir }
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
            if self.scene().slice.is_none() {
                fs::remove_dir(&d).unwrap_or_else(|e| panic!("rmdir {d}: {e}"));
            }
        }
        if self.scene().slice.is_some() {
            let slice = parent.rsplit('/').next().unwrap();
            let mut c = clean_cmd("systemctl");
            c.args(["stop", slice]);
            self.scene().ok(c);
            assert!(
                cgroup_dirs(parent).is_empty(),
                "{slice} stopped, its cgroup stays"
            );
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

/// A container's cgroup, below /sys/fs/cgroup (in each v1 hierarchy, or the v2 tree).
pub struct Cgroup {
    pub dir: String,
}

/// What a pure cgroup v2 host is: one tree at /sys/fs/cgroup.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

impl Cgroup {
    /// A file of the cgroup, trimmed: `controller/<cgroup>/v1` on a v1 host, `<cgroup>/v2` on a
    /// pure v2 host.
    #[track_caller]
    pub fn read(&self, controller: &str, v1: &str, v2: &str) -> String {
        let rel = self.dir.trim_start_matches('/');
        let p = if cgroup_v2() {
            format!("/sys/fs/cgroup/{rel}/{v2}")
        } else {
            format!("/sys/fs/cgroup/{controller}/{rel}/{v1}")
        };
        fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {p}: {e}"))
            .trim()
            .to_string()
    }

    /// Asserts the memory and CPU limits a container got, in v1's files or their v2
    /// equivalents (runc's conversions: `cpu.max` "quota period", shares to `cpu.weight`).
    #[track_caller]
    pub fn assert_limits(&self, memory: u64, quota: i64, period: u64, shares: u64) {
        if cgroup_v2() {
            assert_eq!(self.read("", "", "memory.max"), memory.to_string());
            assert_eq!(self.read("", "", "cpu.max"), format!("{quota} {period}"));
            let weight = 1 + ((shares - 2) * 9999) / 262142;
            assert_eq!(self.read("", "", "cpu.weight"), weight.to_string());
        } else {
            let mem = self.read("memory", "memory.limit_in_bytes", "");
            assert_eq!(mem, memory.to_string());
            assert_eq!(self.read("cpu", "cpu.cfs_quota_us", ""), quota.to_string());
            assert_eq!(
                self.read("cpu", "cpu.cfs_period_us", ""),
                period.to_string()
            );
            assert_eq!(self.read("cpu", "cpu.shares", ""), shares.to_string());
        }
    }
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
