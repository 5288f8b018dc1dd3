//! The factory and the container lifecycle.
pub mod bind_sources;
pub mod cgroup_policy;
pub mod checkpoint;
pub mod config;
pub mod console;
pub mod container;
pub mod create;
pub mod criu;
pub mod exec;
pub mod fdpass;
pub mod features;
pub mod gojson;
pub mod hooks;
pub mod idmap;
pub mod lifecycle;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod restore;
pub mod rootless;
pub mod runner;
pub mod seccomp;
mod seccomp_bpf;
pub mod seccomp_notify;
pub mod state;
pub mod sync;
pub mod syscalls;
pub mod sysctl;
pub mod time;
pub mod update;

/// The runtime-spec version rt implements: written into state, `spec` and `features`, printed by
/// `--version`.
pub use crate::spec::OCI_VERSION;
