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
