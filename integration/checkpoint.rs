//! checkpoint and restore through criu, as runc does them: a counting container is dumped
//! (and is gone), restored (and counts on from where it was); `--leave-running`; a restore
//! under a new id, bundle and cgroup; a bind mount and a terminal whose new pty master goes
//! to `--console-socket`; pre-dump then dump; a foreground restore's exit status; and podman
//! driving both. Where criu cannot work (this development host's kernel, or no criu) each test
//! prints `skip:` with criu's own words.
use crate::common::*;
use crate::console::{pty_reader, read_until};
use crate::exec::receive_fd;
use crate::require_root;
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// None when criu can dump and restore here; else why not, in criu's words.
fn criu_unusable() -> Option<String> {
    // criu writes its messages to the log file it is given (to a pipe, nothing)
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("check.log");
    match Command::new("criu")
        .arg("check")
        .arg("-o")
        .arg(&log)
        .output()
    {
        Err(e) => Some(format!("criu is not installed ({e})")),
        Ok(o) if o.status.success() => None,
        Ok(_) => {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let first = text
                .lines()
                .find(|l| l.contains("Error"))
                .unwrap_or(text.trim());
            Some(format!("criu check fails here: {first}"))
        }
    }
}

macro_rules! require_criu {
    () => {
        require_root!();
        if let Some(why) = criu_unusable() {
            eprintln!("skip: {why}");
            return;
        }
    };
}

/// A shell that writes 1, 2, 3, ... to `file` every 0.1 s (and `then` after `n` steps).
fn counter(file: &str, limit: Option<(u32, &str)>) -> Value {
    let (cond, tail) = match limit {
        Some((n, then)) => (format!("[ $i -lt {n} ]"), then.to_string()),
        None => ("true".to_string(), String::new()),
    };
    let mut c = config_with_args(&[
        "sh",
        "-c",
        &format!("i=0; while {cond}; do i=$((i+1)); echo $i > {file}; sleep 0.1; done; {tail}"),
    ]);
    c["root"]["readonly"] = json!(false);
    c
}

fn count_at(p: &Path) -> u64 {
    fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until the count at `p` passes `n`; returns it.
fn counts_past(p: &Path, n: u64) -> u64 {
    wait_for(&format!("{} to pass {n}", p.display()), || {
        let c = count_at(p);
        (c > n).then_some(c)
    })
}

/// `run -d` with every stdio the null device: criu dumps what the container holds open, and
/// the harness's usual capture files live outside its mounts (criu: "Can't lookup mount").
fn run_detached(c: &Ctr) {
    // (rt_cmd gives `run` the systemd driver's flag itself)
    let mut cmd = c.cmd(&["run", "-d", "--bundle", c.bundle_str(), &c.id]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let st = wait_timeout(&mut child, "run -d");
    assert!(st.success(), "run -d {}: {st:?}", c.id);
    c.track_pid();
}

fn pid_of(c: &Ctr) -> i32 {
    c.state()["pid"].as_i64().unwrap() as i32
}

fn gone(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
        || fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
}

/// `checkpoint` with images and criu's work files in the bundle; the time it took.
fn checkpoint(c: &Ctr, images: &str, extra: &[&str]) -> Duration {
    let img = c.bundle.path().join(images);
    let work = c.bundle.path().join(format!("{images}-work"));
    let mut a = vec![
        "checkpoint",
        "--image-path",
        img.to_str().unwrap(),
        "--work-path",
        work.to_str().unwrap(),
    ];
    a.extend(extra);
    a.push(&c.id);
    let t = Instant::now();
    let out = c.rt(&a);
    let took = t.elapsed();
    if !out.status.success() {
        let log = fs::read_to_string(work.join("dump.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        panic!("checkpoint failed: {out:#?}\ndump.log tail: {tail:#?}");
    }
    took
}

/// `restore -d` of the images of `from` (a directory in its bundle) as container `to`, from
/// `to`'s bundle and root.
fn restore(from: &Ctr, images: &str, to: &Ctr, extra: &[&str]) -> (Out, Duration) {
    let img = from.bundle.path().join(images);
    let work = to.bundle.path().join(format!("{images}-restore-work"));
    let mut a = vec![
        "restore",
        "--image-path",
        img.to_str().unwrap(),
        "--work-path",
        work.to_str().unwrap(),
        "--bundle",
        to.bundle_str(),
    ];
    a.extend(extra);
    a.push(&to.id);
    let mut cmd = to.cmd(&a);
    if crate::common::systemd_driver() {
        cmd = with_systemd(cmd);
    }
    let t = Instant::now();
    let out = run_cmd(cmd, Stdio::null());
    let took = t.elapsed();
    // in the foreground the exit status is the container's
    let foreground = !extra.contains(&"-d");
    if !out.status.success() && !foreground {
        let log = fs::read_to_string(work.join("restore.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        panic!("restore failed: {out:#?}\nrestore.log tail: {tail:#?}");
    }
    if !foreground {
        to.track_pid();
    }
    (out, took)
}

/// Restore makes the cgroup, as create does: under the systemd driver it is told so too.
fn with_systemd(cmd: Command) -> Command {
    let mut c = Command::new(cmd.get_program());
    let args: Vec<_> = cmd.get_args().collect();
    // after --root ROOT, before the subcommand
    c.args(&args[..2]).arg("--systemd-cgroup").args(&args[2..]);
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
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

/// Times of the last run, for the closing note's ratios (`--nocapture` shows them).
fn report(what: &str, dump: Duration, restore: Duration) {
    eprintln!(
        "timing: {what} {} checkpoint {:.0} ms restore {:.0} ms",
        rt_bin().display(),
        dump.as_secs_f64() * 1e3,
        restore.as_secs_f64() * 1e3
    );
}

/// After a checkpoint without --leave-running the container's processes are gone; rt keeps
/// it as stopped until it is deleted or restored over, runc (1.1.5, and current) deletes it.
fn assert_checkpointed(c: &Ctr, pid: i32) {
    wait_for("the checkpointed init to be gone", || {
        gone(pid).then_some(())
    });
    let out = c.rt(&["state", &c.id]);
    if is_runc() {
        out.fails_with("does not exist");
    } else {
        out.ok();
        assert_eq!(c.status(), "stopped");
    }
}

#[test]
fn counting_container_checkpointed_and_restored() {
    require_criu!();
    let c = Ctr::new("cr", counter("/tmp/count", None));
    run_detached(&c);
    let count = c.bundle.path().join("rootfs/tmp/count");
    counts_past(&count, 3);
    let pid = pid_of(&c);
    let dump = checkpoint(&c, "img", &[]);
    assert_checkpointed(&c, pid);
    let at = count_at(&count);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        count_at(&count),
        at,
        "the container still counts after checkpoint"
    );

    let (_, took) = restore(&c, "img", &c, &["-d"]);
    report("count", dump, took);
    let s = c.state();
    assert_eq!(s["status"], "running");
    assert_eq!(s["bundle"], json!(c.bundle_str()));
    let new_pid = s["pid"].as_i64().unwrap() as i32;
    assert!(
        new_pid > 0 && !gone(new_pid),
        "restored init not alive: {s}"
    );
    // on from where it was, not from 1
    let next = counts_past(&count, at + 2);
    assert!(next > at, "restored at {next}, dumped at {at}");
    assert_in_cgroup_everywhere(new_pid as i64, &c.cgroup, "restored init");
    // and a restored container is one like any other
    let out = c.exec(&[], &["cat", "/tmp/count"]);
    out.ok();
}

#[test]
fn leave_running_then_restore_under_a_new_id() {
    require_criu!();
    let a = Ctr::new("cr-live", counter("/tmp/count", None));
    run_detached(&a);
    let count = a.bundle.path().join("rootfs/tmp/count");
    counts_past(&count, 3);
    let pid = pid_of(&a);
    checkpoint(&a, "img", &["--leave-running"]);
    if is_runc() {
        // runc 1.1.5 restores the tree into the dumped container's cgroup on a cgroup v2 host
        // (see below), which can outlive that container's delete
        a.tolerate_leaks.set(true);
    }
    let s = a.state();
    assert_eq!(s["status"], "running");
    assert_eq!(s["pid"], json!(pid));
    let at = count_at(&count);
    counts_past(&count, at + 2);
    a.delete(true).ok();

    // Another id, bundle (a copy of the rootfs, counter included) and cgroup.
    let b = Ctr::new("cr-new", counter("/tmp/count", None));
    let bcount = b.bundle.path().join("rootfs/tmp/count");
    fs::copy(&count, &bcount).unwrap();
    restore(&a, "img", &b, &["-d"]);
    let s = b.state();
    assert_eq!(s["status"], "running");
    assert_eq!(s["id"], json!(b.id));
    assert_eq!(s["bundle"], json!(b.bundle_str()));
    let new_pid = s["pid"].as_i64().unwrap();
    counts_past(&bcount, at + 1);
    if is_runc() && Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        // runc 1.1.5 tells criu the cgroup roots on cgroup v1 only: on v2 the tree comes
        // back in the dumped container's cgroup, with either driver (later runc sets them on
        // v2 too).
        eprintln!(
            "runc: restored into {:?}",
            fs::read_to_string(format!("/proc/{new_pid}/cgroup"))
        );
    } else {
        assert_in_cgroup_everywhere(new_pid, &b.cgroup, "init restored under a new id");
    }
}

#[test]
fn bind_mount_and_terminal() {
    require_criu!();
    let mut cfg = example("tty");
    cfg["process"]["args"] = json!([
        "sh",
        "-c",
        "(i=0; while true; do i=$((i+1)); echo $i > /data/count; sleep 0.1; done) & exec sh"
    ]);
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": "PLACEHOLDER", "options": ["rbind", "rw"]
    }));
    let c = Ctr::new("cr-tty", cfg.clone());
    let data = c.bundle.path().join("data");
    fs::create_dir(&data).unwrap();
    let n = cfg["mounts"].as_array().unwrap().len() - 1;
    cfg["mounts"][n]["source"] = json!(data);
    cfg["linux"]["cgroupsPath"] = json!(c.cgroups_path);
    c.write_config(&cfg);
    let master = c.create_with_console();
    c.start().ok();
    let count = data.join("count");
    counts_past(&count, 3);
    let pid = pid_of(&c);
    let dump = checkpoint(&c, "img", &[]);
    drop(master);
    assert_checkpointed(&c, pid);
    let at = count_at(&count);

    let sock = c.bundle.path().join("restore.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_fd(&listener));
    let (_, took) = restore(
        &c,
        "img",
        &c,
        &["-d", "--console-socket", sock.to_str().unwrap()],
    );
    report("tty", dump, took);
    let master = receiver.join().unwrap();
    assert_eq!(c.status(), "running");
    counts_past(&count, at + 1);
    // the shell answers on the new pty
    let (mut w, rx) = pty_reader(master);
    w.write_all(b"echo RESTORED-$((40+2))\n").unwrap();
    let mut seen = String::new();
    read_until(&rx, &mut seen, "RESTORED-42");
}

#[test]
fn pre_dump_then_dump() {
    require_criu!();
    let c = Ctr::new("cr-pre", counter("/tmp/count", None));
    run_detached(&c);
    let count = c.bundle.path().join("rootfs/tmp/count");
    counts_past(&count, 3);
    let pid = pid_of(&c);
    checkpoint(&c, "pre", &["--pre-dump"]);
    assert_eq!(c.status(), "running");
    assert_eq!(pid_of(&c), pid);
    let at = count_at(&count);
    counts_past(&count, at + 2);
    // the final dump holds only what changed since; the images point at the pre-dump's
    let img = c.bundle.path().join("final");
    fs::create_dir(&img).unwrap();
    checkpoint(&c, "final", &["--parent-path", "../pre"]);
    assert!(
        img.join("parent").exists(),
        "no parent link in the final images"
    );
    assert_checkpointed(&c, pid);
    let at = count_at(&count);
    restore(&c, "final", &c, &["-d"]);
    assert_eq!(c.status(), "running");
    counts_past(&count, at + 1);
}

#[test]
fn foreground_restore_returns_the_exit_status() {
    require_criu!();
    let c = Ctr::new("cr-fg", counter("/tmp/count", Some((25, "exit 7"))));
    run_detached(&c);
    let count = c.bundle.path().join("rootfs/tmp/count");
    counts_past(&count, 2);
    let pid = pid_of(&c);
    checkpoint(&c, "img", &[]);
    assert_checkpointed(&c, pid);
    let pidfile = c.bundle.path().join("restored.pid");
    let (out, _) = restore(&c, "img", &c, &["--pid-file", pidfile.to_str().unwrap()]);
    assert_eq!(out.code(), 7, "{out:#?}");
    assert_eq!(count_at(&count), 25);
    let p: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(p > 0 && gone(p));
    // the foreground restore deleted what it restored, as run does
    c.rt(&["state", &c.id]).fails_with("does not exist");
}

/// A restore without criu's images says so and leaves nothing; so does a missing criu.
#[test]
fn restore_without_images_or_criu_leaves_nothing() {
    require_root!();
    let c = Ctr::new("cr-bad", counter("/tmp/count", None));
    let out = c.rt(&[
        "restore",
        "-d",
        "--image-path",
        c.bundle.path().join("nothing").to_str().unwrap(),
        "--bundle",
        c.bundle_str(),
        &c.id,
    ]);
    assert_ne!(out.code(), 0);
    c.rt(&["state", &c.id]).fails_with("does not exist");
    if is_runc() {
        return;
    }
    // criu missing: rt's --criu names the binary
    let img = c.bundle.path().join("img");
    fs::create_dir(&img).unwrap();
    fs::write(img.join("descriptors.json"), "[]").unwrap();
    let out = run_cmd(
        {
            let mut cmd = c.cmd(&[]);
            let mut x = Command::new(cmd.get_program());
            x.args(cmd.get_args())
                .args([
                    "--criu",
                    "/nonexistent/criu",
                    "restore",
                    "-d",
                    "--image-path",
                ])
                .arg(&img)
                .args(["--bundle", c.bundle_str(), &c.id])
                .current_dir(cmd.get_current_dir().unwrap());
            cmd = x;
            cmd
        },
        Stdio::null(),
    );
    out.fails_with("criu is not installed").one_error_line();
    c.rt(&["state", &c.id]).fails_with("does not exist");
}

/// podman (through conmon) with `--runtime`: `container checkpoint`, then `container restore`,
/// and the container counts on.
#[test]
fn podman_checkpoint_and_restore() {
    require_criu!();
    use crate::peers::{need, Scene};
    if let Err(why) = need(&["podman", "conmon"]) {
        eprintln!("skip: {why}");
        return;
    }
    let s = Scene::new("podmancr", &["conmon"]);
    let tarball = s.path("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(rootfs_cache())
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let image = "localhost/rt-cr:latest";
    s.ok(podman(
        &s,
        &["import", "-q", tarball.to_str().unwrap(), image],
    ));
    let name = format!("rt-cr-{}", std::process::id());
    s.ok(podman(
        &s,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--cgroup-parent",
            &s.cgroup,
            image,
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done",
        ],
    ));
    let read = |s: &Scene| -> u64 {
        s.ok(podman(s, &["exec", &name, "cat", "/tmp/count"]))
            .trim()
            .parse()
            .unwrap()
    };
    let before = read(&s);
    let t = Instant::now();
    s.ok(podman(&s, &["container", "checkpoint", &name]));
    let dump = t.elapsed();
    let st = s.ok(podman(&s, &["inspect", "-f", "{{.State.Status}}", &name]));
    assert_eq!(st.trim(), "exited", "after checkpoint");
    let t = Instant::now();
    s.ok(podman(&s, &["container", "restore", &name]));
    report("podman", dump, t.elapsed());
    let st = s.ok(podman(&s, &["inspect", "-f", "{{.State.Status}}", &name]));
    assert_eq!(st.trim(), "running", "after restore");
    let after = read(&s);
    assert!(after >= before, "restored at {after}, was {before}");
    std::thread::sleep(Duration::from_millis(400));
    assert!(read(&s) > after, "the restored container does not count");
    s.ok(podman(&s, &["rm", "-f", "-t", "0", &name]));
    let argv = s.argv();
    assert!(
        argv.contains("checkpoint") && argv.contains("restore"),
        "{argv}"
    );
}

fn podman(s: &crate::peers::Scene, args: &[&str]) -> Command {
    let mut c = crate::peers::clean_cmd("podman");
    let d = s.dir.path();
    let p = |x: &str| -> PathBuf { d.join(x) };
    c.arg("--root")
        .arg(p("root"))
        .arg("--runroot")
        .arg(p("runroot"))
        .arg("--tmpdir")
        .arg(p("tmp"))
        .arg("--volumepath")
        .arg(p("volumes"))
        .arg("--network-config-dir")
        .arg(p("net"))
        .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
        .args(["--storage-driver", "vfs"])
        .arg("--runtime")
        .arg(&s.wrapper)
        .args(args);
    c
}
