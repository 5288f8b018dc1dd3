//! The factory and the container lifecycle.
pub mod config;
pub mod container;
pub mod create;
pub mod hooks;
pub mod lifecycle;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod seccomp;
pub mod state;
pub mod sync;
pub mod syscalls;
pub mod time;
pub mod console;
pub mod runner;
pub mod default_spec;
