//! Integration tests: run the built rt (or `$RT_BIN`, e.g. runc) as root on real bundles
//! and check what the container saw. One module per feature; the harness is `common`.
//!
//! `RT_BIN=$(which runc) cargo test --test integration` proves the tests against runc.

mod cgroups;
mod checkpoint;
mod cleanup;
mod cli;
mod common;
mod console;
mod cri;
mod errors;
mod exec;
mod hooks;
mod hostile;
mod image;
mod lifecycle;
mod peers;
mod pidfd_socket;
mod process;
mod rootless;
mod schema;
mod seccomp_agent;
mod seccomp_notify;
mod security;
mod stdio;
mod systemd;
mod userns;
