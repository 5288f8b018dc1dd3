//! rt under the programs that really call it: containerd's runc shim (`ctr run
//! --runc-binary`), podman (conmon, `--runtime`) and dockerd (`--add-runtime`). Each test
//! starts its caller privately (sockets, roots and state in a temp dir, its own cgroup
//! parent), drives scenarios through the caller's CLI, checks what came out, and on drop
//! stops the caller by pid and proves nothing is left: no process, mount, cgroup or
//! runtime state. The runtime is wrapped in a shell script that appends its argv to a
//! file, so a failure shows exactly what the caller sent.
//!
//! The runtime under test is `$RT_BIN` when set, so `RT_BIN=$(which runc)` runs the same
//! scenarios against runc. A test prints `skip: <reason>` only when its caller is not
//! installed or cannot start here.
//!
//! Each caller uses the cgroup driver of `RT_TEST_CGROUP_DRIVER` (`systemd_driver()`): its
//! cgroupfs manager with a cgroup directory of the test's own, or its systemd manager (the
//! default of podman and of dockerd on cgroup v2; `SystemdCgroup = true` for containerd's
//! shim) with a slice of the test's own. The images are built here with umoci (and skopeo for
//! dockerd), or taken ready-made from `$RT_TEST_IMAGES` (the v2 guest has neither tool:
//! `vm/test-v2.sh` makes them on the host with `export_images_for_the_guest`).

use crate::common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One caller at a time: they are heavy for a 2-core machine, and containerd's shims and
/// dockerd's containerd share `/run/containerd/s`, which each test tidies at its end.
static SERIAL: Mutex<()> = Mutex::new(());

/// A daemon gets this long to come up, and to go down on SIGTERM before SIGKILL.
const DAEMON_WAIT: Duration = Duration::from_secs(20);

pub(crate) fn find_bin(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The binaries a test needs, or why it cannot run.
pub(crate) fn need(bins: &[&str]) -> Result<Vec<PathBuf>, String> {
    if !is_root() {
        return Err("peer tests need root".into());
    }
    bins.iter()
        .map(|b| find_bin(b).ok_or_else(|| format!("{b} is not installed")))
        .collect()
}

macro_rules! need_or_skip {
    ($($b:expr),*) => {
        match need(&[$($b),*]) {
            Ok(v) => v,
            Err(why) => {
                eprintln!("skip: {why}");
                return;
            }
        }
    };
}

/// The default `--root` of the runtime under test, used by callers that send none.
fn default_root() -> PathBuf {
    if is_runc() {
        PathBuf::from("/run/runc")
    } else {
        PathBuf::from("/run/rt")
    }
}

/// A command with the socket-activation variables of whatever shell ran cargo removed.
pub(crate) fn clean_cmd(bin: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(bin);
    for v in [
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
        "NOTIFY_SOCKET",
    ] {
        c.env_remove(v);
    }
    c
}

pub(crate) fn run(cmd: Command) -> Out {
    run_cmd(cmd, Stdio::null())
}

/// `systemctl ARGS`, its outcome ignored: for tidying up only.
pub(crate) fn systemctl(args: &[&str]) {
    let mut c = clean_cmd("systemctl");
    c.args(args);
    let _ = run(c);
}

/// Whether systemd has unit `unit` in any state but inactive (active, activating, failed...).
pub(crate) fn unit_exists(unit: &str) -> bool {
    let mut c = clean_cmd("systemctl");
    c.args(["show", unit, "-p", "ActiveState", "--value"]);
    let out = run(c);
    let state = out.stdout.trim();
    out.status.success() && !state.is_empty() && state != "inactive"
}

/// Directories the callers create outside their temp dir whatever they are told; each
/// test removes those it created (only when empty: another caller may be using them).
const HOST_DIRS: &[&str] = &[
    "/run/containerd/fifo",
    "/run/containerd/s",
    "/run/containerd/runc",
    "/run/containerd",
    "/run/docker/plugins",
    "/run/docker",
];

/// One caller's private world: temp dir, wrapper, cgroup parent, and the daemon.
pub(crate) struct Scene {
    pub(crate) dir: tempfile::TempDir,
    /// The wrapped runtime the caller is given.
    pub(crate) wrapper: PathBuf,
    argv_log: PathBuf,
    /// The cgroup parent every container of this test goes under, below /sys/fs/cgroup:
    /// `/rt-peers-123-ctr` (cgroupfs), or the slice's directory `/rt_peers_123_ctr.slice`.
    pub(crate) cgroup: String,
    /// Under the systemd driver, the slice unit of `cgroup` (`rt_peers_123_ctr.slice`: its
    /// name has no dash, which would make systemd nest it under a parent slice), stopped
    /// at the end with whatever units are left in it.
    pub(crate) slice: Option<String>,
    /// Cgroup children the caller itself owns (podman's `conmon`): not leaks of the runtime.
    pub(crate) caller_cgroups: &'static [&'static str],
    /// Runtime roots under `dir` that must hold no container when the test ends.
    pub(crate) runtime_roots: Vec<PathBuf>,
    /// (containerd address, namespace) of the shims this test's containers get.
    pub(crate) shim_owners: Vec<(PathBuf, &'static str)>,
    daemon: Option<Child>,
    pub(crate) daemon_log: PathBuf,
    host_dirs_before: Vec<&'static str>,
    /// What /sys/fs/cgroup held: a caller may make directories for controllers that are not
    /// mounted (podman's cgroupfs manager makes net_cls, perf_event...), to be removed after.
    cgroup_top_before: Vec<PathBuf>,
    default_root_existed: bool,
    _serial: MutexGuard<'static, ()>,
}

impl Scene {
    pub(crate) fn new(tag: &str, caller_cgroups: &'static [&'static str]) -> Scene {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Lower case only: podman names an image pulled from `oci:DIR` after DIR, and an
        // image name must be lower case. One test per tag per process: the pid is unique.
        let dir = tempfile::Builder::new()
            .prefix(&format!("rt-peers-{tag}-{}", std::process::id()))
            .rand_bytes(0)
            .tempdir()
            .unwrap();
        let argv_log = dir.path().join("argv.log");
        let wrapper = dir.path().join("rt-wrapper");
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
        let (cgroup, slice) = if systemd_driver() {
            let slice = format!(
                "rt_peers_{}_{}.slice",
                std::process::id(),
                tag.replace('-', "_")
            );
            (format!("/{slice}"), Some(slice))
        } else {
            (format!("/rt-peers-{}-{tag}", std::process::id()), None)
        };
        Scene {
            wrapper,
            argv_log,
            cgroup,
            slice,
            caller_cgroups,
            runtime_roots: vec![],
            shim_owners: vec![],
            daemon: None,
            daemon_log: dir.path().join("daemon.log"),
            host_dirs_before: HOST_DIRS
                .iter()
                .copied()
                .filter(|d| Path::new(d).exists())
                .collect(),
            default_root_existed: default_root().exists(),
            cgroup_top_before: cgroup_top(),
            dir,
            _serial: serial,
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Where the caller must have put a container it calls `name` (below /sys/fs/cgroup):
    /// `<cgroup>/<name>`, or under the systemd driver the scope `<name>.scope` in the slice.
    pub(crate) fn container_cgroup(&self, name: &str) -> String {
        match &self.slice {
            Some(_) => format!("{}/{name}.scope", self.cgroup),
            None => format!("{}/{name}", self.cgroup),
        }
    }

    /// Asserts that `pid` is in the cgroup `container_cgroup` names, and under the systemd
    /// driver that its scope is an active unit (so systemd, not the runtime, owns it).
    #[track_caller]
    pub(crate) fn assert_container_cgroup(&self, pid: i64, name: &str) {
        let want = self.container_cgroup(name);
        assert_in_cgroup_everywhere(pid, &want, name);
        if self.slice.is_some() {
            let unit = want.rsplit('/').next().unwrap();
            assert!(
                unit_exists(unit),
                "no systemd unit {unit}: {}",
                self.story()
            );
        }
    }

    /// Start the daemon (output to `daemon.log`) and wait until `ready` says it serves.
    /// Err(reason) when it exits or never becomes ready: the caller cannot start here.
    pub(crate) fn start_daemon(
        &mut self,
        mut cmd: Command,
        ready: impl Fn(&Scene) -> bool,
    ) -> Result<(), String> {
        let log = fs::File::create(&self.daemon_log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot spawn {cmd:?}: {e}"))?;
        self.daemon = Some(child);
        let deadline = Instant::now() + DAEMON_WAIT;
        loop {
            if let Some(st) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                self.daemon = None;
                return Err(format!(
                    "{:?} exited at start-up ({st}): {}",
                    cmd.get_program(),
                    self.log_tail(&self.daemon_log, 5)
                ));
            }
            if ready(self) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{:?} not ready after {DAEMON_WAIT:?}: {}",
                    cmd.get_program(),
                    self.log_tail(&self.daemon_log, 5)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn log_tail(&self, p: &Path, n: usize) -> String {
        let s = fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<_> = s.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Every runtime invocation so far, one argv per line.
    pub(crate) fn argv(&self) -> String {
        fs::read_to_string(&self.argv_log).unwrap()
    }

    /// What to show when a caller's command fails: its output, the argv rt got, the
    /// daemon's log tail, and every `log.json` the shim left (rt's error lines).
    fn context(&self, out: &Out) -> String {
        format!("{out:#?}\n{}", self.story())
    }

    /// The argv the runtime got, the daemon's log tail, and every `log.json` the shim left.
    pub(crate) fn story(&self) -> String {
        let mut logs = String::new();
        walk(self.dir.path(), &mut |p| {
            if p.file_name().is_some_and(|n| n == "log.json") {
                logs += &format!(
                    "--- {}\n{}\n",
                    p.display(),
                    fs::read_to_string(p).unwrap_or_default()
                );
            }
        });
        format!(
            "--- runtime argv:\n{}--- daemon log tail:\n{}\n{logs}",
            self.argv(),
            self.log_tail(&self.daemon_log, 15)
        )
    }

    #[track_caller]
    pub(crate) fn ok(&self, cmd: Command) -> String {
        let out = run(cmd);
        assert!(
            out.status.success(),
            "caller failed: {}",
            self.context(&out)
        );
        out.stdout
    }

    /// Run `cmd`, asserting its exit code.
    #[track_caller]
    fn code(&self, cmd: Command, want: i32) -> Out {
        let out = run(cmd);
        assert_eq!(
            out.status.code(),
            Some(want),
            "exit code: {}",
            self.context(&out)
        );
        out
    }

    /// The container ids the caller created (the last argument of each `create`).
    fn created_ids(&self) -> Vec<String> {
        self.argv()
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w == "create"))
            .filter_map(|l| l.split_whitespace().last().map(String::from))
            .collect()
    }

    /// The systemd units the runtime made for this test's containers and systemd still has:
    /// every caller names a container's scope `<prefix>-<id>.scope`, and systemd keeps a
    /// transient unit's file while the unit is loaded (a failed one until it is reset).
    fn container_units(&self) -> Vec<String> {
        if self.slice.is_none() {
            return vec![];
        }
        let ids = self.created_ids();
        fs::read_dir("/run/systemd/transient")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| ids.iter().any(|id| n.ends_with(&format!("-{id}.scope"))))
            .collect()
    }

    /// This test's cgroup dirs in every hierarchy, deepest first.
    fn cgroup_tree(&self) -> Vec<PathBuf> {
        let mut all = vec![];
        for top in cgroup_dirs(&self.cgroup) {
            walk_dirs(Path::new(&top), &mut all);
        }
        all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        all
    }

    /// Processes that belong to this test: in its cgroups, or naming its temp dir
    /// (shims, conmon, dockerd's containerd).
    pub(crate) fn processes(&self) -> Vec<(i32, String)> {
        let me = std::process::id() as i32;
        // With the slash: /tmp/rt-peers-ctr-12 must not claim /tmp/rt-peers-ctr-123's.
        let dir = format!("{}/", self.dir.path().display());
        let mut found = vec![];
        for d in self.cgroup_tree() {
            let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|p| p.parse::<i32>().ok()) {
                found.push((pid, format!("in cgroup {}", d.display())));
            }
        }
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me || self.daemon.as_ref().is_some_and(|c| c.id() as i32 == pid) {
                continue;
            }
            let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let zombie = fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
                .unwrap_or(true);
            if cmdline.contains(&dir) && !zombie {
                found.push((pid, cmdline.trim().to_string()));
            }
        }
        found.sort();
        found.dedup_by_key(|p| p.0);
        found
    }

    /// The shims' sockets: containerd 1.6 puts them in `/run/containerd/s/`, named by the
    /// sha256 of `<containerd address>/<namespace>/<id>`, whatever its state dir. A shim
    /// that exits cleanly removes its socket; a killed one does not.
    fn shim_sockets(&self) -> Vec<PathBuf> {
        use sha2::{Digest, Sha256};
        let mut found = vec![];
        for (addr, ns) in &self.shim_owners {
            for id in self.created_ids() {
                let key = format!("{}/{ns}/{id}", addr.display());
                let hex: String = Sha256::digest(key.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let p = Path::new("/run/containerd/s").join(hex);
                if p.exists() {
                    found.push(p);
                }
            }
        }
        found
    }

    pub(crate) fn mounts(&self) -> Vec<String> {
        let dir = self.dir.path().to_str().unwrap();
        let under = format!("{dir}/");
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|mp| *mp == dir || mp.starts_with(&under))
            .map(String::from)
            .collect()
    }

    /// What the runtime (not the caller) would have left: live processes, mounts,
    /// container cgroups, state dirs.
    fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .processes()
            .into_iter()
            .map(|(p, what)| format!("process {p}: {what}"))
            .collect();
        left.extend(self.mounts().into_iter().map(|m| format!("mount {m}")));
        for d in self.cgroup_tree() {
            let name = d.file_name().unwrap().to_str().unwrap();
            let top = cgroup_dirs(&self.cgroup).iter().any(|t| Path::new(t) == d);
            if !top && !self.caller_cgroups.contains(&name) {
                left.push(format!("cgroup {}", d.display()));
            }
        }
        left.extend(
            self.shim_sockets()
                .into_iter()
                .map(|p| format!("shim socket {}", p.display())),
        );
        left.extend(
            self.container_units()
                .into_iter()
                .map(|u| format!("systemd unit {u}")),
        );
        for root in &self.runtime_roots {
            // containerd's shim roots are per namespace: <root>/<ns>/<id>
            let mut dirs = vec![];
            walk_dirs(root, &mut dirs);
            for d in dirs {
                if d.join("state.json").exists() {
                    left.push(format!("runtime state {}", d.display()));
                }
            }
        }
        for id in self.created_ids() {
            let d = default_root().join(&id);
            if d.exists() {
                left.push(format!("runtime state {}", d.display()));
            }
        }
        left
    }

    fn stop_daemon(&mut self) {
        let Some(mut child) = self.daemon.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let deadline = Instant::now() + DAEMON_WAIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                eprintln!("daemon {pid} ignored SIGTERM for {DAEMON_WAIT:?}: SIGKILL");
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kill, unmount and remove whatever is left, so a failure does not pollute the host.
    fn scrub(&self) {
        for _ in 0..50 {
            let procs = self.processes();
            if procs.is_empty() {
                break;
            }
            for (pid, _) in procs {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for id in self.created_ids() {
            let d = default_root().join(&id);
            if d.exists() {
                let _ = run(rt_cmd(
                    &default_root(),
                    Path::new("/"),
                    &["delete", "--force", &id],
                ));
                let _ = fs::remove_dir_all(&d);
            }
        }
        for mp in self.mounts().iter().rev() {
            let _ = nix::mount::umount2(mp.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(slice) = &self.slice {
            // the slice and everything in it; failed units stay loaded until reset
            let units = self.container_units();
            systemctl(&["stop", slice]);
            for u in units.iter().chain([slice]) {
                systemctl(&["reset-failed", u]);
            }
        }
        for _ in 0..50 {
            let tree = self.cgroup_tree();
            if tree.is_empty() {
                break;
            }
            for d in tree {
                // A caller's cgroupfs manager also makes plain directories (with a `tasks` file
                // of its own) under a /sys/fs/cgroup/<controller> that is no mount: those are
                // ordinary files on the tmpfs, removed as such.
                if on_cgroupfs(&d) {
                    let _ = fs::remove_dir(d);
                } else {
                    let _ = fs::remove_dir_all(d);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in self.shim_sockets() {
            let _ = fs::remove_file(p);
        }
        for d in HOST_DIRS {
            if !self.host_dirs_before.contains(d) {
                let _ = fs::remove_dir(d);
            }
        }
        if !self.default_root_existed {
            let _ = fs::remove_dir(default_root());
        }
        for d in cgroup_top() {
            if !self.cgroup_top_before.contains(&d) && !on_cgroupfs(&d) {
                // only an empty one: anything a caller put there for its own use stays
                let _ = fs::remove_dir(&d);
            }
        }
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        self.stop_daemon();
        // Processes leave their cgroups asynchronously once killed: give them a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = self.leftovers();
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            left = self.leftovers();
        }
        let argv = self.argv();
        self.scrub();
        if !self.mounts().is_empty() {
            let keep = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
            eprintln!("kept temp dir with mounts: {}", keep.keep().display());
        }
        if !std::thread::panicking() {
            assert!(
                left.is_empty(),
                "left behind: {left:#?}\nruntime argv:\n{argv}"
            );
        } else if !left.is_empty() {
            eprintln!("left behind: {left:#?}");
        }
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, f),
            Ok(t) if t.is_file() => f(&p),
            _ => {}
        }
    }
}

/// `dir` and every directory under it.
/// The entries of /sys/fs/cgroup.
fn cgroup_top() -> Vec<PathBuf> {
    fs::read_dir("/sys/fs/cgroup")
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// On cgroup v1 or cgroup2 (not the tmpfs /sys/fs/cgroup itself is).
fn on_cgroupfs(p: &Path) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x27e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x63677270;
    nix::sys::statfs::statfs(p).is_ok_and(|s| {
        let t = s.filesystem_type().0;
        t == CGROUP_SUPER_MAGIC || t == CGROUP2_SUPER_MAGIC
    })
}

pub(crate) fn walk_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_path_buf());
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk_dirs(&e.path(), out);
            }
        }
    }
}

/// `cmd` run by `script -qec` (util-linux), which gives it a terminal: `ctr run -t` and
/// `podman run -it` want one of their own. The line is quoted for script's `sh -c`.
fn under_script(cmd: &mut Command) -> Command {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_str().unwrap().replace('\'', "'\\''"));
    let mut line = quote(cmd.get_program());
    for a in cmd.get_args() {
        line += " ";
        line += &quote(a);
    }
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

pub(crate) fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    wait_for(what, || f().then_some(()));
}

mod containerd;
mod docker;
mod features;
pub(crate) mod images;
mod podman;

pub(crate) use images::busybox_layout;
