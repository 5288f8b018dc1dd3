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
//! Under the systemd driver (`RT_TEST_CGROUP_DRIVER=systemd`, the v2 guest) both handlers get
//! `SystemdCgroup = true`, and kubelet's part is its systemd driver's: each pod's cgroup
//! parent is the slice kubelet names (`/kubepods.slice/kubepods-burstable.slice/
//! kubepods-burstable-pod<uid>.slice`, made before RunPodSandbox and stopped after
//! RemovePodSandbox), so a container's cgroupsPath is
//! `kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`. Those names are kubelet's own: a
//! test refuses to run (skip) where a kubepods.slice already exists.
//!
//! Runtime-agnostic: `RT_BIN=/usr/sbin/runc` puts runc behind the same `rt` handler.

use crate::common::*;
use crate::peers::{clean_cmd, need, run, unit_exists, Scene};
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use serde_json::Value;
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub const BUSYBOX: &str = "localhost/rt-busybox:latest";
pub const PAUSE: &str = "localhost/rt-busybox:pause";
const NS: &str = "k8s.io";
/// kubelet's top slice under its systemd cgroup driver.
const KUBEPODS: &str = "kubepods.slice";
/// The pods' subnet. The bridge has no address on the host, so nothing outside the pods'
/// own network namespaces is ever routed to it.
pub const SUBNET: &str = "10.254.77";
/// One CRI call may take this long (a StopContainer's grace period is shorter).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What a test needs that the host may lack: Err(reason) means skip.
fn requirements() -> Result<(), String> {
    need(&["containerd", "ctr", "containerd-shim-runc-v2", "ip"])?;
    crate::peers::images::need_images(false)?;
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
    /// Every sandbox id RunPodSandbox gave: CNI's result cache (/var/lib/cni) names them.
    sandboxes: std::cell::RefCell<Vec<String>>,
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
        let mut cfg = readme_config().replace("$D", &d).replace("$RT", &rt);
        if s.slice.is_some() {
            if unit_exists(KUBEPODS) {
                return Err(format!(
                    "{KUBEPODS} exists: a kubelet runs here, whose pods these tests must not touch"
                ));
            }
            // Every pod slice goes under kubepods.slice: the test's cgroup, stopped at its end.
            s.cgroup = format!("/{KUBEPODS}");
            s.slice = Some(KUBEPODS.into());
            // the QoS class's slice, the pods' parent, is kubelet's as well
            s.caller_cgroups = &["kubepods-burstable.slice"];
            let n = cfg.matches("SystemdCgroup = false").count();
            assert_eq!(
                n, 2,
                "the README's config has SystemdCgroup for both handlers"
            );
            cfg = cfg.replace("SystemdCgroup = false", "SystemdCgroup = true");
        }
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
            sandboxes: Default::default(),
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
        imp.arg(crate::peers::images::cri_images_tar());
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
}

impl Kube {
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
        left.extend(
            self.cni_cache()
                .iter()
                .map(|p| format!("CNI result cache {}", p.display())),
        );
        left.extend(
            self.bridge_links()
                .iter()
                .map(|l| format!("link on the pods' bridge: {l}")),
        );
        left
    }

    /// CNI's cached results of this test's pods (`/var/lib/cni/results/<net>-<sandbox>-<if>`),
    /// which CNI DEL removes.
    fn cni_cache(&self) -> Vec<PathBuf> {
        let ids = self.sandboxes.borrow();
        fs::read_dir("/var/lib/cni/results")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                ids.iter().any(|id| n.contains(&format!("-{id}-")))
            })
            .collect()
    }

    /// The links (pods' veths) on the test's bridge, one `ip -o link` line each.
    pub fn bridge_links(&self) -> Vec<String> {
        let mut c = Command::new("ip");
        c.args(["-o", "link", "show", "master", &self.bridge]);
        run(c).stdout.lines().map(String::from).collect()
    }
}

impl Drop for Kube {
    fn drop(&mut self) {
        let left = if std::thread::panicking() {
            // A failed test: tear its pods down as kubelet would, so that CNI releases what it
            // holds outside the temp dir (its result cache); the Scene scrubs the rest.
            if let Ok(pods) = self.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None }) {
                for p in pods.items {
                    let id = p.id;
                    let _ = self.stop_pod_sandbox(cri::StopPodSandboxRequest {
                        pod_sandbox_id: id.clone(),
                    });
                    let _ = self
                        .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id });
                }
            }
            vec![]
        } else {
            self.cri_leftovers()
        };
        for f in self.cni_cache() {
            let _ = fs::remove_file(f);
        }
        // The test's cgroup parents of pods that did not get removed (a failed test); under
        // systemd the Scene stops kubepods.slice with all in it.
        if self.scene().slice.is_none() {
            for parent in self.pod_cgroups.borrow().iter() {
                for d in cgroup_dirs(parent) {
                    let _ = fs::remove_dir(d);
                }
            }
        }
        let mut c = Command::new("ip");
        c.args(["link", "del", &self.bridge]);
        let _ = run(c);
        // While this test still holds the Scene's lock: the next one looks whether it exists.
        for d in ["/var/lib/cni/results", "/var/lib/cni"] {
            if !self.cni_existed {
                let _ = fs::remove_dir(d);
            }
        }
        let story = self.scene().story();
        // Stops containerd, checks and scrubs what the runtime could have left.
        drop(self.scene.take());
        if !std::thread::panicking() {
            assert!(left.is_empty(), "left behind: {left:#?}\n{story}");
        }
    }
}

mod client;
mod kubelet;
mod latency;
mod pod;
mod security;
mod shapes;
mod stream;

pub use pod::*;
