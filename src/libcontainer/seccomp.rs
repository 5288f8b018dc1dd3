//! `linux.seccomp`: an OCI profile compiled to one classic-BPF program and installed with
//! seccomp(2) as the last step before execve (before the user switch when the process would
//! lack the privilege to install it later; see `can_install_after_user_switch`).
//!
//! seccompiler compiles the argument conditions (64-bit compares split into 32-bit halves, jump
//! offsets past 255) and encodes the actions. Its `SeccompFilter` has one match action and one
//! default, while an OCI profile gives every entry its own action, so the program around the rules
//! is laid out here, in one filter with libseccomp's semantics:
//!
//! ```text
//! load arch; native? -> body | listed compat arch (x86, x32, arm)? -> compat action | kill process
//! body: load nr; [x86_64: nr has the x32 bit? -> x32 action]
//!       runs of "nr == a || nr == b || ..." -> action        (entries without args, by action)
//!       nr == c? -> rule1 -> action1; rule2 -> action2; ...; fallback action   (entries with args)
//!       default action
//! ```
//!
//! Semantics chosen where the spec is silent (libseccomp's where it has one):
//! - several entries naming one syscall are ORed; entries with args are tried in profile order
//!   before the syscall's unconditional action (first unconditional entry wins), then the default;
//! - an entry whose action equals the default is dropped (libseccomp refuses those rules);
//! - an unknown syscall name is skipped: profiles name syscalls newer than our table;
//! - seccompiler's conditions compare all 64 bits of an argument, as libseccomp does on 64-bit
//!   arches; MASKED_EQ is `(arg & value) == (valueTwo & value)`.
use super::syscalls;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall, Process,
};
use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};
use std::collections::BTreeMap;

/// A compiled profile, ready for `install`.
#[derive(Debug)]
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
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

// Offsets into struct seccomp_data.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

#[cfg(target_arch = "x86_64")]
const NATIVE: (Arch, u32) = (Arch::ScmpArchX86_64, AUDIT_ARCH_X86_64);
#[cfg(target_arch = "aarch64")]
const NATIVE: (Arch, u32) = (Arch::ScmpArchAarch64, AUDIT_ARCH_AARCH64);

/// Other ABIs the host kernel runs: their syscalls have other numbers, so none of the profile's
/// rules can apply to them (see `compat_action`). The audit value is None for x32, which is
/// told apart by `X32_SYSCALL_BIT`.
#[cfg(target_arch = "x86_64")]
const COMPAT: &[(Arch, Option<u32>)] = &[
    (Arch::ScmpArchX86, Some(AUDIT_ARCH_I386)),
    (Arch::ScmpArchX32, None),
];
#[cfg(target_arch = "aarch64")]
const COMPAT: &[(Arch, Option<u32>)] = &[(Arch::ScmpArchArm, Some(AUDIT_ARCH_ARM))];

const RET_KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const MAX_INSNS: usize = libc::BPF_MAXINSNS as usize;

/// One syscall's rules after grouping: seccompiler wants every rule of a syscall together.
#[derive(Default)]
struct Group {
    /// (argument conditions ANDed, action), in profile order.
    conditional: Vec<(seccompiler::SeccompRule, u32)>,
    unconditional: Option<u32>,
}

/// Validates and compiles a profile. None means the profile allows every syscall and asks for
/// nothing else, so there is nothing to install.
pub fn compile(s: &LinuxSeccomp) -> Result<Option<Filter>> {
    if s.listener_path().is_some() {
        bail!("linux.seccomp.listenerPath: seccomp user notification (SCMP_ACT_NOTIFY) is not supported");
    }
    let flags = filter_flags(s.flags().as_deref().unwrap_or_default())?;
    let default =
        action(s.default_action(), s.default_errno_ret()).context("linux.seccomp.defaultAction")?;
    let (compat_arches, x32) = arches(s.architectures().as_deref().unwrap_or_default())?;

    let mut groups: BTreeMap<i64, Group> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (i, entry) in s
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        add_entry(&mut groups, &mut unknown, entry, default).with_context(|| {
            format!("linux.seccomp.syscalls[{i}] ({})", entry.names().join(", "))
        })?;
    }
    if !unknown.is_empty() {
        // One line, not one per name: this runs on every container start.
        crate::logging::debug(&format!(
            "seccomp: skipped syscalls unknown on this arch: {}",
            unknown.join(" ")
        ));
    }
    if default == RET_ALLOW && groups.is_empty() && flags == 0 {
        return Ok(None);
    }
    let compat = compat_action(default, !groups.is_empty());
    let prog = assemble(&groups, default, compat, &compat_arches, x32)?;
    Ok(Some(Filter { prog, flags }))
}

fn filter_flags(flags: &[LinuxSeccompFilterFlag]) -> Result<libc::c_ulong> {
    let mut bits = 0;
    for f in flags {
        bits |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => bail!(
                "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only applies to \
                 SCMP_ACT_NOTIFY, which is not supported"
            ),
        };
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
    let act = match a {
        ScmpActErrno => SeccompAction::Errno(data()?),
        ScmpActTrace => SeccompAction::Trace(data()?),
        _ if errno_ret.is_some() => {
            bail!("errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {a}")
        }
        ScmpActAllow => SeccompAction::Allow,
        // SCMP_ACT_KILL has always meant the thread, in libseccomp and in the kernel.
        ScmpActKill | ScmpActKillThread => SeccompAction::KillThread,
        ScmpActKillProcess => SeccompAction::KillProcess,
        ScmpActTrap => SeccompAction::Trap,
        ScmpActLog => SeccompAction::Log,
        ScmpActNotify => bail!("SCMP_ACT_NOTIFY (seccomp user notification) is not supported"),
    };
    Ok(act.into())
}

/// The listed compat ABIs: audit values to match, and whether x32 is listed. The native arch
/// is always filtered, as libseccomp always adds it; a profile for none of the ABIs this host
/// runs is refused.
fn arches(list: &[Arch]) -> Result<(Vec<u32>, bool)> {
    let compat: Vec<(Arch, Option<u32>)> = COMPAT
        .iter()
        .copied()
        .filter(|c| list.contains(&c.0))
        .collect();
    let native =
        list.is_empty() || list.contains(&NATIVE.0) || list.contains(&Arch::ScmpArchNative);
    if !native && compat.is_empty() {
        let names: Vec<String> = list.iter().map(|a| a.to_string()).collect();
        bail!(
            "linux.seccomp.architectures [{}] lists no architecture this host runs (it is {})",
            names.join(", "),
            NATIVE.0
        );
    }
    let x32 = compat.iter().any(|c| c.1.is_none());
    Ok((compat.into_iter().filter_map(|c| c.1).collect(), x32))
}

/// Adds one profile entry to the per-syscall groups; names this arch lacks go to `unknown`.
fn add_entry<'a>(
    groups: &mut BTreeMap<i64, Group>,
    unknown: &mut Vec<&'a str>,
    entry: &'a LinuxSyscall,
    default: u32,
) -> Result<()> {
    if entry.names().is_empty() {
        bail!("names must not be empty");
    }
    let act = action(entry.action(), entry.errno_ret())?;
    let args = entry.args().as_deref().unwrap_or_default();
    let rule = if args.is_empty() {
        None
    } else {
        let conds = args
            .iter()
            .enumerate()
            .map(|(j, a)| condition(a).with_context(|| format!("args[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        Some(seccompiler::SeccompRule::new(conds).context("building the argument rule")?)
    };
    // Checked before the syscalls are looked up, so a bad entry fails whatever its names.
    if act == default {
        return Ok(());
    }
    for name in entry.names() {
        let Some(nr) = syscalls::number(name) else {
            unknown.push(name);
            continue;
        };
        let g = groups.entry(nr).or_default();
        match &rule {
            None => {
                g.unconditional.get_or_insert(act);
            }
            Some(r) => g.conditional.push((r.clone(), act)),
        }
    }
    Ok(())
}

fn condition(a: &LinuxSeccompArg) -> Result<SeccompCondition> {
    let index = u8::try_from(a.index()).ok().filter(|i| *i <= 5);
    let index = index.with_context(|| {
        format!(
            "index {} is out of range: syscalls take arguments 0 to 5",
            a.index()
        )
    })?;
    use LinuxSeccompOperator::*;
    let (op, value) = match a.op() {
        ScmpCmpNe => (SeccompCmpOp::Ne, a.value()),
        ScmpCmpLt => (SeccompCmpOp::Lt, a.value()),
        ScmpCmpLe => (SeccompCmpOp::Le, a.value()),
        ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
        ScmpCmpGe => (SeccompCmpOp::Ge, a.value()),
        ScmpCmpGt => (SeccompCmpOp::Gt, a.value()),
        ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(a.value()),
            a.value_two().unwrap_or(0),
        ),
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .context("building the condition")
}

/// What a syscall of a listed compat ABI gets. The rules name native numbers and cannot be
/// applied to it, so it is treated as a syscall the profile does not list: the default action.
/// When that default lets it through while the profile denies some syscalls, that would let a
/// 32-bit program bypass the denials, so it fails closed with ENOSYS instead.
fn compat_action(default: u32, has_rules: bool) -> u32 {
    let permissive = matches!(
        default & libc::SECCOMP_RET_ACTION_FULL,
        libc::SECCOMP_RET_ALLOW | libc::SECCOMP_RET_LOG | libc::SECCOMP_RET_TRACE
    );
    if permissive && has_rules {
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
    } else {
        default
    }
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

fn ret(k: u32) -> libc::sock_filter {
    stmt(libc::BPF_RET | libc::BPF_K, k)
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, k, jt, jf)
}

fn assemble(
    groups: &BTreeMap<i64, Group>,
    default: u32,
    compat: u32,
    compat_arches: &[u32],
    x32: bool,
) -> Result<Vec<libc::sock_filter>> {
    let mut p = Vec::with_capacity(16 + 2 * groups.len());
    let mut foreign = Vec::new();
    for audit in compat_arches {
        foreign.extend([jeq(*audit, 0, 1), ret(compat)]);
    }
    foreign.push(ret(RET_KILL_PROCESS));
    p.push(stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, DATA_ARCH));
    p.push(jeq(NATIVE.1, foreign.len() as u8, 0));
    p.extend(foreign);
    p.push(stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, DATA_NR));
    if cfg!(target_arch = "x86_64") {
        // Without this an x32 call of a denied syscall would slip past a deny list.
        let x32_action = if x32 { compat } else { RET_KILL_PROCESS };
        p.push(jump(
            libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
            X32_SYSCALL_BIT,
            0,
            1,
        ));
        p.push(ret(x32_action));
    }

    // Syscalls without args: one compare each, sharing one return per action. Allow goes first
    // as it is what most calls hit; numbers ascend, which puts read/write/mmap near the front.
    let mut by_action: BTreeMap<(bool, u32), Vec<u32>> = BTreeMap::new();
    for (nr, g) in groups {
        if let (Some(act), true) = (g.unconditional, g.conditional.is_empty()) {
            let nr = u32::try_from(*nr).context("syscall number out of range")?;
            by_action
                .entry((act != RET_ALLOW, act))
                .or_default()
                .push(nr);
        }
    }
    for ((_, act), nrs) in &by_action {
        // jt is 8 bits: a run ends at most 255 compares before its return.
        for run in nrs.chunks(255) {
            let n = run.len();
            for (i, nr) in run.iter().enumerate() {
                let last = i + 1 == n;
                p.push(jeq(*nr, (n - 1 - i) as u8, u8::from(last)));
            }
            p.push(ret(*act));
        }
    }

    // Syscalls with args: seccompiler's rule code enters at its first instruction, and a failed
    // condition lands just after the one instruction that follows the rule (our return), i.e.
    // on the next rule or the fallback. When the syscall number does not match, the jf=1 lands
    // on the rule's second instruction, which chains over every rule and the fallback return.
    for (nr, g) in groups.iter().filter(|(_, g)| !g.conditional.is_empty()) {
        let nr = u32::try_from(*nr).context("syscall number out of range")?;
        p.push(jeq(nr, 0, 1));
        for (rule, act) in &g.conditional {
            let code: BpfProgram = rule.clone().into();
            p.extend(code.into_iter().map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            }));
            p.push(ret(*act));
        }
        p.push(ret(g.unconditional.unwrap_or(default)));
    }
    p.push(ret(default));
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
/// caller's business: it is set only when the config asks for it.
pub fn install(f: &Filter) -> Result<()> {
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
            Some(libc::EINVAL) if f.flags != 0 => anyhow::anyhow!(
                "installing the seccomp filter: {err}: does this kernel support linux.seccomp.flags?"
            ),
            _ => anyhow::anyhow!("installing the seccomp filter: {err}"),
        });
    }
    if r > 0 {
        bail!("installing the seccomp filter: SECCOMP_FILTER_FLAG_TSYNC failed, thread {r} cannot be synchronized");
    }
    Ok(())
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;

/// The architectures a profile may list here (the native one is filtered rule by rule; the
/// compat ABIs get the default action, see the module doc), for `rt features`.
pub fn supported_archs() -> Vec<serde_json::Value> {
    std::iter::once(NATIVE.0)
        .chain(COMPAT.iter().map(|(a, _)| *a))
        .filter_map(|a| serde_json::to_value(a).ok())
        .collect()
}
