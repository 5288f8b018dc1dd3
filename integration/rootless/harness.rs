//! The rootless harness: a real unprivileged user made for one test (useradd, with the
//! subordinate id ranges useradd gives it), its own `$XDG_RUNTIME_DIR`, and containers run by
//! that user from a bundle it owns. On drop everything goes: the container (deleted as the
//! user, then checked gone), the user's processes (by pid), the runtime dir, the user.

use crate::common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// useradd and userdel lock /etc/passwd: one at a time within this test binary.
static ACCOUNTS: Mutex<()> = Mutex::new(());
static SEQ: AtomicUsize = AtomicUsize::new(0);

pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The user's `$XDG_RUNTIME_DIR`, made by the test (0700, the user's), or logind's
    /// /run/user/UID for a user with a systemd of its own.
    pub xdg: PathBuf,
    /// Lingering: logind runs a systemd (user@UID.service) and session bus for it.
    pub systemd: bool,
}

/// Runs `f` until it succeeds or 10 s have passed (the shadow tools' lock may be held by a
/// second test binary for a moment).
fn retry(mut f: impl FnMut() -> Out) -> Out {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = f();
        if out.status.success() || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl User {
    /// A fresh user, or `None` (with `skip:` printed) where the host cannot make one.
    pub fn new() -> Option<User> {
        if !is_root() {
            eprintln!("skip: rootless tests create a user and need root");
            return None;
        }
        if !Path::new("/usr/sbin/useradd").exists() {
            eprintln!("skip: useradd is not installed");
            return None;
        }
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        // a letter first and at most 32 characters, as useradd wants names
        let name = format!("rtrl{}x{n}", std::process::id());
        {
            let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
            let out = retry(|| {
                let mut c = Command::new("useradd");
                c.args(["-M", "-s", "/usr/sbin/nologin", "-d", "/nonexistent", &name]);
                run_cmd(c, Stdio::null())
            });
            assert!(out.status.success(), "useradd {name}: {out:#?}");
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let xdg = PathBuf::from(format!("/tmp/rt-rl-xdg-{name}"));
        fs::create_dir(&xdg).unwrap();
        fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
        chown(&xdg, Some(uid), Some(gid)).unwrap();
        Some(User {
            name,
            uid,
            gid,
            xdg,
            systemd: false,
        })
    }

    /// A fresh user with a systemd of its own (`loginctl enable-linger`: logind starts its
    /// user@UID.service, with the session bus at /run/user/UID/bus), or `None` with `skip:`
    /// where the host has no systemd as PID 1 or no logind, or the user's bus does not come up.
    pub fn with_systemd() -> Option<User> {
        if !Path::new("/run/systemd/system").is_dir() {
            if is_root() {
                eprintln!("skip: systemd is not PID 1 on this host (no user systemd)");
            }
            return None;
        }
        if !Path::new("/usr/bin/loginctl").exists() {
            eprintln!("skip: no loginctl (logind: Debian's libpam-systemd)");
            return None;
        }
        let mut u = User::new()?;
        let out = {
            let mut c = Command::new("loginctl");
            c.args(["enable-linger", &u.name]);
            run_cmd(c, Stdio::null())
        };
        assert!(out.status.success(), "enable-linger {}: {out:#?}", u.name);
        u.systemd = true;
        let _ = fs::remove_dir_all(&u.xdg);
        u.xdg = PathBuf::from(format!("/run/user/{}", u.uid));
        // under emulation the user's systemd and its bus take seconds to come up
        let deadline = Instant::now() + Duration::from_secs(90);
        while !u.xdg.join("bus").exists() {
            if Instant::now() > deadline {
                eprintln!(
                    "skip: {}'s session bus did not come up (dbus-user-session?)",
                    u.name
                );
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(u)
    }

    /// `systemctl --user ARGS` against the user's own systemd, as the user.
    pub fn systemctl(&self, args: &[&str]) -> Out {
        let mut a = vec!["--user", "--no-pager"];
        a.extend_from_slice(args);
        run_cmd(
            self.command(Path::new("/usr/bin/systemctl"), &a, Path::new("/"), &[]),
            Stdio::null(),
        )
    }

    /// The user's first subordinate uid and gid ranges (start, count), when it has them.
    pub fn subids(&self) -> Option<((u32, u32), (u32, u32))> {
        let find = |file: &str| -> Option<(u32, u32)> {
            fs::read_to_string(file).ok()?.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() == 3 && (f[0] == self.name || f[0] == self.uid.to_string()))
                    .then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))?
            })
        };
        Some((find("/etc/subuid")?, find("/etc/subgid")?))
    }

    /// `prog args…` as the user, in `cwd`, with its runtime dir and a login-like environment.
    /// `cgroup_procs`: cgroup.procs files the process joins first, as root (a delegated cgroup
    /// is only usable from inside it, as a systemd user session is).
    pub fn command(
        &self,
        prog: &Path,
        args: &[&str],
        cwd: &Path,
        cgroup_procs: &[PathBuf],
    ) -> Command {
        let mut c = Command::new(prog);
        c.args(args).current_dir(cwd);
        for v in [
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
            "NOTIFY_SOCKET",
        ] {
            c.env_remove(v);
        }
        c.env("XDG_RUNTIME_DIR", &self.xdg)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env("HOME", "/")
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        let procs: Vec<std::ffi::CString> = cgroup_procs
            .iter()
            .map(|p| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap())
            .collect();
        let (uid, gid) = (self.uid, self.gid);
        // SAFETY: only raw syscalls between fork and exec: open/write/close of the cgroup
        // files, then the drop to the user (groups first, while still allowed).
        unsafe {
            c.pre_exec(move || {
                for p in &procs {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                }
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(gid, gid, gid) != 0
                    || libc::setresuid(uid, uid, uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    }

    /// The runtime under test as the user.
    pub fn rt(&self, args: &[&str], cwd: &Path) -> Out {
        run_cmd(self.command(&rt_bin(), args, cwd, &[]), Stdio::null())
    }

    /// Where the runtime keeps state for this user without `--root`: its name below the
    /// runtime dir, as runc names its own.
    pub fn state_root(&self) -> PathBuf {
        self.xdg.join(if is_runc() { "runc" } else { "rt" })
    }

    /// Processes still running as the user.
    pub fn processes(&self) -> Vec<i32> {
        let mut out = vec![];
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
                continue;
            };
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_string));
            let zombie = status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            if uid == Some(self.uid.to_string()) && !zombie {
                out.push(pid);
            }
        }
        out
    }

    /// What the user left in its runtime dir: anything but an empty state root (and, for a
    /// user with a systemd, what logind and that systemd keep there).
    pub fn runtime_dir_leftovers(&self) -> Vec<String> {
        let mut found = vec![];
        for e in fs::read_dir(&self.xdg).into_iter().flatten().flatten() {
            let p = e.path();
            if self.systemd && p != self.state_root() {
                continue;
            }
            if p == self.state_root() {
                found.extend(
                    fs::read_dir(&p)
                        .unwrap()
                        .flatten()
                        .map(|e| e.path().display().to_string()),
                );
            } else {
                found.push(p.display().to_string());
            }
        }
        found
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let leftovers = self.runtime_dir_leftovers();
        if self.systemd {
            // its systemd and bus go with the linger (logind then removes /run/user/UID)
            for args in [
                ["loginctl", "disable-linger", &self.name],
                ["systemctl", "stop", &format!("user@{}.service", self.uid)],
            ] {
                let mut c = Command::new(args[0]);
                c.args(&args[1..]);
                run_cmd(c, Stdio::null());
            }
        }
        // Anything the user still runs was started by this test: end it, one pid at a time.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = self.processes();
        while !left.is_empty() && Instant::now() < deadline {
            for pid in &left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
            left = self.processes();
        }
        if !self.systemd {
            let _ = fs::remove_dir_all(&self.xdg);
        }
        {
            let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
            let name = self.name.clone();
            let out = retry(|| {
                let mut c = Command::new("userdel");
                c.arg(&name);
                run_cmd(c, Stdio::null())
            });
            if !out.status.success() && !std::thread::panicking() {
                panic!("userdel {}: {out:#?}", self.name);
            }
        }
        if !std::thread::panicking() {
            assert!(left.is_empty(), "processes of {} left: {left:?}", self.name);
            assert!(
                leftovers.is_empty(),
                "left in {}'s runtime dir: {leftovers:#?}",
                self.name
            );
        }
    }
}

/// A bundle the user owns (a copy of the busybox rootfs, chowned to it: root in a user
/// namespace that maps it is its owner), with a config made by `spec --rootless` run as
/// the user, then changed by the test.
pub struct RlCtr<'u> {
    pub user: &'u User,
    pub id: String,
    pub bundle: tempfile::TempDir,
    pids: std::cell::RefCell<Vec<(i32, u64)>>,
    /// cgroup.procs files every runtime call joins first (see `User::command`).
    pub join: Vec<PathBuf>,
    /// Global flags every runtime call gets first (`--systemd-cgroup`, as podman passes it).
    pub flags: Vec<&'static str>,
}

impl<'u> RlCtr<'u> {
    pub fn new(user: &'u User, tag: &str) -> RlCtr<'u> {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("rl-{tag}-{}-{n}", std::process::id());
        let bundle = tempfile::Builder::new().prefix("rt-rl-").tempdir().unwrap();
        let st = Command::new("cp")
            .arg("-a")
            .arg(rootfs_cache())
            .arg(bundle.path().join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success(), "cp -a rootfs");
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", user.uid, user.gid))
            .arg(bundle.path())
            .status()
            .unwrap();
        assert!(st.success(), "chown bundle");
        let c = RlCtr {
            user,
            id,
            bundle,
            pids: Default::default(),
            join: vec![],
            flags: vec![],
        };
        c.rt(&["spec", "--rootless"]).ok();
        c
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(&fs::read(self.bundle.path().join("config.json")).unwrap()).unwrap()
    }

    /// Writes config.json (as root: the user can read it in its own bundle).
    pub fn write_config(&self, config: &Value) {
        let p = self.bundle.path().join("config.json");
        fs::write(&p, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// The rootless spec with `args` as a non-terminal process.
    pub fn with_args(self, args: &[&str]) -> Self {
        let mut c = self.config();
        c["process"]["terminal"] = false.into();
        c["process"]["args"] = serde_json::json!(args);
        self.write_config(&c);
        self
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let all: Vec<&str> = self
            .flags
            .iter()
            .copied()
            .chain(args.iter().copied())
            .collect();
        self.user
            .command(&rt_bin(), &all, self.bundle.path(), &self.join)
    }

    pub fn rt(&self, args: &[&str]) -> Out {
        run_cmd(self.cmd(args), Stdio::null())
    }

    pub fn bundle_str(&self) -> &str {
        self.bundle.path().to_str().unwrap()
    }

    pub fn run(&self) -> Out {
        self.rt(&["run", "--bundle", self.bundle_str(), &self.id])
    }

    pub fn create(&self) -> Out {
        let out = self.rt(&["create", "--bundle", self.bundle_str(), &self.id]);
        if out.status.success() {
            self.track_pid();
        }
        out
    }

    pub fn state(&self) -> Value {
        let out = self.rt(&["state", &self.id]);
        out.ok();
        serde_json::from_str(&out.stdout).unwrap()
    }

    pub fn track_pid(&self) {
        if let Some(pid) = self.state()["pid"].as_i64().filter(|p| *p > 0) {
            if let Some(t) = proc_start_time(pid as i32) {
                self.pids.borrow_mut().push((pid as i32, t));
            }
        }
    }

    pub fn leftovers(&self) -> Vec<String> {
        let mut found = vec![];
        let dir = self.user.state_root().join(&self.id);
        if dir.exists() {
            found.push(format!("state dir {}", dir.display()));
        }
        for &(pid, t) in self.pids.borrow().iter() {
            if process_alive(pid, t) {
                found.push(format!("process {pid}"));
            }
        }
        found
    }
}

impl Drop for RlCtr<'_> {
    fn drop(&mut self) {
        let out = self.rt(&["delete", "--force", &self.id]);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = self.leftovers();
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            left = self.leftovers();
        }
        if std::thread::panicking() {
            if !left.is_empty() {
                eprintln!("left behind by {}: {left:#?}", self.id);
            }
            return;
        }
        // delete --force of a container that never got made says it does not exist
        assert!(
            out.status.success() || out.message().contains("does not exist"),
            "delete --force {}: {out:#?}",
            self.id
        );
        assert!(left.is_empty(), "left behind by {}: {left:#?}", self.id);
    }
}

/// A cgroup root makes for the user in every hierarchy (each v1 one and cgroup2), owned by it,
/// as a systemd delegation hands one out. Only usable from inside (cgroup2 moves need write
/// access to the common ancestor), so runtime calls join it first (`RlCtr::join`): its leaf
/// `caller`, as a user's session is a leaf of its delegated tree (on cgroup2 a cgroup with
/// processes in it cannot hand controllers down). Removed on drop, with anything the
/// container left below it.
pub struct Delegated {
    pub path: String,
    dirs: Vec<PathBuf>,
}

impl Delegated {
    pub fn new(user: &User) -> Delegated {
        let path = format!("/rt-rl-deleg-{}", user.name);
        let top = Path::new("/sys/fs/cgroup");
        let mut mounts = vec![];
        if top.join("cgroup.procs").exists() {
            mounts.push(top.to_path_buf());
        } else {
            for e in fs::read_dir(top).unwrap().flatten() {
                // a hierarchy's root, not a symlink to a co-mounted one
                if e.file_type().unwrap().is_dir() && e.path().join("cgroup.procs").exists() {
                    mounts.push(e.path());
                }
            }
        }
        let mut dirs = vec![];
        for m in mounts {
            let d = m.join(path.trim_start_matches('/'));
            fs::create_dir(&d).unwrap();
            fs::create_dir(d.join("caller")).unwrap();
            // v1's cpuset starts empty (cgroup2's inherits, and its root has no such file)
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if m.join(f).exists() {
                    let v = fs::read_to_string(m.join(f)).unwrap();
                    fs::write(d.join(f), &v).unwrap();
                    fs::write(d.join("caller").join(f), &v).unwrap();
                }
            }
            let st = Command::new("chown")
                .arg("-R")
                .arg(format!("{}:{}", user.uid, user.gid))
                .arg(&d)
                .status()
                .unwrap();
            assert!(st.success(), "chown {}", d.display());
            dirs.push(d);
        }
        Delegated { path, dirs }
    }

    pub fn procs(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.join("caller/cgroup.procs"))
            .collect()
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for d in &self.dirs {
            // children first (what the container made below it, if a test failed)
            let mut subs: Vec<PathBuf> = walk_dirs(d);
            subs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for s in subs.iter().chain(std::iter::once(d)) {
                while fs::remove_dir(s).is_err() && s.exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

fn walk_dirs(d: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(d).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk_dirs(&e.path()));
            out.push(e.path());
        }
    }
    out
}
