//! `create` hands its own stdin/stdout/stderr to the container unchanged: that is how a
//! shim connects its pipes.

use crate::common::*;
use crate::require_root;
use std::io::Write;
use std::os::fd::AsFd;
use std::process::Stdio;

fn pipe_name(fd: std::os::fd::BorrowedFd) -> String {
    let st = nix::sys::stat::fstat(fd).unwrap();
    format!("pipe:[{}]", st.st_ino)
}

#[test]
fn create_passes_stdio_pipes() {
    require_root!();
    let c = Ctr::new(
        "stdio",
        config_with_args(&[
            "sh",
            "-c",
            // read in subshells: busybox runs readlink in-process, so a redirection on it
            // would show up in /proc/1/fd
            "for n in 0 1 2; do l=$(readlink /proc/1/fd/$n); echo \"$n $l\" >&2; done; cat; echo done >&2",
        ]),
    );
    let mut cmd = c.cmd(&["create", "--bundle", c.bundle_str(), &c.id]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let names = [
        pipe_name(stdin.as_fd()),
        pipe_name(stdout.as_fd()),
        pipe_name(stderr.as_fd()),
    ];
    // create must return while the container still holds the pipes
    let st = wait_timeout(&mut child, "create");
    assert!(st.success(), "create failed: {st:?}");
    c.start().ok();

    stdin.write_all(b"piped data\nline two\n").unwrap();
    drop(stdin);
    let out = read_all_timeout(stdout, "container stdout");
    let err = read_all_timeout(stderr, "container stderr");
    assert_eq!(out, "piped data\nline two\n");
    let want = format!("0 {}\n1 {}\n2 {}\ndone\n", names[0], names[1], names[2]);
    assert_eq!(
        err, want,
        "the container's fds 0-2 are not create's own pipes"
    );
    c.wait_status("stopped");
}

/// Without a terminal, the stdio the runtime was given becomes owned by the container's user
/// (its group unchanged), so a non-root process can reopen /proc/self/fd/N (runc's
/// fixStdioPermissions); /dev/null stays root's. The same for `exec --user`.
#[test]
fn stdio_is_given_to_the_process_user() {
    require_root!();
    // /proc/1 is sh itself: its fds are the ones the runtime set up
    let mut cfg = config_with_args(&[
        "sh",
        "-c",
        "for n in 0 1 2; do echo \"$(readlink /proc/1/fd/$n) $(stat -L -c %u:%g /proc/1/fd/$n)\"; done",
    ]);
    cfg["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 100});
    let r = Ctr::new("stdioown", cfg);
    // Ctr::rt gives the runtime /dev/null as stdin and files it made as stdout and stderr
    // (root's). rt passes them on; runc's foreground run puts pipes of its own in between.
    let out = r.rt(&["run", "--bundle", r.bundle_str(), &r.id]);
    out.ok();
    let lines: Vec<_> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:#?}");
    for (n, line) in lines.iter().enumerate() {
        let (what, owner) = line.rsplit_once(' ').unwrap();
        let want = if what == "/dev/null" { "0:0" } else { "1000:0" };
        assert_eq!(owner, want, "fd {n}: {out:#?}");
        assert!(n == 0 || what != "/dev/null", "{out:#?}");
    }

    let c = Ctr::started("stdioownx", example("sleep"));
    let out = c.exec(
        &["--user", "1001:101"],
        &["sh", "-c", "stat -L -c %u /proc/$$/fd/1"],
    );
    out.ok();
    assert_eq!(out.stdout, "1001\n", "{out:#?}");
}
