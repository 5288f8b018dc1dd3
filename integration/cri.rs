//! Kubernetes' path to the runtime: kubelet's calls, made over containerd's CRI socket with the
//! `k8s-cri` crate's gRPC client, to a containerd the test starts on private paths with the
//! README's configuration (the CRI plugin on, a runtime handler `rt` whose `BinaryName` is the
//! runtime under test). There is no registry: a busybox image and a pause image (busybox's
//! `sleep inf`) are built here and imported into the `k8s.io` namespace. Pods use a CNI bridge
//! the test creates (containernetworking-plugins, no gateway on the host: nothing is routed or
//! masqueraded) and removes.
//!
//! kubelet's part is played here as kubelet plays it: it makes the pod's log directory, gives
//! each pod a cgroup parent below the test's own cgroup (cgroupfs driver), sends the sandbox
//! config again with every container, and removes the pod cgroup after RemovePodSandbox. Each
//! test then proves nothing is left: no shim or container process, no mount (rootfs, shm,
//! netns), no cgroup, no runtime state, no veth or CNI state, and containerd stopped.
//!
//! Runtime-agnostic: `RT_BIN=/usr/sbin/runc` puts runc behind the same `rt` handler.

use crate::common::*;
use crate::peers::{clean_cmd, need, run, Scene};
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use serde_json::Value;
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub const BUSYBOX: &str = "localhost/rt-busybox:latest";
pub const PAUSE: &str = "localhost/rt-busybox:pause";
const NS: &str = "k8s.io";
/// The pods' subnet. The bridge has no address on the host, so nothing outside the pods'
/// own network namespaces is ever routed to it.
pub const SUBNET: &str = "10.254.77";
/// One CRI call may take this long (a StopContainer's grace period is shorter).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What a test needs that the host may lack: Err(reason) means skip.
fn requirements() -> Result<(), String> {
    need(&[
        "containerd",
        "ctr",
        "containerd-shim-runc-v2",
        "umoci",
        "ip",
    ])?;
    for plugin in ["bridge", "host-local", "loopback"] {
        if !Path::new("/usr/lib/cni").join(plugin).is_file() {
            return Err(format!(
                "CNI plugin /usr/lib/cni/{plugin} is missing (containernetworking-plugins)"
            ));
        }
    }
    Ok(())
}

/// The README's containerd configuration, the one the tests promise to use.
fn readme_config() -> String {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let k8s = &readme[readme
        .find("## Kubernetes")
        .expect("README has a Kubernetes section")..];
    let start = k8s
        .find("```toml\n")
        .expect("Kubernetes section has a toml block")
        + 8;
    let end = start + k8s[start..].find("```").unwrap();
    k8s[start..end].to_string()
}

/// The busybox and pause images as one OCI layout tar, built once per test run (into a temp
/// name, then renamed: another test binary may be importing the previous one).
fn images_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let target = rootfs_cache().parent().unwrap().to_path_buf();
        let tar = target.join("rt-cri-images.tar");
        let tmp = target.join(format!("rt-cri-images.tar.{}", std::process::id()));
        let layout = tempfile::tempdir().unwrap();
        let dir = layout.path().join("l");
        crate::peers::busybox_layout(&dir);
        // The pause container is a static sleep: pid 1 of the sandbox, killed at its stop.
        let mut c = Command::new("umoci");
        c.args(["config", "--image"])
            .arg(format!("{}:latest", dir.display()))
            .args(["--tag", "pause", "--config.entrypoint", "/bin/sleep"])
            .args(["--config.cmd", "inf"]);
        let out = run(c);
        assert!(out.status.success(), "umoci config: {out:#?}");
        let mut c = Command::new("tar");
        c.arg("-C").arg(&dir).arg("-cf").arg(&tmp).arg(".");
        let out = run(c);
        assert!(out.status.success(), "tar: {out:#?}");
        fs::rename(&tmp, &tar).unwrap();
        tar
    })
}

static POD_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A containerd with the CRI plugin, its clients, and the bridge its pods use. Dropping it
/// removes the bridge, stops containerd and checks (through the Scene) that nothing is left.
pub struct Kube {
    rt: tokio::runtime::Runtime,
    rs: RuntimeServiceClient<Channel>,
    is: ImageServiceClient<Channel>,
    pub bridge: String,
    /// Pod cgroup parents made for RunPodSandbox, removed after RemovePodSandbox (kubelet's job).
    pod_cgroups: std::cell::RefCell<Vec<String>>,
    cni_existed: bool,
    /// Option so that Drop can drop it first: the daemon stops, then the checks run.
    scene: Option<Scene>,
}

/// Start containerd for one test, or print `skip:` and return from the test.
macro_rules! kube_or_skip {
    ($tag:expr) => {
        match $crate::cri::Kube::up($tag, None) {
            Ok(k) => k,
            Err(why) => {
                eprintln!("skip: {why}");
                return;
            }
        }
    };
    ($tag:expr, $bin:expr) => {
        match $crate::cri::Kube::up($tag, Some($bin)) {
            Ok(k) => k,
            Err(why) => {
                eprintln!("skip: {why}");
                return;
            }
        }
    };
}

impl Kube {
    /// containerd on the README's config, `$RT` being `bin` (default: the argv-logging
    /// wrapper of the runtime under test), with the images imported and CRI ready.
    pub fn up(tag: &str, bin: Option<&Path>) -> Result<Kube, String> {
        requirements()?;
        let mut s = Scene::new(&format!("cri-{tag}"), &[]);
        let d = s.dir.path().to_str().unwrap().to_string();
        let rt = bin.unwrap_or(&s.wrapper).to_str().unwrap().to_string();
        let cfg = readme_config().replace("$D", &d).replace("$RT", &rt);
        let cfg_path = s.path("config.toml");
        fs::write(&cfg_path, cfg).unwrap();
        s.runtime_roots.push(s.path("rt-root"));
        s.runtime_roots.push(s.path("runc-root"));
        s.shim_owners.push((s.path("c.sock"), NS));
        // IFNAMSIZ: 15 characters at most.
        let bridge = format!(
            "rtcri{:x}",
            std::process::id() as usize * 64 + POD_SEQ.fetch_add(1, Ordering::Relaxed) % 64
        );
        let cni_existed = Path::new("/var/lib/cni").exists();
        fs::create_dir_all(s.path("cni")).unwrap();
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("rt-{tag}"),
            "plugins": [{
                "type": "bridge",
                "bridge": bridge,
                "isGateway": false,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": format!("{SUBNET}.0/24")}]],
                    "dataDir": s.path("ipam"),
                },
            }],
        });
        fs::write(
            s.path("cni/10-rt.conflist"),
            serde_json::to_string_pretty(&conflist).unwrap(),
        )
        .unwrap();

        let mut cmd = clean_cmd("containerd");
        cmd.arg("--config").arg(&cfg_path);
        s.start_daemon(cmd, |s| s.path("c.sock").exists())
            .map_err(|e| format!("containerd cannot start here: {e}"))?;

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sock = s.path("c.sock");
        let channel = rt
            .block_on(
                tonic::transport::Endpoint::from_static("http://[::]:0").connect_with_connector(
                    tower::service_fn(move |_: tonic::transport::Uri| {
                        let sock = sock.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(sock).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                        }
                    }),
                ),
            )
            .map_err(|e| format!("cannot connect to containerd's socket: {e}"))?;
        let k = Kube {
            rt,
            rs: RuntimeServiceClient::new(channel.clone()),
            is: ImageServiceClient::new(channel),
            bridge,
            pod_cgroups: Default::default(),
            cni_existed,
            scene: Some(s),
        };
        // The CRI plugin serves once its service is up; network ready once it has read the
        // CNI config.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match k.status(cri::StatusRequest { verbose: false }) {
                Ok(st) => {
                    let conds = st.status.unwrap_or_default().conditions;
                    if conds.iter().all(|c| c.status) && conds.len() >= 2 {
                        break;
                    }
                    if Instant::now() > deadline {
                        return Err(format!("CRI not ready: {conds:?}"));
                    }
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("the CRI plugin does not serve here: {e}"));
                }
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut imp = k.ctr(&["images", "import", "--base-name", "localhost/rt-busybox"]);
        imp.arg(images_tar());
        k.scene().ok(imp);
        Ok(k)
    }

    pub fn scene(&self) -> &Scene {
        self.scene.as_ref().unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.scene().path(rel)
    }

    pub fn ctr(&self, args: &[&str]) -> Command {
        let mut c = clean_cmd("ctr");
        c.arg("-a")
            .arg(self.path("c.sock"))
            .args(["-n", NS])
            .args(args);
        c
    }

    fn block<T>(
        &self,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        self.rt.block_on(async {
            match tokio::time::timeout(CALL_TIMEOUT, fut).await {
                Ok(r) => r.map(|r| r.into_inner()),
                Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                    "no answer in {CALL_TIMEOUT:?}"
                ))),
            }
        })
    }

    /// Panic with the CRI error and what containerd and the runtime said.
    #[track_caller]
    pub fn ok<T>(&self, what: &str, r: Result<T, tonic::Status>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!(
                "{what}: {} {}\n{}",
                e.code(),
                e.message(),
                self.scene().story()
            ),
        }
    }
}

/// Each CRI call as a blocking method (the client is cheap to clone; a call borrows it).
macro_rules! rpcs {
    ($($client:ident . $name:ident($req:ident) -> $resp:ident;)*) => {
        impl Kube {
            $(pub fn $name(&self, req: cri::$req) -> Result<cri::$resp, tonic::Status> {
                let mut c = self.$client.clone();
                self.block(async move { c.$name(req).await })
            })*
        }
    };
}

rpcs! {
    rs.version(VersionRequest) -> VersionResponse;
    rs.status(StatusRequest) -> StatusResponse;
    rs.run_pod_sandbox(RunPodSandboxRequest) -> RunPodSandboxResponse;
    rs.pod_sandbox_status(PodSandboxStatusRequest) -> PodSandboxStatusResponse;
    rs.stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse;
    rs.remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse;
    rs.list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse;
    rs.create_container(CreateContainerRequest) -> CreateContainerResponse;
    rs.start_container(StartContainerRequest) -> StartContainerResponse;
    rs.container_status(ContainerStatusRequest) -> ContainerStatusResponse;
    rs.list_containers(ListContainersRequest) -> ListContainersResponse;
    rs.exec_sync(ExecSyncRequest) -> ExecSyncResponse;
    rs.exec(ExecRequest) -> ExecResponse;
    rs.attach(AttachRequest) -> AttachResponse;
    rs.update_container_resources(UpdateContainerResourcesRequest) -> UpdateContainerResourcesResponse;
    rs.container_stats(ContainerStatsRequest) -> ContainerStatsResponse;
    rs.stop_container(StopContainerRequest) -> StopContainerResponse;
    rs.remove_container(RemoveContainerRequest) -> RemoveContainerResponse;
    is.list_images(ListImagesRequest) -> ListImagesResponse;
    is.image_status(ImageStatusRequest) -> ImageStatusResponse;
}

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
        Pod { config, id }
    }

    /// CreateContainer (log at `<name>/<attempt>.log`, as kubelet names it) + StartContainer.
    pub fn create(&self, pod: &Pod, spec: Spec) -> String {
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
        let config = cri::ContainerConfig {
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

    /// What containerd or CNI would have left that the Scene does not look for.
    fn cri_leftovers(&self) -> Vec<String> {
        let mut left = vec![];
        let pods = self.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None });
        match pods {
            Ok(p) => left.extend(p.items.iter().map(|p| format!("pod sandbox {}", p.id))),
            Err(e) => left.push(format!("ListPodSandbox: {e}")),
        }
        let ctrs = self.list_containers(cri::ListContainersRequest { filter: None });
        match ctrs {
            Ok(c) => left.extend(c.containers.iter().map(|c| format!("container {}", c.id))),
            Err(e) => left.push(format!("ListContainers: {e}")),
        }
        // host-local keeps one file per leased address next to its bookkeeping.
        let mut leases = vec![];
        crate::peers::walk_dirs(&self.path("ipam"), &mut leases);
        for d in leases {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(SUBNET) {
                    left.push(format!("IP lease {}", e.path().display()));
                }
            }
        }
        let links = run({
            let mut c = Command::new("ip");
            c.args(["-o", "link", "show", "master", &self.bridge]);
            c
        });
        left.extend(
            links
                .stdout
                .lines()
                .map(|l| format!("link on the pods' bridge: {l}")),
        );
        left
    }
}

impl Drop for Kube {
    fn drop(&mut self) {
        let left = if std::thread::panicking() {
            vec![]
        } else {
            self.cri_leftovers()
        };
        // The test's cgroup parents of pods that did not get removed (a failed test).
        for parent in self.pod_cgroups.borrow().iter() {
            for d in cgroup_dirs(parent) {
                let _ = fs::remove_dir(d);
            }
        }
        let mut c = Command::new("ip");
        c.args(["link", "del", &self.bridge]);
        let _ = run(c);
        let story = self.scene().story();
        // Stops containerd, checks and scrubs what the runtime could have left.
        drop(self.scene.take());
        for d in ["/var/lib/cni/results", "/var/lib/cni"] {
            if !self.cni_existed {
                let _ = fs::remove_dir(d);
            }
        }
        if !std::thread::panicking() {
            assert!(left.is_empty(), "left behind: {left:#?}\n{story}");
        }
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

mod kubelet;
mod latency;
mod shapes;
mod stream;
