//! The harness: one busybox rootfs per test run, and per test its own bundle, `--root`,
//! container id and a guard that removes the container and then proves nothing is left.
//!
//! The runtime under test is `$RT_BIN` when set (e.g. runc, to prove the tests right),
//! else the rt built by cargo.

use serde_json::{json, Value};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A hung runtime must fail its test rather than hang CI.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub fn rt_bin() -> PathBuf {
    match std::env::var_os("RT_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_rt")),
    }
}

/// True when the binary under test is runc. Used only to relax assertions where rt
/// differs from runc on purpose; every such place says why.
pub fn is_runc() -> bool {
    rt_bin()
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|n| n.starts_with("runc"))
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Integration tests create namespaces, cgroups and mounts: that needs root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            eprintln!("skip: integration tests need root (run cargo test as root)");
            return;
        }
    };
}

/// The checkout the tests read `bundles/` from: `$RT_TEST_REPO` when set (the VM harness runs
/// this binary in a guest that has only a copy of `bundles/`), else the one cargo built.
pub fn repo() -> &'static Path {
    static REPO: OnceLock<PathBuf> = OnceLock::new();
    REPO.get_or_init(|| match std::env::var_os("RT_TEST_REPO") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    })
}

/// `RT_TEST_CGROUP_DRIVER=systemd`: every create and run passes the global `--systemd-cgroup`
/// and each container's cgroup is a systemd scope (see `cgroup_of`). Unset or `cgroupfs`: the
/// runtime writes the cgroup tree itself. Only a host with systemd as PID 1 can do the former.
pub fn systemd_driver() -> bool {
    static SYSTEMD: OnceLock<bool> = OnceLock::new();
    *SYSTEMD.get_or_init(|| match std::env::var("RT_TEST_CGROUP_DRIVER").as_deref() {
        Ok("systemd") => true,
        Ok("cgroupfs") | Ok("") | Err(_) => false,
        Ok(other) => panic!("RT_TEST_CGROUP_DRIVER={other:?}: want systemd or cgroupfs"),
    })
}

/// For container `id`: its `linux.cgroupsPath`, and where that puts its cgroup below
/// /sys/fs/cgroup (in every v1 hierarchy, or the one v2 tree). The systemd form is
/// `slice:prefix:name`, which runc makes the unit `prefix-name.scope` in that slice.
pub fn cgroup_of(id: &str) -> (String, String) {
    if systemd_driver() {
        (
            format!("system.slice:rt-test:{id}"),
            format!("/system.slice/rt-test-{id}.scope"),
        )
    } else {
        (format!("/rt-it-{id}"), format!("/rt-it-{id}"))
    }
}

/// The busybox rootfs, built once per test run and copied into each bundle.
/// The flock keeps two concurrent test binaries (rt and runc runs) from building it at once.
pub fn rootfs_cache() -> &'static Path {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target"));
        fs::create_dir_all(&target).unwrap();
        let dir = target.join("rt-test-rootfs");
        let lock = fs::File::create(target.join("rt-test-rootfs.lock")).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: plain syscall on an fd we own; the lock is released when `lock` drops.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        let out = Command::new("bash")
            .arg(repo().join("bundles/mkrootfs.sh"))
            .arg(&dir)
            .output()
            .expect("run bundles/mkrootfs.sh");
        assert!(
            out.status.success(),
            "mkrootfs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        drop(lock);
        dir
    })
}

/// What one runtime invocation did.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The exit code; a runtime killed by a signal is a bug, never an expected outcome.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| {
            panic!(
                "runtime killed by signal {:?}: {self:?}",
                self.status.signal()
            )
        })
    }
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code(), 0, "expected success: {self:#?}");
        self
    }
    /// A failure must be a non-zero exit with a message naming the problem.
    #[track_caller]
    pub fn fails_with(&self, phrase: &str) -> &Self {
        assert_ne!(
            self.code(),
            0,
            "expected failure with {phrase:?}: {self:#?}"
        );
        let msg = self.message();
        assert!(msg.contains(phrase), "stderr lacks {phrase:?}: {self:#?}");
        self
    }
    /// stderr with runc's logrus framing (`time=… level=error msg="…"`) reduced to the
    /// message, so rt's plain line and runc's quoted one compare alike.
    pub fn message(&self) -> String {
        self.stderr
            .lines()
            .map(|l| match (l.find(" msg=\""), l.ends_with('"')) {
                (Some(i), true) if l.starts_with("time=") => l[i + 6..l.len() - 1]
                    .replace("\\\"", "\"")
                    .replace("\\\\", "\\"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
    /// Errors are one clear line: a caller shows it as is.
    #[track_caller]
    pub fn one_error_line(&self) -> &Self {
        let lines: Vec<_> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "want exactly one error line: {self:#?}");
        self
    }
}

/// Wait for `child` at most TIMEOUT; kill it and panic past that.
pub fn wait_timeout(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {TIMEOUT:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Run a command with stdout/stderr captured in files, not pipes: a container started by
/// `create`/`run -d` inherits them, so a pipe would not reach EOF when the runtime exits.
pub fn run_cmd(mut cmd: Command, stdin: Stdio) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    cmd.stdin(stdin)
        .stdout(fs::File::create(&o).unwrap())
        .stderr(fs::File::create(&e).unwrap());
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let status = wait_timeout(&mut child, &what);
    Out {
        status,
        stdout: fs::read_to_string(&o).unwrap(),
        stderr: fs::read_to_string(&e).unwrap(),
    }
}

/// A runtime command with `--root` set; cwd is `cwd`.
pub fn rt_cmd(root: &Path, cwd: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(rt_bin());
    c.arg("--root").arg(root);
    if systemd_driver() && matches!(args.first(), Some(&"create") | Some(&"run")) {
        // only where the cgroup is made: later commands must find the driver in the state
        c.arg("--systemd-cgroup");
    }
    c.args(args).current_dir(cwd);
    // socket activation and sd_notify variables change which fds and sockets a runtime
    // hands over; the tests want the plain case whatever shell ran cargo
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

/// The example config `bundles/examples/NAME.json`.
pub fn example(name: &str) -> Value {
    let p = repo().join(format!("bundles/examples/{name}.json"));
    serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap()
}

/// The `sleep` example with `args` as the process.
pub fn config_with_args(args: &[&str]) -> Value {
    let mut c = example("sleep");
    c["process"]["args"] = json!(args);
    c
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// One container: its bundle, its `--root`, its id, and the cleanup guard (Drop).
pub struct Ctr {
    pub id: String,
    pub root: tempfile::TempDir,
    pub bundle: tempfile::TempDir,
    /// Pids (with their start times) seen during the test, checked gone on drop.
    pids: std::cell::RefCell<Vec<(i32, u64)>>,
    /// `linux.cgroupsPath` as the config gives it, and the cgroup it names (`cgroup_of`).
    pub cgroups_path: String,
    pub cgroup: String,
    /// Report leftovers instead of failing: only for a runc behaviour rt means to improve.
    pub tolerate_leaks: std::cell::Cell<bool>,
}

impl Ctr {
    /// A bundle with `config` (its cgroupsPath set to a findable `/rt-it-<id>`, or a scope
    /// under the systemd driver) and a private copy of the busybox rootfs.
    pub fn new(tag: &str, mut config: Value) -> Ctr {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("it-{tag}-{}-{n}", std::process::id());
        let (cgroups_path, cgroup) = cgroup_of(&id);
        if config.get("linux").is_some() {
            config["linux"]["cgroupsPath"] = json!(cgroups_path);
        }
        let bundle = tempfile::Builder::new().prefix("rt-it-").tempdir().unwrap();
        let root = tempfile::Builder::new()
            .prefix("rt-root-")
            .tempdir()
            .unwrap();
        let cache = rootfs_cache();
        // A private copy (~30 ms) lets tests write into their rootfs and keeps bundles
        // independent; a shared read-only rootfs would hide writes to it.
        let st = Command::new("cp")
            .arg("-a")
            .arg(cache)
            .arg(bundle.path().join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success(), "cp -a rootfs");
        let c = Ctr {
            id,
            root,
            bundle,
            pids: Default::default(),
            cgroups_path,
            cgroup,
            tolerate_leaks: Default::default(),
        };
        c.write_config(&config);
        c
    }

    pub fn write_config(&self, config: &Value) {
        fs::write(
            self.bundle.path().join("config.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
    }

    pub fn bundle_str(&self) -> &str {
        self.bundle.path().to_str().unwrap()
    }

    /// The runtime with this container's `--root`, run in the bundle dir.
    pub fn cmd(&self, args: &[&str]) -> Command {
        rt_cmd(self.root.path(), self.bundle.path(), args)
    }

    pub fn rt(&self, args: &[&str]) -> Out {
        run_cmd(self.cmd(args), Stdio::null())
    }

    /// `create` of a terminal container, its console master sent to `sock`.
    pub fn create_cmd_with_console(&self, sock: &Path) -> Command {
        self.cmd(&[
            "create",
            "--bundle",
            self.bundle_str(),
            "--console-socket",
            sock.to_str().unwrap(),
            &self.id,
        ])
    }

    /// `create` of a terminal container through a console socket in the bundle: the pty master.
    pub fn create_with_console(&self) -> std::os::fd::OwnedFd {
        let sock = self.bundle.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let cmd = self.create_cmd_with_console(&sock);
        let creator = std::thread::spawn(move || run_cmd(cmd, Stdio::null()));
        let master = crate::exec::receive_fd(&listener);
        creator.join().unwrap().ok();
        self.track_pid();
        master
    }

    pub fn create(&self) -> Out {
        let out = self.rt(&["create", "--bundle", self.bundle_str(), &self.id]);
        if out.status.success() {
            self.track_pid();
        }
        out
    }

    pub fn start(&self) -> Out {
        self.rt(&["start", &self.id])
    }

    /// `run` in the foreground: the container's stdout/stderr come back in Out.
    pub fn run(&self) -> Out {
        self.rt(&["run", "--bundle", self.bundle_str(), &self.id])
    }

    /// `kill [--all] ID [SIGNAL]`
    pub fn kill(&self, all: bool, signal: Option<&str>) -> Out {
        let mut a = vec!["kill"];
        if all {
            a.push("--all");
        }
        a.push(&self.id);
        a.extend(signal);
        self.rt(&a)
    }

    pub fn delete(&self, force: bool) -> Out {
        if force {
            self.rt(&["delete", "--force", &self.id])
        } else {
            self.rt(&["delete", &self.id])
        }
    }

    /// `state ID` parsed; panics if the command fails.
    pub fn state(&self) -> Value {
        let out = self.rt(&["state", &self.id]);
        out.ok();
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}): {out:#?}"));
        check_state_schema(&v);
        v
    }

    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_string()
    }

    /// Wait until `state` reports `want` (a process exit is observed asynchronously).
    pub fn wait_status(&self, want: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let s = self.state();
            if s["status"] == want {
                return s;
            }
            assert!(Instant::now() < deadline, "status never became {want}: {s}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Remember the init pid (and start time, against pid reuse) for the leak check.
    pub fn track_pid(&self) {
        let s = self.state();
        if let Some(pid) = s["pid"].as_i64().filter(|p| *p > 0) {
            if let Some(t) = proc_start_time(pid as i32) {
                self.pids.borrow_mut().push((pid as i32, t));
            }
        }
    }

    /// Everything the container may have left behind, as human-readable findings.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = vec![];
        let state_dir = self.root.path().join(&self.id);
        if state_dir.exists() {
            found.push(format!("state dir {}", state_dir.display()));
        }
        found.extend(
            cgroup_dirs(&self.cgroup)
                .into_iter()
                .map(|d| format!("cgroup {d}")),
        );
        if let Some(unit) = self.scope() {
            // systemd keeps a transient unit's file while the unit is loaded (a failed one
            // stays loaded until someone resets it)
            if Path::new("/run/systemd/transient").join(&unit).exists() {
                found.push(format!("systemd unit {unit}"));
            }
        }
        for &(pid, t) in self.pids.borrow().iter() {
            if process_alive(pid, t) {
                found.push(format!("process {pid}"));
            }
        }
        let bundle = self.bundle_str();
        for line in fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
            if line.contains(bundle) {
                found.push(format!("mount {line}"));
            }
        }
        found
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let out = self.delete(true);
        // The init's death and the cgroup's emptying are asynchronous: give them a moment.
        let grace = if self.tolerate_leaks.get() { 500 } else { 5000 };
        let deadline = Instant::now() + Duration::from_millis(grace);
        let mut left = self.leftovers();
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            left = self.leftovers();
        }
        if !left.is_empty() {
            if let Some(unit) = self.scope() {
                for verb in ["stop", "reset-failed"] {
                    let _ = Command::new("systemctl").args([verb, &unit]).output();
                }
            }
            scrub(&self.cgroup);
            self.unmount_or_keep_bundle();
        }
        if std::thread::panicking() || self.tolerate_leaks.get() {
            if !left.is_empty() {
                eprintln!("left behind by {}: {left:#?}", self.id);
            }
            return;
        }
        assert!(out.status.success(), "delete --force {}: {out:#?}", self.id);
        assert!(left.is_empty(), "left behind by {}: {left:#?}", self.id);
    }
}

impl Ctr {
    /// The systemd unit of the container's cgroup, under the systemd driver.
    fn scope(&self) -> Option<String> {
        let unit = self.cgroup.rsplit('/').next()?;
        (systemd_driver() && unit.ends_with(".scope")).then(|| unit.to_string())
    }

    /// Removing a bundle that still has mounts under it could delete through them into
    /// whatever they show (a bind of a host directory): detach them, and if any stays,
    /// keep the bundle on disk rather than risk it.
    fn unmount_or_keep_bundle(&mut self) {
        let bundle = self.bundle_str().to_string();
        let mounted = || -> Vec<String> {
            let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            info.lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|mp| mp.starts_with(&bundle))
                .map(String::from)
                .collect()
        };
        for mp in mounted().iter().rev() {
            let _ = nix::mount::umount2(mp.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if !mounted().is_empty() {
            let keep = std::mem::replace(&mut self.bundle, tempfile::tempdir().unwrap());
            eprintln!("kept bundle with mounts: {}", keep.keep().display());
        }
    }
}

/// Best effort, after a leak was recorded: kill what is in the container's cgroups and
/// remove them, so one failure does not pollute the host for the next runs.
fn scrub(cgroup: &str) {
    for _ in 0..50 {
        let dirs = cgroup_dirs(cgroup);
        if dirs.is_empty() {
            return;
        }
        for d in &dirs {
            let procs = fs::read_to_string(format!("{d}/cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|p| p.parse().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGKILL,
                );
            }
            let _ = fs::remove_dir(d);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Field 22 of /proc/PID/stat: the start time, which tells a reused pid apart.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Alive means: the same process (same start time) and not a zombie. A zombie is dead;
/// who reaps it is the host's pid 1, not the runtime (pid 1 on some hosts never does).
pub fn process_alive(pid: i32, start: u64) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let rest = &stat[close + 2..];
    let state = rest.chars().next();
    proc_start_time(pid) == Some(start) && state != Some('Z')
}

/// Every directory for cgroup `path` in any hierarchy: v1 controllers, the hybrid
/// unified mount, or a pure v2 host.
pub fn cgroup_dirs(path: &str) -> Vec<String> {
    let rel = path.trim_start_matches('/');
    let mut found = vec![];
    let top = Path::new("/sys/fs/cgroup");
    let mut candidates = vec![top.join(rel)];
    if let Ok(rd) = fs::read_dir(top) {
        for e in rd.flatten() {
            candidates.push(e.path().join(rel));
        }
    }
    for c in candidates {
        if c.is_dir() {
            found.push(c.display().to_string());
        }
    }
    found
}

/// Where a relative cgroups path lands for a runtime started from this test process: below
/// our own cgroup in each v1 hierarchy and in a hybrid host's cgroup2 tree; below its parent on
/// a pure v2 host (ours has processes, so it cannot hand controllers to a child).
pub fn own_cgroup_dirs(rel: &str) -> Vec<String> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut out = vec![];
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let mount = if ctrls.is_empty() {
            if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
                out.push(format!("/sys/fs/cgroup{}/{rel}", parent.display()).replace("//", "/"));
                continue;
            }
            "unified".to_string()
        } else {
            // co-mounted controllers share one mount, named as the host names it
            let name = ctrls.trim_start_matches("name=");
            match ["cpu,cpuacct", "net_cls,net_prio"]
                .iter()
                .find(|m| m.contains(name))
            {
                Some(m) if Path::new("/sys/fs/cgroup").join(m).is_dir() => m.to_string(),
                _ => name.to_string(),
            }
        };
        let dir = format!("/sys/fs/cgroup/{mount}{path}/{rel}").replace("//", "/");
        if Path::new(&format!("/sys/fs/cgroup/{mount}")).is_dir() {
            out.push(dir);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The OCI state schema (runtime-spec schema/state-schema.json), checked by hand:
/// required ociVersion/id/status/bundle strings, pid a non-negative integer,
/// status one of the four, annotations a string map.
#[track_caller]
pub fn check_state_schema(v: &Value) {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("state is not an object: {v}"));
    for k in ["ociVersion", "id", "status", "bundle"] {
        assert!(
            o.get(k).is_some_and(Value::is_string),
            "state.{k} must be a string: {v}"
        );
    }
    let status = o["status"].as_str().unwrap();
    assert!(
        ["creating", "created", "running", "stopped"].contains(&status),
        "bad status {status}: {v}"
    );
    if let Some(pid) = o.get("pid") {
        assert!(
            pid.as_u64().is_some(),
            "state.pid must be an integer >= 0: {v}"
        );
    }
    if let Some(a) = o.get("annotations") {
        let m = a
            .as_object()
            .unwrap_or_else(|| panic!("annotations not an object: {v}"));
        assert!(
            m.values().all(Value::is_string),
            "annotations must map to strings: {v}"
        );
    }
}

/// Read a file descriptor to EOF on a thread, so the test can bound the wait.
pub fn read_all_timeout<R: Read + Send + 'static>(mut r: R, what: &str) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let res = r.read_to_string(&mut s).map(|_| s);
        let _ = tx.send(res);
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("timed out reading {what}"),
    }
}

/// Poll `f` every 10 ms until it yields a value; panic after TIMEOUT naming `what`.
#[track_caller]
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids in the container's cgroup, over every hierarchy, sorted.
pub fn cgroup_procs(path: &str) -> Vec<i32> {
    let mut all: Vec<i32> = cgroup_dirs(path)
        .iter()
        .filter_map(|d| fs::read_to_string(format!("{d}/cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    all.sort();
    all.dedup();
    all
}

impl Ctr {
    /// create + start, for tests that work on a running container.
    pub fn started(tag: &str, config: Value) -> Ctr {
        let c = Ctr::new(tag, config);
        c.create().ok();
        c.start().ok();
        c
    }

    /// `exec ID ARGS…` in the foreground; the process's output comes back in Out.
    pub fn exec(&self, flags: &[&str], args: &[&str]) -> Out {
        let mut a = vec!["exec"];
        a.extend(flags);
        a.push(&self.id);
        a.extend(args);
        self.rt(&a)
    }

    /// `state`'s status without the OCI schema check: `paused` is runc's addition
    /// to the spec's four states.
    pub fn raw_status(&self) -> String {
        let out = self.rt(&["state", &self.id]);
        out.ok();
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    }
}

/// Asserts process `pid` is in cgroup `path` in every hierarchy it belongs to, v1 and cgroup2.
pub fn assert_in_cgroup_everywhere(pid: i64, path: &str, what: &str) {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines() {
        assert!(
            line.ends_with(&format!(":{path}")),
            "{what}: not in {path} in every hierarchy: {cg}"
        );
    }
}

/// The keys of every JSON object in `text`, in the order the text has them (serde_json's own
/// maps sort them): `Keys` of the top-level object, each key with the keys of its value.
#[derive(Debug, Default)]
pub struct Keys(pub Vec<(String, Keys)>);

impl Keys {
    pub fn of(text: &str) -> Keys {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
    pub fn get(&self, key: &str) -> &Keys {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no key {key:?} in {:?}", self.names()))
    }
}

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                let mut keys = vec![];
                while let Some(k) = m.next_key::<String>()? {
                    keys.push((k, m.next_value::<Keys>()?));
                }
                Ok(Keys(keys))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Keys, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Keys::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Keys, E> {
                Ok(Keys::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Keys, E> {
                Ok(Keys::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Keys, E> {
                Ok(Keys::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Keys, E> {
                Ok(Keys::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Keys, E> {
                Ok(Keys::default())
            }
            fn visit_unit<E>(self) -> Result<Keys, E> {
                Ok(Keys::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A logrus line as runc writes it, text (`time="…" level=L msg=…`) or json
/// (`{"level":…,"msg":…,"time":…}` plus any fields, keys sorted): its level and message.
/// The time must be RFC 3339 to the second, logrus' default.
#[track_caller]
pub fn parse_log_line(line: &str) -> (String, String) {
    let (level, msg, time) = if line.starts_with('{') {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let keys = Keys::of(line);
        let names = keys.names();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "json log keys unsorted: {line}");
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("no {k}: {line}"))
                .to_string()
        };
        (s("level"), s("msg"), s("time"))
    } else {
        let rest = line
            .strip_prefix("time=\"")
            .unwrap_or_else(|| panic!("not a logrus text line: {line:?}"));
        let (time, rest) = rest.split_once("\" level=").unwrap();
        let (level, rest) = rest.split_once(" msg=").unwrap();
        let msg = match rest.strip_prefix('"') {
            // quoted up to the closing quote (fields such as pid= may follow)
            Some(q) => {
                let mut out = String::new();
                let mut chars = q.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => out.push(chars.next().unwrap()),
                        '"' => break,
                        c => out.push(c),
                    }
                }
                out
            }
            None => rest.split(' ').next().unwrap().to_string(),
        };
        (level.to_string(), msg, time.to_string())
    };
    let t = time.as_bytes();
    let zone = &time[19.min(time.len())..];
    assert!(
        time.len() >= 20
            && t[4] == b'-'
            && t[10] == b'T'
            && t[16] == b':'
            && (zone == "Z"
                || (zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')))),
        "log time is not RFC 3339 to the second: {line}"
    );
    (level, msg)
}
