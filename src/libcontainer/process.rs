//! Starting `rt init`: a sealed copy of our own binary, cloned straight into new namespaces.
use crate::cgroups::CgroupManager;
use anyhow::{Context, Result};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sched::CloneFlags;
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::unistd::Pid;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// A read-only view of our own binary for init to run from, so a process in the container that
/// reaches /proc/<init>/exe can never write the host's rt binary (CVE-2019-5736).
///
/// The cheap way is the binary seen through a private, read-only overlayfs mount that exists
/// only as an fd (no copy: writes fail with EROFS); where that cannot be made, a sealed memfd copy.
///
/// `tight_memory`: the overlay's pages are charged to the container's cgroup as init faults them
/// in (about 1 MiB), the memfd copy's to the caller; under a limit of a few MiB that difference
/// decides whether the container starts at all, so such containers pay for the copy instead.
pub fn sealed_self(tight_memory: bool) -> Result<OwnedFd> {
    if tight_memory {
        return memfd_self();
    }
    match readonly_overlay_self() {
        Ok(fd) => Ok(fd),
        Err(e) => {
            crate::debug!("read-only overlay of rt not available ({e:#}); copying into a memfd");
            memfd_self()
        }
    }
}

/// An empty directory only root can write: the overlay's second (bottom) layer.
const EMPTY_LOWER: &str = "/run/rt-empty";

fn readonly_overlay_self() -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let exe = std::fs::read_link("/proc/self/exe").context("reading /proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        anyhow::bail!("odd binary path {}", exe.display());
    };
    let dir_b = dir.as_os_str().as_bytes();
    if !exe.exists() || dir_b.iter().any(|b| b",:\\".contains(b)) {
        anyhow::bail!("binary path {} cannot be an overlay layer", exe.display());
    }
    match std::fs::create_dir(EMPTY_LOWER) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).context(EMPTY_LOWER),
    }
    let lower = CString::new([dir_b, b":", EMPTY_LOWER.as_bytes()].concat())?;
    let mnt = mount_api::readonly_overlay(&lower)?;
    let name = CString::new(name.as_bytes())?;
    // SAFETY: openat on our mount fd with a NUL-terminated name; the result is owned below.
    let fd = unsafe {
        libc::openat(
            mnt.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("opening rt in its overlay");
    }
    // SAFETY: a fresh fd from the kernel.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// The new mount API (fsopen/fsconfig/fsmount): a mount that is never attached to any tree.
mod mount_api {
    use anyhow::{Context, Result};
    use std::ffi::CStr;
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};

    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;

    fn check(r: libc::c_long, what: &str) -> Result<RawFd> {
        if r < 0 {
            return Err(std::io::Error::last_os_error()).context(what.to_string());
        }
        Ok(r as RawFd)
    }

    pub fn readonly_overlay(lowerdir: &CStr) -> Result<OwnedFd> {
        // SAFETY: each call gets NUL-terminated strings and fds it owns; fds are wrapped at once.
        unsafe {
            let fs = check(
                libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC),
                "fsopen overlay",
            )?;
            let fs = OwnedFd::from_raw_fd(fs);
            use std::os::fd::AsRawFd;
            check(
                libc::syscall(
                    libc::SYS_fsconfig,
                    fs.as_raw_fd(),
                    FSCONFIG_SET_STRING,
                    c"lowerdir".as_ptr(),
                    lowerdir.as_ptr(),
                    0,
                ),
                "fsconfig lowerdir",
            )?;
            check(
                libc::syscall(
                    libc::SYS_fsconfig,
                    fs.as_raw_fd(),
                    FSCONFIG_CMD_CREATE,
                    std::ptr::null::<u8>(),
                    std::ptr::null::<u8>(),
                    0,
                ),
                "fsconfig create",
            )?;
            let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
            let m = check(
                libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs),
                "fsmount",
            )?;
            Ok(OwnedFd::from_raw_fd(m))
        }
    }
}

/// An in-memory, sealed copy of /proc/self/exe.
fn memfd_self() -> Result<OwnedFd> {
    let fd = memfd_create(c"rt", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .context("memfd_create")?;
    let mut exe = std::fs::File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    let mut mem = std::fs::File::from(fd);
    // std::io::copy uses copy_file_range/sendfile here: no userspace buffer.
    std::io::copy(&mut exe, &mut mem).context("copying rt into a memfd")?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    // The kernel refuses the write seal (EBUSY) while pages of the copy still have extra
    // references from the copy itself; they drain quickly.
    let mut tries = 0;
    loop {
        match fcntl(&mem, FcntlArg::F_ADD_SEALS(seals)) {
            Ok(_) => break,
            Err(nix::errno::Errno::EBUSY) if tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(e).context("sealing the rt memfd"),
        }
    }
    Ok(OwnedFd::from(mem))
}

/// How the child is started.
pub struct InitSpawn<'a> {
    pub exe: &'a OwnedFd,
    pub flags: CloneFlags,
    /// fds the child keeps across exec (their close-on-exec flag is cleared in the child only).
    pub keep_fds: &'a [RawFd],
    pub sync_fd: RawFd,
    /// Set for a new user namespace: wait for one byte on sync_fd (the id maps are written),
    /// then become the namespace's root before exec so init keeps its capabilities.
    pub wait_for_maps: bool,
    /// A cgroup2 directory (opened O_RDONLY) to start the child in.
    pub cgroup: Option<RawFd>,
}

/// The cgroup2 directory a child is to be born in (the reason is at
/// `CgroupManager::v1_task_files`), opened as clone3's CLONE_INTO_CGROUP takes it. None on a
/// v1-only host, and under a tight memory limit: what rt init allocates while starting would
/// count against the container.
pub fn cgroup2_birthplace(cgroup: &CgroupManager, tight: bool) -> Result<Option<OwnedFd>> {
    match cgroup.unified_dir() {
        Some(dir) if !tight => nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(Some)
        .with_context(|| format!("opening cgroup {}", dir.display())),
        _ => Ok(None),
    }
}

/// The started child, and whether it was born in `InitSpawn::cgroup` (the kernel may lack
/// clone3 or CLONE_INTO_CGROUP; then the caller moves it).
pub struct Spawned {
    pub pid: Pid,
    pub in_cgroup: bool,
}

/// Forks `rt init` into the namespaces in `flags`. Everything the child touches between clone and
/// exec is prepared here, because that window may only make async-signal-safe calls.
pub fn spawn_init(s: &InitSpawn) -> Result<Spawned> {
    let argv_c = [CString::new("rt")?, CString::new("init")?];
    let env_c = [CString::new(format!("_RT_SYNC_FD={}", s.sync_fd))?];
    let argv: Vec<*const libc::c_char> = argv_c
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env_c
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let exe = s.exe.as_raw_fd();

    let (pid, in_cgroup) = match s.cgroup.map(|fd| clone_into_cgroup(s.flags, fd)) {
        Some(Ok(pid)) => (pid, true),
        // Kernels before 5.7 (no clone3, or no CLONE_INTO_CGROUP); a cgroup that refuses us
        // gets its reason from the cgroup.procs write the caller falls back to.
        Some(Err(e))
            if !matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EOPNOTSUPP)
            ) =>
        {
            return Err(e).context("clone3 of rt init into its cgroup");
        }
        _ => (raw_clone(s.flags)?, false),
    };
    if pid == 0 {
        // Child: only raw syscalls from here to exec.
        unsafe { child_exec(exe, &argv, &envp, s) }
    }
    Ok(Spawned {
        pid: Pid::from_raw(pid),
        in_cgroup,
    })
}

/// struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2), as clone3(2) reads it.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) with fork semantics into the cgroup2 directory `cgroup`: no migration afterwards,
/// so none of the global lock a migration takes (see `CgroupManager::v1_task_files`).
fn clone_into_cgroup(flags: CloneFlags, cgroup: RawFd) -> std::io::Result<i32> {
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..Default::default()
    };
    // SAFETY: as raw_clone (single-threaded, no new stack); args is a live, fully initialised
    // struct of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ret as i32)
}

/// clone(2) with fork semantics (no new stack: the child gets a copy of ours) plus namespace
/// flags, which fork() cannot pass. Returns 0 in the child.
fn raw_clone(flags: CloneFlags) -> Result<i32> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: rt is single-threaded when it creates a container, so the child's copy of the
    // address space is consistent; a null stack means "share the current stack copy" as fork does.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if ret < 0 {
        return Err(std::io::Error::last_os_error()).context("clone of rt init");
    }
    Ok(ret as i32)
}

/// The child between clone and exec.
///
/// # Safety
/// Must only be called in the child of `raw_clone`; uses only async-signal-safe syscalls.
unsafe fn child_exec(
    exe: RawFd,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    s: &InitSpawn,
) -> ! {
    // A caller (rt run) may block signals to forward them; the container must not inherit that.
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    for &fd in s.keep_fds {
        libc::fcntl(fd, libc::F_SETFD, 0);
    }
    if s.wait_for_maps {
        let mut b = 0u8;
        if libc::read(s.sync_fd, &mut b as *mut u8 as *mut libc::c_void, 1) != 1 {
            libc::_exit(1);
        }
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            libc::_exit(1);
        }
    }
    libc::syscall(
        libc::SYS_execveat,
        exe,
        c"".as_ptr(),
        argv.as_ptr(),
        envp.as_ptr(),
        libc::AT_EMPTY_PATH,
    );
    libc::_exit(127)
}

/// pidfd for a process, so waits are blocking polls, never sleeps; and a dead init is noticed.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned by us.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("pidfd_open({pid})"));
    }
    // SAFETY: fd is a fresh descriptor returned by the kernel.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as RawFd) })
}

/// Waits up to `timeout_ms` (-1: forever) for the process behind `pidfd` to exit. True if it did.
pub fn wait_pidfd(pidfd: &OwnedFd, timeout_ms: i32) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(pidfd),
        PollFlags::POLLIN,
    )];
    let timeout = if timeout_ms < 0 {
        PollTimeout::NONE
    } else {
        PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::MAX)
    };
    loop {
        match poll(&mut fds, timeout) {
            Ok(n) => return Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("polling pidfd"),
        }
    }
}
