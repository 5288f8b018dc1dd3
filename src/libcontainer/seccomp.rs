//! `linux.seccomp`: an OCI profile compiled to one classic-BPF program and installed with
//! seccomp(2) as the last step before execve (before the user switch when the process would
//! lack the privilege to install it later; see `can_install_after_user_switch`).
//!
//! The program is rt's own (`seccomp_bpf.rs`), laid out with libseccomp's semantics plus runc's
//! ENOSYS rule:
//!
//! ```text
//! load arch; x86_64? -> native | i386 listed? -> i386 | ... | kill process
//! native: load nr; [x86_64: nr has the x32 bit? -> x32 if listed, else kill process]
//! each ABI's section:
//!       [nr > the largest number the profile names? -> ENOSYS]  (default not allow/log/trace)
//!       runs of "nr == a || nr == b || ..." -> action        (entries without args, by action)
//!       nr == c? -> rule1 -> action1; rule2 -> action2; ...; fallback action   (entries with args)
//!       default action
//! ```
//!
//! Semantics chosen where the spec is silent (libseccomp's or runc's where they have one):
//! - every listed ABI gets the profile's rules in its own syscall numbers (a name it lacks is
//!   skipped there); on a 32-bit ABI (i386, x32) conditions compare the low 32 bits, as libseccomp
//!   does; an ABI rt has no table for (arm on aarch64) gets the default action, or ENOSYS when
//!   that default would let its calls past the profile's denials;
//! - the ENOSYS rule (runc's patchbpf): under a default that is not allow, log or trace, a number
//!   greater than every syscall the profile names on that ABI answers ENOSYS, so glibc falls back
//!   from clone3, faccessat2 or openat2 when a profile predates them. "Names" counts every entry,
//!   whatever its action; the native ABI always has one, listed or not (runc 1.1.15 and later);
//! - several entries naming one syscall are ORed, entries with args tried in profile order; an
//!   entry without args overrides that syscall's entries with args wherever it stands, and the
//!   first such entry wins (libseccomp 2.5, as runc 1.1.5 shows);
//! - an entry whose action equals the default is dropped (libseccomp refuses those rules);
//! - an unknown syscall name is skipped: profiles name syscalls newer than our table;
//! - conditions compare all 64 bits of an argument on a 64-bit ABI, unsigned; MASKED_EQ is
//!   `(arg & value) == (valueTwo & value)`.
//!
//! `SCMP_ACT_NOTIFY` is `SECCOMP_RET_USER_NOTIF`: a profile with such a rule is installed with
//! `SECCOMP_FILTER_FLAG_NEW_LISTENER`, and `install` returns the listener, which init hands to
//! the parent for the seccomp agent (`seccomp_notify.rs` says how, and why `write` may not be
//! notified and notify may not be the default action, as in runc).
use super::seccomp_bpf::{Asm, Cond, Group, Section, DATA_ARCH, DATA_NR, RET_ENOSYS};
use super::syscalls;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, Process,
};
use std::collections::BTreeMap;

/// A compiled profile, ready for `install`.
#[derive(Debug)]
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

impl Filter {
    /// Some rule answers SCMP_ACT_NOTIFY: installing it yields a listener for the agent.
    pub fn notifies(&self) -> bool {
        self.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }
}

// From linux/audit.h; libc does not carry them.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// x32 syscalls arrive with AUDIT_ARCH_X86_64 and this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An ABI the host kernel runs: the audit value its calls arrive with and its syscall numbers
/// (None: rt has no table for it).
struct Abi {
    arch: Arch,
    audit: u32,
    wide_args: bool,
    number: Option<fn(&str) -> Option<u32>>,
}

fn native_number(name: &str) -> Option<u32> {
    syscalls::number(name).and_then(|n| u32::try_from(n).ok())
}

#[cfg(target_arch = "x86_64")]
const NATIVE: Abi = Abi {
    arch: Arch::ScmpArchX86_64,
    audit: AUDIT_ARCH_X86_64,
    wide_args: true,
    number: Some(native_number),
};
#[cfg(target_arch = "aarch64")]
const NATIVE: Abi = Abi {
    arch: Arch::ScmpArchAarch64,
    audit: AUDIT_ARCH_AARCH64,
    wide_args: true,
    number: Some(native_number),
};

/// The other ABIs. x32 comes with AUDIT_ARCH_X86_64 and is told apart by `X32_SYSCALL_BIT`.
#[cfg(target_arch = "x86_64")]
const COMPAT: &[Abi] = &[
    Abi {
        arch: Arch::ScmpArchX86,
        audit: AUDIT_ARCH_I386,
        wide_args: false,
        number: Some(syscalls::i386),
    },
    Abi {
        arch: Arch::ScmpArchX32,
        audit: AUDIT_ARCH_X86_64,
        wide_args: false,
        number: Some(syscalls::x32),
    },
];
#[cfg(target_arch = "aarch64")]
const COMPAT: &[Abi] = &[Abi {
    arch: Arch::ScmpArchArm,
    audit: AUDIT_ARCH_ARM,
    wide_args: false,
    number: None,
}];

const RET_KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const MAX_INSNS: usize = libc::BPF_MAXINSNS as usize;

/// One profile entry, validated: its conditions (none: always) and action.
struct Entry<'a> {
    names: &'a [String],
    conds: Vec<Cond>,
    action: u32,
}

/// Validates and compiles a profile. None means the profile allows every syscall and asks for
/// nothing else, so there is nothing to install.
pub fn compile(s: &LinuxSeccomp) -> Result<Option<Filter>> {
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        // runc's words. Every syscall rt makes after the filter is on would wait for an agent
        // that has no listener yet, the write that hands it over first of all.
        bail!("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action");
    }
    let notify = super::seccomp_notify::agent(s)?.is_some();
    let flags = filter_flags(s.flags().as_deref().unwrap_or_default(), notify)?;
    let default =
        action(s.default_action(), s.default_errno_ret()).context("linux.seccomp.defaultAction")?;
    let compat = arches(s.architectures().as_deref().unwrap_or_default())?;

    let mut entries = Vec::new();
    for (i, entry) in s
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let e = parse_entry(entry).with_context(|| {
            format!("linux.seccomp.syscalls[{i}] ({})", entry.names().join(", "))
        })?;
        entries.extend(split_same_arg(e));
    }
    let enosys = !permissive(default);
    let mut unknown = Vec::new();
    let native = section(&NATIVE, &entries, default, enosys, Some(&mut unknown));
    if !unknown.is_empty() {
        // One line, not one per name: this runs on every container start.
        crate::logging::debug(&format!(
            "seccomp: skipped syscalls unknown on this arch: {}",
            unknown.join(" ")
        ));
    }
    let has_rules = !native.groups.is_empty();
    if default == RET_ALLOW && !has_rules && flags == 0 {
        return Ok(None);
    }
    let compat: Vec<(&Abi, Option<Section>)> = compat
        .into_iter()
        .map(|abi| {
            let s = abi
                .number
                .map(|_| section(abi, &entries, default, enosys, None));
            (abi, s)
        })
        .collect();
    let prog = assemble(&native, &compat, compat_action(default, has_rules))?;
    Ok(Some(Filter { prog, flags }))
}

/// The profile's flags as seccomp(2) bits, plus NEW_LISTENER when a rule notifies.
fn filter_flags(flags: &[LinuxSeccompFilterFlag], notify: bool) -> Result<libc::c_ulong> {
    let mut bits = 0;
    for f in flags {
        bits |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if notify => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
            // The kernel refuses it without a listener (EINVAL): say why instead.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => bail!(
                "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only applies to \
                 SCMP_ACT_NOTIFY rules, and the profile has none"
            ),
        };
    }
    if notify {
        bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // With TSYNC, seccomp(2) returns a thread id on failure, so the kernel takes it with a
        // listener only when told to report that failure as ESRCH instead (libseccomp does so).
        if bits & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            bits |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    Ok(bits)
}

/// The profile's action as a seccomp return value. errnoRet defaults to EPERM, as runc does.
fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<u32> {
    use LinuxSeccompAction::*;
    let data = || -> Result<u32> {
        let v = errno_ret.unwrap_or(libc::EPERM as u32);
        if v > libc::SECCOMP_RET_DATA {
            bail!("errnoRet {v} does not fit in the 16 bits seccomp returns");
        }
        Ok(v)
    };
    Ok(match a {
        ScmpActErrno => libc::SECCOMP_RET_ERRNO | data()?,
        ScmpActTrace => libc::SECCOMP_RET_TRACE | data()?,
        _ if errno_ret.is_some() => {
            bail!("errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {a}")
        }
        ScmpActAllow => RET_ALLOW,
        // SCMP_ACT_KILL has always meant the thread, in libseccomp and in the kernel.
        ScmpActKill | ScmpActKillThread => libc::SECCOMP_RET_KILL_THREAD,
        ScmpActKillProcess => RET_KILL_PROCESS,
        ScmpActTrap => libc::SECCOMP_RET_TRAP,
        ScmpActLog => libc::SECCOMP_RET_LOG,
        ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
    })
}

/// Allow, log and trace let a call through (a tracer handles syscalls it does not know): runc
/// gives those defaults no ENOSYS rule, and compat ABIs without a table fail closed under them.
fn permissive(default: u32) -> bool {
    matches!(
        default & libc::SECCOMP_RET_ACTION_FULL,
        libc::SECCOMP_RET_ALLOW | libc::SECCOMP_RET_LOG | libc::SECCOMP_RET_TRACE
    )
}

/// The listed compat ABIs. The native one is always filtered, as libseccomp always adds it; a
/// profile for none of the ABIs this host runs is refused.
fn arches(list: &[Arch]) -> Result<Vec<&'static Abi>> {
    let compat: Vec<&Abi> = COMPAT.iter().filter(|c| list.contains(&c.arch)).collect();
    let native =
        list.is_empty() || list.contains(&NATIVE.arch) || list.contains(&Arch::ScmpArchNative);
    if !native && compat.is_empty() {
        let names: Vec<String> = list.iter().map(|a| a.to_string()).collect();
        bail!(
            "linux.seccomp.architectures [{}] lists no architecture this host runs (it is {})",
            names.join(", "),
            NATIVE.arch
        );
    }
    Ok(compat)
}

/// Checks one entry: names, action, conditions; a bad entry fails whatever its names.
fn parse_entry(entry: &oci_spec::runtime::LinuxSyscall) -> Result<Entry<'_>> {
    if entry.names().is_empty() {
        bail!("names must not be empty");
    }
    let action = action(entry.action(), entry.errno_ret())?;
    if action == libc::SECCOMP_RET_USER_NOTIF && entry.names().iter().any(|n| n == "write") {
        // runc's words. Init hands the listener over with a write(2) (seccomp_notify.rs): a
        // notified write would wait for the agent that write is to reach.
        bail!("SCMP_ACT_NOTIFY cannot be used for the write syscall: rt hands the listener to the agent with it");
    }
    let conds = entry
        .args()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(j, a)| condition(a).with_context(|| format!("args[{j}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Entry {
        names: entry.names(),
        conds,
        action,
    })
}

/// runc's rule: conditions of one entry are ANDed, except when two of them test the same
/// argument; then each condition is a rule of its own (ORed), since no value could meet two
/// equalities at once. `{arg0 == 100, arg0 == 9001}` matches either value.
fn split_same_arg(e: Entry<'_>) -> Vec<Entry<'_>> {
    let mut seen = [false; 6];
    let repeated = e.conds.iter().any(|c| {
        let again = seen[c.index as usize];
        seen[c.index as usize] = true;
        again
    });
    if !repeated {
        return vec![e];
    }
    e.conds
        .into_iter()
        .map(|c| Entry {
            names: e.names,
            conds: vec![c],
            action: e.action,
        })
        .collect()
}

fn condition(a: &LinuxSeccompArg) -> Result<Cond> {
    let index = u8::try_from(a.index()).ok().filter(|i| *i <= 5);
    let index = index.with_context(|| {
        format!(
            "index {} is out of range: syscalls take arguments 0 to 5",
            a.index()
        )
    })?;
    Ok(Cond {
        index,
        op: a.op(),
        value: a.value(),
        value_two: a.value_two().unwrap_or(0),
    })
}

/// One ABI's rules, grouped per syscall in that ABI's numbers; names it lacks go to `unknown`.
fn section(
    abi: &Abi,
    entries: &[Entry],
    default: u32,
    enosys: bool,
    mut unknown: Option<&mut Vec<String>>,
) -> Section {
    let number = abi.number.expect("an ABI with a table");
    let x32 = abi.arch == Arch::ScmpArchX32;
    let mut groups: BTreeMap<u32, Group> = BTreeMap::new();
    let mut last = 0;
    for e in entries {
        for name in e.names {
            let Some(nr) = number(name) else {
                if let Some(u) = unknown.as_deref_mut() {
                    u.push(name.clone());
                }
                continue;
            };
            let nr = if x32 { nr | X32_SYSCALL_BIT } else { nr };
            // Every entry counts for the ENOSYS rule, even one the filter drops below.
            last = last.max(nr);
            if e.action == default {
                continue;
            }
            let g = groups.entry(nr).or_default();
            if e.conds.is_empty() {
                g.unconditional.get_or_insert(e.action);
            } else {
                g.conditional.push((e.conds.clone(), e.action));
            }
        }
    }
    // libseccomp: an unconditional rule makes the syscall's conditional ones moot.
    for g in groups.values_mut() {
        if g.unconditional.is_some() {
            g.conditional.clear();
        }
    }
    Section {
        groups,
        // runc skips an ABI whose largest named number is 0 (only `read` on x86_64): so do we.
        enosys_above: (enosys && last > 0).then_some(last),
        wide_args: abi.wide_args,
        default,
    }
}

/// What a syscall of a listed ABI without a table gets. The rules name other numbers and cannot
/// be applied to it, so it is treated as a syscall the profile does not list: the default action.
/// When that default lets it through while the profile denies some syscalls, that would let a
/// 32-bit program bypass the denials, so it fails closed with ENOSYS instead.
fn compat_action(default: u32, has_rules: bool) -> u32 {
    if permissive(default) && has_rules {
        RET_ENOSYS
    } else {
        default
    }
}

fn assemble(
    native: &Section,
    compat: &[(&Abi, Option<Section>)],
    compat_action: u32,
) -> Result<Vec<libc::sock_filter>> {
    let mut a = Asm::default();
    let x32 = compat.iter().find(|(abi, _)| abi.arch == Arch::ScmpArchX32);
    let others: Vec<_> = compat
        .iter()
        .filter(|(abi, _)| abi.arch != Arch::ScmpArchX32)
        .collect();
    // Dispatch on the ABI; an unlisted one is killed, as libseccomp's bad-arch action.
    a.load(DATA_ARCH);
    let native_at = a.label();
    a.jeq_to(NATIVE.audit, native_at);
    let mut bodies = Vec::new();
    for (abi, s) in &others {
        match s {
            Some(s) => {
                let l = a.label();
                a.jeq_to(abi.audit, l);
                bodies.push((l, s));
            }
            None => {
                a.jeq(abi.audit, 0, 1);
                a.ret(compat_action);
            }
        }
    }
    a.ret(RET_KILL_PROCESS);

    a.bind(native_at);
    a.load(DATA_NR);
    let x32_at = a.label();
    if cfg!(target_arch = "x86_64") {
        // Without this an x32 call of a denied syscall would slip past a deny list.
        match x32 {
            Some((_, Some(_))) => {
                a.jset(X32_SYSCALL_BIT, 0, 1);
                a.ja(x32_at);
            }
            _ => {
                a.jset(X32_SYSCALL_BIT, 0, 1);
                a.ret(RET_KILL_PROCESS);
            }
        }
    }
    a.section(native)?;
    for (l, s) in bodies {
        a.bind(l);
        a.load(DATA_NR);
        a.section(s)?;
    }
    a.bind(x32_at);
    if let Some((_, Some(s))) = x32 {
        a.section(s)?;
    }
    let p = a.finish();
    if p.len() > MAX_INSNS {
        bail!("the seccomp profile compiles to {} BPF instructions; the kernel takes at most {MAX_INSNS}", p.len());
    }
    Ok(p)
}

/// Without no_new_privs the kernel installs a filter only for a holder of CAP_SYS_ADMIN (in the
/// container's user namespace). True when the process will still hold it once it has switched
/// to its user and capabilities, so the filter can go on as the very last step; otherwise the
/// caller installs it before the switch, as runc does, and the rest of init runs under it.
pub fn can_install_after_user_switch(process: &Process) -> bool {
    if process.no_new_privileges().unwrap_or(false) {
        return true;
    }
    match process.capabilities() {
        Some(c) => c
            .effective()
            .as_ref()
            .is_some_and(|e| e.contains(&oci_spec::runtime::Capability::SysAdmin)),
        // No capabilities section: setresuid to a non-root user empties the effective set.
        None => process.user().uid() == 0,
    }
}

/// Installs the filter on the calling thread (all threads with TSYNC). no_new_privs is the
/// caller's business: it is set only when the config asks for it. A filter that notifies
/// returns its listener (close-on-exec), which the caller must hand over before anything the
/// filter may notify: no syscall happens here after seccomp(2) returns it.
pub fn install(f: &Filter) -> Result<Option<std::os::fd::OwnedFd>> {
    let prog = libc::sock_fprog {
        len: u16::try_from(f.prog.len()).context("seccomp program too long")?,
        // The kernel copies the program in and never writes through this pointer.
        filter: f.prog.as_ptr().cast_mut(),
    };
    // SAFETY: seccomp(2) reads `prog` and the instructions it points to, both alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            f.flags,
            &prog,
        )
    };
    if r < 0 {
        let err = std::io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EACCES) => anyhow::anyhow!(
                "installing the seccomp filter: {err}: without noNewPrivileges it needs CAP_SYS_ADMIN"
            ),
            // runc's phrase for it, on kernels before 5.0
            Some(libc::EINVAL) if f.notifies() => anyhow::anyhow!(
                "seccomp notify unsupported: installing the seccomp filter with a listener: {err} (SCMP_ACT_NOTIFY needs Linux 5.6 or later)"
            ),
            // The kernel allows one listener per process's filter chain.
            Some(libc::EBUSY) if f.notifies() => anyhow::anyhow!(
                "installing the seccomp filter: {err}: this process already runs under a seccomp filter with a listener (SCMP_ACT_NOTIFY), and the kernel takes only one"
            ),
            Some(libc::EINVAL) if f.flags != 0 => anyhow::anyhow!(
                "installing the seccomp filter: {err}: does this kernel support linux.seccomp.flags?"
            ),
            _ => anyhow::anyhow!("installing the seccomp filter: {err}"),
        });
    }
    if f.notifies() {
        // SAFETY: with NEW_LISTENER a successful seccomp(2) returns a new fd, now ours.
        return Ok(Some(unsafe {
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r as i32)
        }));
    }
    if r > 0 {
        bail!("installing the seccomp filter: SECCOMP_FILTER_FLAG_TSYNC failed, thread {r} cannot be synchronized");
    }
    Ok(None)
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;

/// The architectures a profile may list here (see the module doc for how each is filtered), for
/// `rt features`.
pub fn supported_archs() -> Vec<serde_json::Value> {
    std::iter::once(NATIVE.arch)
        .chain(COMPAT.iter().map(|a| a.arch))
        .filter_map(|a| serde_json::to_value(a).ok())
        .collect()
}

/// The flags a profile may ask for on this kernel, for `rt features`. WAIT_KILLABLE_RECV came
/// in Linux 5.19: the kernel is asked, with a null program, which it rejects with EFAULT after
/// accepting the flags (EINVAL before), so nothing is ever installed.
pub fn supported_flags() -> Vec<&'static str> {
    let mut v = vec![
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    ];
    let flags =
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    // SAFETY: seccomp(2) with a null program pointer fails without installing anything.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT) {
        v.push("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV");
    }
    v
}
