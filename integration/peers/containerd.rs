//! containerd 1.6 with its runc shim (`ctr run --runc-binary`). Its CRI plugin, with the
//! README's rt runtime handler, is `integration/cri.rs`.

use super::*;

const NS: &str = "rt-test";
const IMAGE: &str = "localhost/rt-busybox:latest";

/// containerd's config: everything under `dir`, the CRI plugin off.
fn containerd_config(s: &Scene) -> String {
    let d = s.dir.path().display();
    format!(
        "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
         version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
         [grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
         [metrics]\n  address = \"\"\n"
    )
}

fn start_containerd(s: &mut Scene) -> Result<(), String> {
    let cfg = s.path("config.toml");
    fs::write(&cfg, containerd_config(s)).unwrap();
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

/// The prefix of a container's scope under the systemd driver: `rt-peers-<id>.scope`.
const SCOPE_PREFIX: &str = "rt-peers";

/// `ctr run` with the wrapped runtime, a shim root in the temp dir and a findable cgroup: a
/// directory of the test's, or with the shim's systemd option (`SystemdCgroup = true`, the
/// runtime's `--systemd-cgroup`) a scope in the test's slice, as `slice:prefix:name`.
fn ctr_run(s: &Scene, flags: &[&str], id: &str, args: &[&str]) -> Command {
    let mut c = ctr(s, &["run"]);
    let cgroup = match &s.slice {
        Some(slice) => {
            c.arg("--runc-systemd-cgroup");
            format!("{slice}:{SCOPE_PREFIX}:{id}")
        }
        None => format!("{}/{id}", s.cgroup),
    };
    c.args(flags)
        .arg("--fifo-dir")
        .arg(s.path("fifo"))
        .arg("--runc-binary")
        .arg(&s.wrapper)
        .arg("--runc-root")
        .arg(s.path("runc-root"))
        .arg("--cgroup")
        .arg(cgroup)
        .arg(IMAGE)
        .arg(id)
        .args(args);
    c
}

/// `ctr task exec` with its fifos in the temp dir (ctr -d never removes them).
fn ctr_exec(s: &Scene, flags: &[&str], args: &[&str]) -> Command {
    let mut c = ctr(s, &["task", "exec", "--fifo-dir"]);
    c.arg(s.path("fifo")).args(flags).args(args);
    c
}

/// `ctr task ls` as id → (pid, status).
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
    need_or_skip!("containerd", "ctr", "containerd-shim-runc-v2", "script");
    if let Err(why) = images::need_images(false) {
        eprintln!("skip: {why}");
        return;
    }
    let mut s = Scene::new("ctr", &[]);
    s.runtime_roots.push(s.path("runc-root"));
    s.shim_owners.push((s.path("c.sock"), NS));
    if let Err(why) = start_containerd(&mut s) {
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
            .any(|l| l.contains("--log-format json ") && l.contains(" create --bundle")),
        "{argv}"
    );

    // The exit status travels runtime → shim → containerd → ctr.
    s.code(ctr_run(&s, &["--rm"], "exit3", &["sh", "-c", "exit 3"]), 3);

    // Without a pid namespace of its own (here the host's), the shim sends `kill --all ID 9`
    // when the init exits, to kill what it left behind: the background sleep must die, and
    // when nothing is left that must not be an error either (runc returns none).
    let ns = format!("pid:/proc/{}/ns/pid", std::process::id());
    let hostpid = ["--rm", "--with-ns", &ns];
    let out = s.ok(ctr_run(
        &s,
        &hostpid,
        "hostpid",
        &["sh", "-c", "sleep 777 & echo started"],
    ));
    assert_eq!(out, "started\n");
    s.ok(ctr_run(&s, &hostpid, "hostpid2", &["true"]));
    let argv = s.argv();
    for id in ["hostpid", "hostpid2"] {
        assert!(
            argv.lines()
                .any(|l| l.ends_with(&format!("kill --all {id} 9"))),
            "no kill --all for {id}: {argv}"
        );
    }
    let log = fs::read_to_string(&s.daemon_log).unwrap();
    assert!(
        !log.contains("failed to kill init's children"),
        "the shim's kill --all failed: {}",
        s.log_tail(&s.daemon_log, 10)
    );

    // Detached: exec, ps, pause/resume, kill, rm.
    let id = "det";
    s.ok(ctr_run(&s, &["-d"], id, &["sleep", "1000"]));
    let (pid, st) = task_status(&s, id).expect("task listed");
    assert_eq!(st, "RUNNING");
    let name = match s.slice {
        Some(_) => format!("{SCOPE_PREFIX}-{id}"),
        None => id.to_string(),
    };
    s.assert_container_cgroup(pid.parse().unwrap(), &name);
    let argv = s.argv();
    let systemd = argv
        .lines()
        .any(|l| l.contains("--systemd-cgroup") && l.ends_with(&format!(" {id}")));
    assert_eq!(systemd, s.slice.is_some(), "the shim's driver flag: {argv}");
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
    // --all on a stopped task: nothing to signal, no error (runc's contract).
    s.ok(ctr(&s, &["task", "kill", "-a", "-s", "SIGKILL", id]));
    s.ok(ctr(&s, &["task", "rm", id]));
    s.ok(ctr(&s, &["c", "rm", id]));
    assert!(task_status(&s, id).is_none());
    assert!(!s.path("runc-root").join(NS).join(id).exists());

    // A terminal: ctr -t needs one itself, so it runs under script(1).
    let mut c = ctr_run(
        &s,
        &["--rm", "-t"],
        "tty",
        &[
            "sh",
            "-c",
            "tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty",
        ],
    );
    let c = under_script(&mut c);
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
