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

fn find_bin(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The binaries a test needs, or why it cannot run.
fn need(bins: &[&str]) -> Result<Vec<PathBuf>, String> {
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

fn fixtures() -> PathBuf {
    let here = repo().join("../shared/fixtures");
    if here.is_dir() {
        here
    } else {
        PathBuf::from("/work/shared/fixtures")
    }
}

fn spec_schema_dir() -> PathBuf {
    let here = repo().join("../shared/spec/runtime/schema");
    if here.is_dir() {
        here
    } else {
        PathBuf::from("/work/shared/spec/runtime/schema")
    }
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
fn clean_cmd(bin: impl AsRef<std::ffi::OsStr>) -> Command {
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

fn run(cmd: Command) -> Out {
    run_cmd(cmd, Stdio::null())
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
struct Scene {
    dir: tempfile::TempDir,
    /// The wrapped runtime the caller is given.
    wrapper: PathBuf,
    argv_log: PathBuf,
    /// The cgroup parent every container of this test goes under, e.g. `/rt-peers-123-ctr`.
    cgroup: String,
    /// Cgroup children the caller itself owns (podman's `conmon`): not leaks of the runtime.
    caller_cgroups: &'static [&'static str],
    /// Runtime roots under `dir` that must hold no container when the test ends.
    runtime_roots: Vec<PathBuf>,
    daemon: Option<Child>,
    daemon_log: PathBuf,
    host_dirs_before: Vec<&'static str>,
    default_root_existed: bool,
    _serial: MutexGuard<'static, ()>,
}

impl Scene {
    fn new(tag: &str, caller_cgroups: &'static [&'static str]) -> Scene {
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
        Scene {
            wrapper,
            argv_log,
            cgroup: format!("/rt-peers-{}-{tag}", std::process::id()),
            caller_cgroups,
            runtime_roots: vec![],
            daemon: None,
            daemon_log: dir.path().join("daemon.log"),
            host_dirs_before: HOST_DIRS
                .iter()
                .copied()
                .filter(|d| Path::new(d).exists())
                .collect(),
            default_root_existed: default_root().exists(),
            dir,
            _serial: serial,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Start the daemon (output to `daemon.log`) and wait until `ready` says it serves.
    /// Err(reason) when it exits or never becomes ready: the caller cannot start here.
    fn start_daemon(
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

    fn log_tail(&self, p: &Path, n: usize) -> String {
        let s = fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<_> = s.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Every runtime invocation so far, one argv per line.
    fn argv(&self) -> String {
        fs::read_to_string(&self.argv_log).unwrap()
    }

    /// What to show when a caller's command fails: its output, the argv rt got, the
    /// daemon's log tail, and every `log.json` the shim left (rt's error lines).
    fn context(&self, out: &Out) -> String {
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
            "{out:#?}\n--- runtime argv:\n{}--- daemon log tail:\n{}\n{logs}",
            self.argv(),
            self.log_tail(&self.daemon_log, 15)
        )
    }

    #[track_caller]
    fn ok(&self, cmd: Command) -> String {
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
    fn processes(&self) -> Vec<(i32, String)> {
        let me = std::process::id() as i32;
        let dir = self.dir.path().to_str().unwrap().to_string();
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

    fn mounts(&self) -> Vec<String> {
        let dir = self.dir.path().to_str().unwrap();
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|mp| mp.starts_with(dir))
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
        for _ in 0..50 {
            let tree = self.cgroup_tree();
            if tree.is_empty() {
                break;
            }
            for d in tree {
                let _ = fs::remove_dir(d);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for d in HOST_DIRS {
            if !self.host_dirs_before.contains(d) {
                let _ = fs::remove_dir(d);
            }
        }
        if !self.default_root_existed {
            let _ = fs::remove_dir(default_root());
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
fn walk_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
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

/// A one-layer busybox OCI image layout at `dir` (tag "latest").
fn busybox_layout(dir: &Path) {
    let mut c = Command::new("bash");
    c.arg(fixtures().join("mk-busybox-image.sh")).arg(dir);
    let out = run(c);
    assert!(out.status.success(), "mk-busybox-image.sh: {out:#?}");
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    wait_for(what, || f().then_some(()));
}

// ---------------------------------------------------------------------------------------
// containerd

const NS: &str = "rt-test";
const IMAGE: &str = "localhost/rt-busybox:latest";

/// containerd's config: everything under `dir`, CRI off unless `cri` gives its section.
fn containerd_config(s: &Scene, cri: Option<&str>) -> String {
    let d = s.dir.path().display();
    let mut c = format!(
        "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
         [grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
         [metrics]\n  address = \"\"\n"
    );
    match cri {
        None => c = format!("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n{c}"),
        Some(section) => c += section,
    }
    c
}

fn start_containerd(s: &mut Scene, cri: Option<&str>) -> Result<(), String> {
    let cfg = s.path("config.toml");
    fs::write(&cfg, containerd_config(s, cri)).unwrap();
    let mut cmd = clean_cmd("containerd");
    cmd.arg("--config").arg(&cfg);
    s.start_daemon(cmd, |s| {
        s.path("c.sock").exists() && run(ctr(s, &["version"])).status.success()
    })
}

fn ctr(s: &Scene, args: &[&str]) -> Command {
    let mut c = clean_cmd("ctr");
    c.arg("-a")
        .arg(s.path("c.sock"))
        .args(["-n", NS])
        .args(args);
    c
}

/// `ctr run` with the wrapped runtime, a shim root in the temp dir and a findable cgroup.
fn ctr_run(s: &Scene, flags: &[&str], id: &str, args: &[&str]) -> Command {
    let mut c = ctr(s, &["run"]);
    c.args(flags)
        .arg("--fifo-dir")
        .arg(s.path("fifo"))
        .arg("--runc-binary")
        .arg(&s.wrapper)
        .arg("--runc-root")
        .arg(s.path("runc-root"))
        .arg("--cgroup")
        .arg(format!("{}/{id}", s.cgroup))
        .arg(IMAGE)
        .arg(id)
        .args(args);
    c
}

/// `ctr task ls` as id → (pid, status).
/// `ctr task exec` with its fifos in the temp dir (ctr -d never removes them).
fn ctr_exec(s: &Scene, flags: &[&str], args: &[&str]) -> Command {
    let mut c = ctr(s, &["task", "exec", "--fifo-dir"]);
    c.arg(s.path("fifo")).args(flags).args(args);
    c
}

fn task_status(s: &Scene, id: &str) -> Option<(String, String)> {
    let out = s.ok(ctr(s, &["task", "ls"]));
    out.lines().skip(1).find_map(|l| {
        let f: Vec<_> = l.split_whitespace().collect();
        (f.first() == Some(&id)).then(|| (f[1].to_string(), f[2].to_string()))
    })
}

/// The runtime's own view of a container the shim made: `state` with the shim's root.
fn rt_status(s: &Scene, id: &str) -> String {
    let root = s.path("runc-root").join(NS);
    let out = run(rt_cmd(&root, Path::new("/"), &["state", id]));
    assert!(out.status.success(), "state {id}: {}", s.context(&out));
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    v["status"].as_str().unwrap().to_string()
}

#[test]
fn containerd_ctr_drives_the_runtime() {
    need_or_skip!(
        "containerd",
        "ctr",
        "containerd-shim-runc-v2",
        "umoci",
        "script"
    );
    let mut s = Scene::new("ctr", &[]);
    s.runtime_roots.push(s.path("runc-root"));
    if let Err(why) = start_containerd(&mut s, None) {
        eprintln!("skip: containerd cannot start here: {why}");
        return;
    }
    let layout = s.path("image");
    busybox_layout(&layout);
    let tar = s.path("image.tar");
    let mut c = Command::new("tar");
    c.arg("-C").arg(&layout).arg("-cf").arg(&tar).arg(".");
    s.ok(c);
    let mut imp = ctr(
        &s,
        &["images", "import", "--base-name", "localhost/rt-busybox"],
    );
    imp.arg(&tar);
    s.ok(imp);
    assert!(s.ok(ctr(&s, &["images", "ls", "-q"])).contains(IMAGE));

    // Foreground run: the container's stdout reaches ctr.
    let out = s.ok(ctr_run(&s, &["--rm"], "hello", &["echo", "hi"]));
    assert_eq!(out, "hi\n");
    let argv = s.argv();
    assert!(
        argv.lines()
            .any(|l| l.contains("--log-format json create --bundle")),
        "{argv}"
    );

    // The exit status travels runtime → shim → containerd → ctr.
    s.code(ctr_run(&s, &["--rm"], "exit3", &["sh", "-c", "exit 3"]), 3);

    // Detached: exec, ps, pause/resume, kill, rm.
    let id = "det";
    s.ok(ctr_run(&s, &["-d"], id, &["sleep", "1000"]));
    let (pid, st) = task_status(&s, id).expect("task listed");
    assert_eq!(st, "RUNNING");
    let ls = s.ok(ctr_exec(&s, &["--exec-id", "e1"], &[id, "ls", "/"]));
    for want in ["bin", "etc", "proc", "sys"] {
        assert!(ls.lines().any(|l| l == want), "ls / lacks {want}: {ls}");
    }
    s.code(
        ctr_exec(&s, &["--exec-id", "e2"], &[id, "sh", "-c", "exit 7"]),
        7,
    );
    // Keep an exec alive so that ps has two processes to show.
    s.ok(ctr_exec(
        &s,
        &["-d", "--exec-id", "e3"],
        &[id, "sleep", "999"],
    ));
    let ps = s.ok(ctr(&s, &["task", "ps", id]));
    let pids: Vec<&str> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(pids.contains(&pid.as_str()), "ps lacks init {pid}: {ps}");
    assert_eq!(pids.len(), 2, "init + exec e3: {ps}");

    s.ok(ctr(&s, &["task", "pause", id]));
    assert_eq!(task_status(&s, id).unwrap().1, "PAUSED");
    assert_eq!(rt_status(&s, id), "paused");
    s.ok(ctr(&s, &["task", "resume", id]));
    assert_eq!(task_status(&s, id).unwrap().1, "RUNNING");
    assert_eq!(rt_status(&s, id), "running");

    s.ok(ctr(&s, &["task", "kill", "-s", "SIGKILL", id]));
    wait_until("task stopped", || {
        task_status(&s, id).unwrap().1 == "STOPPED"
    });
    s.ok(ctr(&s, &["task", "rm", id]));
    s.ok(ctr(&s, &["c", "rm", id]));
    assert!(task_status(&s, id).is_none());
    assert!(!s.path("runc-root").join(NS).join(id).exists());

    // A terminal: ctr -t needs one itself, so it runs under script(1).
    let line = format!(
        "ctr -a {} -n {NS} run --rm -t --fifo-dir {}/fifo --runc-binary {} --runc-root {} --cgroup {}/tty {IMAGE} tty \
         sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty'",
        s.path("c.sock").display(),
        s.dir.path().display(),
        s.wrapper.display(),
        s.path("runc-root").display(),
        s.cgroup
    );
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    let out = s.ok(c);
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("stdio-is-a-tty"), "{out:?}");
    let argv = s.argv();
    assert!(
        argv.lines()
            .any(|l| l.contains(" create ") && l.contains("--console-socket ")),
        "no --console-socket: {argv}"
    );

    s.ok(ctr(&s, &["images", "rm", IMAGE]));
    eprintln!("runtime argv under containerd:\n{}", s.argv());
}

/// The README's CRI runtime handler: containerd loads it with the CRI plugin enabled.
#[test]
fn containerd_cri_loads_the_rt_runtime_handler() {
    need_or_skip!("containerd", "ctr");
    let mut s = Scene::new("cri", &[]);
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    // The handler as the README gives it, with BinaryName pointed at the wrapper and the
    // CNI dirs moved into the temp dir (the CRI plugin creates its conf dir).
    let start = readme
        .find("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]")
        .expect("README has the CRI runtime config");
    let end = start + readme[start..].find("```").unwrap();
    let section = readme[start..end].replace("/usr/local/bin/rt", s.wrapper.to_str().unwrap());
    assert!(section.contains("runtimes.rt.options]"), "{section}");
    let section = format!(
        "{section}[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  conf_dir = \"{0}/cni\"\n  bin_dir = \"{0}/cni-bin\"\n",
        s.dir.path().display()
    );
    if let Err(why) = start_containerd(&mut s, Some(&section)) {
        eprintln!("skip: containerd with CRI cannot start here: {why}");
        return;
    }
    let plugins = s.ok(ctr(&s, &["plugins", "ls"]));
    let cri = plugins
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("cri"))
        .expect("cri plugin listed");
    let log = fs::read_to_string(&s.daemon_log).unwrap();
    if !cri.trim_end().ends_with("ok") {
        // The plugin's own failure (not our config) means CRI cannot run here.
        let why: Vec<_> = log
            .lines()
            .filter(|l| l.contains("io.containerd.grpc.v1.cri"))
            .collect();
        assert!(
            !why.iter().any(|l| l.contains("invalid plugin config")),
            "containerd rejected the README's CRI config: {why:#?}"
        );
        eprintln!("skip: the CRI plugin cannot start here: {cri}: {why:#?}");
        return;
    }
    // containerd logs the CRI config it runs with; the rt handler must be in it.
    let cfg = log
        .lines()
        .find(|l| l.contains("Start cri plugin with config"))
        .expect("containerd logs the CRI config");
    let rt = &cfg[cfg
        .find("rt:{Type:")
        .expect("no rt runtime in the CRI config")..];
    let rt = &rt[..rt.find('}').unwrap()];
    assert!(rt.contains("Type:io.containerd.runc.v2"), "{rt}");
    let want = format!("Options:map[BinaryName:{}]", s.wrapper.display());
    assert!(rt.contains(&want), "{rt}");
}

// ---------------------------------------------------------------------------------------
// podman

fn podman(s: &Scene, args: &[&str]) -> Command {
    let mut c = clean_cmd("podman");
    let d = s.dir.path();
    c.arg("--root")
        .arg(d.join("root"))
        .arg("--runroot")
        .arg(d.join("runroot"))
        .arg("--tmpdir")
        .arg(d.join("tmp"))
        .arg("--volumepath")
        .arg(d.join("volumes"))
        .arg("--network-config-dir")
        .arg(d.join("net"))
        .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
        .args(["--storage-driver", "vfs"])
        .arg("--runtime")
        .arg(&s.wrapper)
        .args(args);
    c
}

/// `podman run` flags every container here needs. The rlimits: podman asks for
/// nofile/nproc 1048576, which needs CAP_SYS_RESOURCE, and this machine's root lacks it
/// (runc fails the same way), so ask for what is already allowed.
fn podman_run_flags(s: &Scene) -> Vec<String> {
    [
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--cgroup-parent",
        &s.cgroup,
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn podman_drives_the_runtime() {
    need_or_skip!("podman", "conmon", "umoci");
    let s = Scene::new("podman", &["conmon"]);
    let layout = s.path("image");
    busybox_layout(&layout);
    let pulled = run(podman(
        &s,
        &["pull", "-q", &format!("oci:{}:latest", layout.display())],
    ));
    if !pulled.status.success() {
        eprintln!(
            "skip: podman cannot load an image here: {}",
            pulled.stderr.trim()
        );
        return;
    }
    let image = pulled.stdout.trim().to_string();
    let flags = podman_run_flags(&s);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    let mut a = vec!["run", "--rm"];
    a.extend(&flags);
    a.extend([image.as_str(), "echo", "hi"]);
    assert_eq!(s.ok(podman(&s, &a)), "hi\n");

    let mut a = vec!["run", "--rm"];
    a.extend(&flags);
    a.extend([image.as_str(), "sh", "-c", "exit 3"]);
    s.code(podman(&s, &a), 3);

    // Detached, exec, stop (SIGTERM reaches the container: it exits 0 by its trap), rm.
    let mut a = vec!["run", "-d", "--name", "p1"];
    a.extend(&flags);
    a.extend([
        image.as_str(),
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 1000 & wait",
    ]);
    let id = s.ok(podman(&s, &a)).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let st = s.ok(podman(&s, &["inspect", "-f", "{{.State.Status}}", "p1"]));
    assert_eq!(st.trim(), "running");
    let out = s.ok(podman(
        &s,
        &[
            "exec",
            "p1",
            "sh",
            "-c",
            "echo from-exec; cat /proc/1/cmdline",
        ],
    ));
    assert!(out.starts_with("from-exec\nsh"), "{out:?}");
    s.code(podman(&s, &["exec", "p1", "sh", "-c", "exit 4"]), 4);
    let t0 = Instant::now();
    s.ok(podman(&s, &["stop", "-t", "10", "p1"]));
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "SIGTERM did not stop it"
    );
    let code = s.ok(podman(&s, &["inspect", "-f", "{{.State.ExitCode}}", "p1"]));
    assert_eq!(code.trim(), "0", "the container's TERM trap did not run");
    s.ok(podman(&s, &["rm", "p1"]));
    // podman sends no --root: the state went to the runtime's default root and is gone.
    let argv = s.argv();
    assert!(!argv.contains("--root"), "{argv}");
    assert!(!default_root().join(&id).exists());
    assert!(s.ok(podman(&s, &["ps", "-aq"])).trim().is_empty());
    s.ok(podman(&s, &["rmi", "-a"]));
    eprintln!("runtime argv under podman:\n{argv}");
}

// ---------------------------------------------------------------------------------------
// docker

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

// ---------------------------------------------------------------------------------------
// features

/// A hand validator for the subset of JSON Schema draft-04 the runtime-spec schemas use.
/// Any keyword or pattern it does not know is an error, so a schema change cannot make
/// it silently check less.
struct Validator {
    dir: PathBuf,
}

impl Validator {
    fn load(&self, file: &str) -> Value {
        let p = self.dir.join(file);
        serde_json::from_str(
            &fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    }

    fn check(&self, doc: &Value, file: &str) -> Vec<String> {
        let mut errs = vec![];
        let schema = self.load(file);
        self.node(doc, &schema, file, "$", &mut errs);
        errs
    }

    fn node(&self, doc: &Value, schema: &Value, file: &str, at: &str, errs: &mut Vec<String>) {
        let Some(obj) = schema.as_object() else {
            errs.push(format!("{at}: schema is not an object"));
            return;
        };
        for (k, v) in obj {
            match k.as_str() {
                "description" | "$schema" | "id" => {}
                "$ref" => {
                    let r = v.as_str().unwrap();
                    let (f, ptr) = r.split_once('#').unwrap_or((r, ""));
                    let f = if f.is_empty() { file } else { f };
                    let target = self.load(f);
                    let sub = target
                        .pointer(ptr)
                        .unwrap_or_else(|| panic!("bad $ref {r} in {file}"));
                    self.node(doc, sub, f, at, errs);
                }
                "type" => {
                    let t = v.as_str().unwrap();
                    let ok = match t {
                        "object" => doc.is_object(),
                        "array" => doc.is_array(),
                        "string" => doc.is_string(),
                        "boolean" => doc.is_boolean(),
                        "integer" => doc.is_i64() || doc.is_u64(),
                        "number" => doc.is_number(),
                        _ => {
                            errs.push(format!("{at}: validator does not know type {t}"));
                            true
                        }
                    };
                    if !ok {
                        errs.push(format!("{at}: want {t}, got {doc}"));
                    }
                }
                "enum" => {
                    if !v.as_array().unwrap().contains(doc) {
                        errs.push(format!("{at}: {doc} not one of {v}"));
                    }
                }
                "pattern" => {
                    let (p, Some(sv)) = (v.as_str().unwrap(), doc.as_str()) else {
                        continue;
                    };
                    match p {
                        "^CAP_[A-Z_]+$" => {
                            let rest = sv.strip_prefix("CAP_").unwrap_or("");
                            if rest.is_empty()
                                || !rest.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                            {
                                errs.push(format!("{at}: {sv:?} does not match {p}"));
                            }
                        }
                        _ => errs.push(format!("{at}: validator does not know pattern {p}")),
                    }
                }
                "required" => {
                    for r in v.as_array().unwrap() {
                        let r = r.as_str().unwrap();
                        if doc.is_object() && doc.get(r).is_none() {
                            errs.push(format!("{at}: required {r} missing"));
                        }
                    }
                }
                "properties" => {
                    if let Some(d) = doc.as_object() {
                        for (name, sub) in v.as_object().unwrap() {
                            if let Some(dv) = d.get(name) {
                                self.node(dv, sub, file, &format!("{at}.{name}"), errs);
                            }
                        }
                    }
                }
                "patternProperties" => {
                    if let Some(d) = doc.as_object() {
                        for (p, sub) in v.as_object().unwrap() {
                            if p != ".{1,}" {
                                errs.push(format!("{at}: validator does not know pattern {p}"));
                                continue;
                            }
                            for (name, dv) in d.iter().filter(|(n, _)| !n.is_empty()) {
                                self.node(dv, sub, file, &format!("{at}.{name}"), errs);
                            }
                        }
                    }
                }
                "items" => {
                    if let Some(a) = doc.as_array() {
                        for (i, dv) in a.iter().enumerate() {
                            self.node(dv, v, file, &format!("{at}[{i}]"), errs);
                        }
                    }
                }
                _ => errs.push(format!("{at}: validator does not know keyword {k}")),
            }
        }
    }
}

#[test]
fn features_validates_against_the_spec_schema() {
    let dir = spec_schema_dir();
    if !dir.join("features-schema.json").is_file() {
        eprintln!("skip: no runtime-spec schema at {}", dir.display());
        return;
    }
    let v = Validator { dir };
    let out = run(rt_cmd(
        Path::new("/nonexistent-root"),
        Path::new("/"),
        &["features"],
    ));
    assert!(out.status.success(), "{out:#?}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("features prints JSON");
    let errs = v.check(&doc, "features-schema.json");
    assert!(
        errs.is_empty(),
        "features does not validate: {errs:#?}\n{}",
        out.stdout
    );
    for k in [
        "namespaces",
        "capabilities",
        "cgroup",
        "seccomp",
        "mountExtensions",
    ] {
        assert!(doc["linux"].get(k).is_some(), "features lacks linux.{k}");
    }

    // The validator can fail: each of these breaks one rule of the schema.
    let mut bad = doc.clone();
    bad.as_object_mut().unwrap().remove("ociVersionMin");
    bad["linux"]["namespaces"][0] = "bogus".into();
    bad["linux"]["capabilities"][0] = "cap_chown".into();
    bad["linux"]["cgroup"]["v1"] = "yes".into();
    bad["annotations"]["x"] = 1.into();
    bad["linux"]["seccomp"]["actions"][0] = "SCMP_ACT_MAYBE".into();
    let errs = v.check(&bad, "features-schema.json");
    assert_eq!(errs.len(), 6, "{errs:#?}");
}
