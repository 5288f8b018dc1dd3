//! `checkpoint`: the container's process tree dumped to images by criu (criu/), as runc
//! does it. Without --leave-running (or --pre-dump) criu kills the tree once it is saved; the
//! container is then stopped, marked as checkpointed, and `delete` or a `restore` of the same
//! id clears it.
use super::container::Container;
use super::criu::mounts::{self, For};
use super::criu::proto::{CgMode, Features, Opts, Req, ReqType};
use super::criu::{self, Notified, Swrk};
use super::namespaces;
use super::state::Status;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxNamespaceType;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The file in the state directory that says the container's tree went into images (runc
/// keeps one of the same name while it dumps).
pub const MARK: &str = "checkpoint";

pub struct CheckpointOpts<'a> {
    pub criu: &'a Path,
    pub image_path: &'a Path,
    pub work_path: Option<&'a Path>,
    /// Relative to `image_path`: the images of an earlier pre-dump.
    pub parent_path: Option<&'a Path>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub lazy_pages: bool,
    /// Gets one NUL byte once the lazy pages are ready to be served.
    pub status_fd: Option<i32>,
    pub page_server: Option<(String, i32)>,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub manage_cgroups_mode: Option<CgMode>,
    /// CLONE_NEW* bits of namespaces made empty at restore (network always is, as in runc:
    /// the runtime does not own network devices).
    pub empty_ns: u32,
    pub auto_dedup: bool,
}

/// `--empty-ns` names; runc takes only "network".
pub fn empty_ns_mask(names: &[String]) -> Result<u32> {
    let mut mask = libc::CLONE_NEWNET as u32;
    for n in names {
        match n.as_str() {
            "network" => mask |= libc::CLONE_NEWNET as u32,
            _ => bail!("namespace {n:?} is not supported by --empty-ns (only network is)"),
        }
    }
    Ok(mask)
}

/// `--page-server ADDRESS:PORT`.
pub fn parse_page_server(s: &str) -> Result<(String, i32)> {
    let bad = || anyhow::anyhow!("--page-server {s:?}: want ADDRESS:PORT");
    let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok((addr.to_string(), i32::from(port)))
}

/// Opens (making it if needed, 0700) a directory criu works in.
pub(crate) fn open_dir(p: &Path, what: &str) -> Result<OwnedFd> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("{what} {}", p.display())),
    }
    let f = std::fs::File::open(p).with_context(|| format!("{what} {}", p.display()))?;
    Ok(OwnedFd::from(f))
}

pub fn checkpoint(c: &mut Container, o: &CheckpointOpts) -> Result<()> {
    match c.status() {
        Status::Running | Status::Paused => {}
        // runc's words
        s => bail!("Container cannot be checkpointed in {s} state"),
    }
    if let Some(p) = o.parent_path {
        if p.is_absolute() {
            bail!("--parent-path must be relative (to --image-path)");
        }
        let real = o.image_path.join(p);
        if !real.is_dir() {
            bail!(
                "invalid --parent-path: {} is not a directory",
                real.display()
            );
        }
    }
    let spec = c.state.config.clone();
    let pid = c.state.pid;
    let images = open_dir(o.image_path, "--image-path")?;
    let work = o
        .work_path
        .map(|p| open_dir(p, "--work-path"))
        .transpose()?;

    let mut opts = Opts {
        images_dir_fd: images.as_raw_fd(),
        pid: Some(pid),
        leave_running: o.leave_running,
        ext_unix_sk: o.ext_unix_sk,
        tcp_established: o.tcp_established,
        shell_job: o.shell_job,
        file_locks: o.file_locks,
        log_level: Some(4),
        log_file: Some("dump.log".into()),
        page_server: o.page_server.clone(),
        notify_scripts: true,
        root: Some(c.state.rootfs.to_string_lossy().into_owned()),
        auto_dedup: o.auto_dedup,
        work_dir_fd: work.as_ref().map(|w| w.as_raw_fd()),
        manage_cgroups: true,
        manage_cgroups_mode: o.manage_cgroups_mode,
        empty_ns: Some(o.empty_ns),
        lazy_pages: o.lazy_pages,
        orphan_pts_master: true,
        config_file: criu::config_file(&c.state.annotations),
        ..Default::default()
    };
    if let Some(p) = o.parent_path {
        opts.parent_img = Some(p.to_string_lossy().into_owned());
        opts.track_mem = true;
    }
    // A namespace the container joined by path is not its own: criu leaves it out and
    // restore hands it back by the same key.
    for t in [LinuxNamespaceType::Network, LinuxNamespaceType::Pid] {
        let joined = namespaces::namespaces(&spec)
            .iter()
            .find(|n| n.typ() == t)
            .and_then(|n| n.path().clone());
        if let Some(path) = joined {
            use std::os::unix::fs::MetadataExt;
            let ino = std::fs::metadata(&path)
                .with_context(|| format!("namespace {}", path.display()))?
                .ino();
            let name = namespaces::proc_name(t);
            opts.external
                .push(format!("{name}[{ino}]:{}", criu::ext_ns_key(name)));
        }
    }
    let cgroup = c.cgroup().ok();
    if let Some(dir) = cgroup.as_ref().and_then(|cg| cg.freezer_dir()) {
        opts.freeze_cgroup = Some(dir.to_string_lossy().into_owned());
    }
    if !o.pre_dump {
        let shown = cgroup
            .as_ref()
            .map(|cg| cg.container_mounts())
            .transpose()?
            .unwrap_or_default();
        opts.ext_mnt = mounts::external(&spec, &c.state.rootfs, &shown, Some(pid), For::Dump);
        // The init's stdio, for restore to give criu the caller's pipes in their place.
        let fds: Vec<String> = (0..3)
            .map(|n| {
                std::fs::read_link(format!("/proc/{pid}/fd/{n}"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "/dev/null".into())
            })
            .collect();
        std::fs::write(
            o.image_path.join(criu::DESCRIPTORS),
            serde_json::to_vec(&fds)?,
        )
        .with_context(|| format!("writing {}", criu::DESCRIPTORS))?;
    }

    let mut pass = vec![images.as_fd()];
    pass.extend(work.as_ref().map(|w| w.as_fd()));
    let mut swrk = Swrk::start(o.criu, &pass)?;
    if o.pre_dump || o.parent_path.is_some() {
        swrk.check_features(
            Features {
                mem_track: true,
                lazy_pages: false,
            },
            &opts,
        )?;
    }
    if o.lazy_pages {
        swrk.check_features(
            Features {
                mem_track: false,
                lazy_pages: true,
            },
            &opts,
        )?;
    }
    let typ = if o.pre_dump {
        ReqType::PreDump
    } else {
        ReqType::Dump
    };
    let log = o.work_path.unwrap_or(o.image_path).join("dump.log");
    let mut n = DumpNotes {
        mark: (!o.pre_dump && !o.leave_running).then(|| c.dir.join(MARK)),
        status_fd: o.status_fd,
    };
    swrk.run(Req::new(typ, Some(opts)), log, &mut n)?;
    drop((images, work));
    if o.pre_dump || o.leave_running {
        return Ok(());
    }
    // criu killed the tree; the init is gone once its parent reaps it.
    c.state.status = Status::Stopped;
    c.save()?;
    crate::debug!("checkpoint {}: dumped, tree killed", c.id());
    Ok(())
}

struct DumpNotes {
    mark: Option<PathBuf>,
    status_fd: Option<i32>,
}

impl Notified for DumpNotes {
    fn notify(&mut self, script: &str, _pid: i32, _fds: Vec<OwnedFd>) -> Result<()> {
        match script {
            // The tree is saved and about to be killed (unless left running).
            "post-dump" => {
                if let Some(m) = &self.mark {
                    std::fs::write(m, b"")
                        .with_context(|| format!("marking {} checkpointed", m.display()))?
                }
            }
            "status-ready" => {
                if let Some(fd) = self.status_fd.take() {
                    // SAFETY: the caller gave us this fd number for exactly this byte.
                    let f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                    use std::io::Write;
                    if let Err(e) = (&f).write_all(&[0]) {
                        crate::logging::warn(&format!("--status-fd {fd}: {e}"));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
