//! cgroup v2 device control: v2 has no devices.allow/deny, so the rules become a
//! BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup.
//!
//! The program reads (type, access, major, minor) from its context and checks the rules from
//! last to first: the first rule that matches decides, exactly as a later v1 rule overrides
//! an earlier one. Without a matching rule access is allowed, which is v1's default too (a
//! spec restricts by starting with the deny-all rule).
use super::devices;
use anyhow::{Context, Result};
use oci_spec::runtime::LinuxDeviceCgroup;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One eBPF instruction as the kernel lays it out.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes used (see linux/bpf_common.h and linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const JMP_JEQ_K: u8 = 0x15;
const JMP_EXIT: u8 = 0x95;

// Registers: r1 = context on entry (then scratch), r2 = type, r3 = access, r4 = major,
// r5 = minor; r0 = return value (1 allow, 0 deny).
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// BPF_DEVCG_DEV_* and BPF_DEVCG_ACC_* from linux/bpf.h.
fn dev_type(t: char) -> Option<i32> {
    match t {
        'b' => Some(1),
        'c' => Some(2),
        _ => None,
    }
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |acc, c| {
        acc | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// Builds the program for the spec's rules followed by rt's default allowed devices.
///
/// Access matching follows v1 for the common cases: an allow rule decides when it grants
/// every requested bit, a deny rule when it denies any of them. (Allowing "r" and "w" in two
/// separate rules then asking for "rw" falls through to earlier rules, stricter than v1.)
pub fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let all = devices::in_effect(rules)?;
    let mut prog = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU64_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU64_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    let mut covered_all = false;
    for rule in all.iter().rev() {
        let bits = access_bits(&rule.access);
        let mut checks: Vec<Insn> = Vec::new();
        // Each check jumps past the rest of this block when it does not match; the offset is
        // patched once the block's length is known.
        let wildcard_type = rule.typ == 'a';
        if let (false, Some(t)) = (wildcard_type, dev_type(rule.typ)) {
            checks.push(insn(JMP_JNE_K, R2, 0, 0, t));
        }
        if bits != 7 {
            checks.push(insn(ALU64_MOV_X, R1, R3, 0, 0));
            checks.push(insn(ALU64_AND_K, R1, 0, 0, bits));
            if rule.allow {
                // Not a subset of the granted bits: not this rule.
                checks.push(insn(JMP_JNE_X, R1, R3, 0, 0));
            } else {
                // None of the denied bits requested: not this rule.
                checks.push(insn(JMP_JEQ_K, R1, 0, 0, 0));
            }
        }
        // Type "a" means every device whatever the numbers, as in v1.
        if !wildcard_type {
            if let Some(m) = rule.major {
                checks.push(insn(
                    JMP_JNE_K,
                    R4,
                    0,
                    0,
                    i32::try_from(m).context("device major too large")?,
                ));
            }
            if let Some(m) = rule.minor {
                checks.push(insn(
                    JMP_JNE_K,
                    R5,
                    0,
                    0,
                    i32::try_from(m).context("device minor too large")?,
                ));
            }
        }
        let n = checks.len();
        for (i, c) in checks.iter_mut().enumerate() {
            if matches!(c.code, JMP_JNE_K | JMP_JNE_X | JMP_JEQ_K) {
                // Skip the remaining checks and the two-instruction verdict.
                c.off = (n - i - 1 + 2) as i16;
            }
        }
        prog.extend(checks);
        prog.push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(rule.allow)));
        prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
        if n == 0 {
            // This rule matches everything: earlier rules can never decide.
            covered_all = true;
            break;
        }
    }
    if !covered_all {
        prog.push(insn(ALU64_MOV_K, R0, 0, 0, 1));
        prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    Ok(prog)
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The PROG_LOAD part of union bpf_attr, padded; the kernel wants unused bytes zeroed.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The PROG_ATTACH / PROG_DETACH part of union bpf_attr (GET_FD_BY_ID reads only the first
/// field, the program id).
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    relative_fd: u32,
    expected_revision: u64,
}

/// The PROG_QUERY part of union bpf_attr.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// bpf(2). SAFETY: `attr` is a live, fully initialised #[repr(C)] value whose layout
/// matches the kernel's union bpf_attr for `cmd`, and any pointers inside it point to buffers
/// that outlive the call; the kernel reads at most size_of::<T>() bytes of it.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i32> {
    let size = std::mem::size_of::<T>() as libc::c_long;
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size) };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret as i32)
    }
}

fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..6].copy_from_slice(b"rt_dev");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: the kernel just returned this fd to us and nothing else owns it.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(e)
            if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EACCES) =>
        {
            // Ask the verifier why, for the error message.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let text =
                String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)])
                    .into_owned();
            Err(e)
                .with_context(|| format!("loading the device cgroup eBPF program: {}", text.trim()))
        }
        Err(e) => Err(e).context("loading the device cgroup eBPF program (bpf(BPF_PROG_LOAD))"),
    }
}

/// Ids of the device programs attached to the cgroup now.
fn query(cgroup: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).context("querying device programs (bpf(BPF_PROG_QUERY))")?;
    Ok(ids[..attr.prog_cnt.min(64) as usize].to_vec())
}

/// Loads the rules' program and attaches it to `dir`, then detaches the programs a previous
/// apply left there, so an update replaces the policy instead of stacking on it (stacked
/// programs must all allow). ALLOW_MULTI lets a nested runtime add its own programs below.
pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let prog = load(&program(rules)?)?;
    let cgroup: OwnedFd = std::fs::File::open(dir)
        .with_context(|| format!("opening {}", dir.display()))?
        .into();
    let old = query(&cgroup)?;
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr)
        .with_context(|| format!("attaching the device eBPF program to {}", dir.display()))?;
    for id in old {
        let mut by_id = AttachAttr {
            target_fd: id,
            ..Default::default()
        };
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id) else {
            continue;
        };
        // SAFETY: a fresh fd from the kernel, owned only here.
        let old_prog = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut detach = AttachAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: old_prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut detach)
            .with_context(|| format!("detaching an old device program from {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    /// Runs the program on one access the way the kernel would, to test the generated code
    /// without loading it.
    fn run(prog: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
                ALU64_AND_K => r[dst] &= i.imm as i64 as u64,
                ALU64_RSH_K => r[dst] >>= i.imm,
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                ALU64_MOV_X => r[dst] = r[src],
                JMP_JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
                JMP_JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JMP_JEQ_K if r[dst] == i.imm as i64 as u64 => pc += i.off as usize,
                JMP_JNE_K | JMP_JNE_X | JMP_JEQ_K => {}
                JMP_EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    const CHAR: u32 = 2;
    const BLOCK: u32 = 1;
    const R: u32 = 2;
    const W: u32 = 4;
    const M: u32 = 1;

    #[test]
    fn deny_all_then_defaults() {
        let p = program(&rules(r#"[{"allow":false,"access":"rwm"}]"#)).unwrap();
        assert_eq!(run(&p, CHAR, R | W, 1, 3), 1, "/dev/null");
        assert_eq!(run(&p, CHAR, R, 136, 7), 1, "pts");
        assert_eq!(run(&p, CHAR, R, 1, 11), 0, "/dev/kmsg");
        assert_eq!(run(&p, BLOCK, R, 8, 0), 0, "sda");
        assert_eq!(run(&p, BLOCK, M, 8, 0), 1, "mknod of any block device");
    }

    #[test]
    fn later_rules_win_and_partial_access() {
        let p = program(&rules(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"b","major":8,"minor":0,"access":"r"},
                {"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]"#,
        ))
        .unwrap();
        assert_eq!(run(&p, BLOCK, R, 8, 0), 1);
        assert_eq!(run(&p, BLOCK, W, 8, 0), 0, "only read was allowed");
        assert_eq!(run(&p, BLOCK, R | W, 8, 0), 0);
        // The defaults come after the spec's rules, so /dev/null stays allowed like on v1.
        assert_eq!(run(&p, CHAR, R, 1, 3), 1);
    }

    #[test]
    fn partial_deny_removes_only_those_bits() {
        let p = program(&rules(
            r#"[{"allow":true,"type":"c","major":4,"minor":1,"access":"rwm"},
                {"allow":false,"type":"c","major":4,"minor":1,"access":"w"},
                {"allow":false,"access":"rwm"}]"#,
        ))
        .unwrap();
        // The trailing deny-all wins over everything before it, defaults aside.
        assert_eq!(run(&p, CHAR, R, 4, 1), 0);
        let p = program(&rules(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":4,"minor":1,"access":"rwm"},
                {"allow":false,"type":"c","major":4,"minor":1,"access":"w"}]"#,
        ))
        .unwrap();
        assert_eq!(run(&p, CHAR, R, 4, 1), 1);
        assert_eq!(run(&p, CHAR, W, 4, 1), 0);
        assert_eq!(run(&p, CHAR, R | W, 4, 1), 0, "any denied bit denies");
    }

    #[test]
    fn no_deny_all_means_allow_by_default() {
        let p = program(&rules(
            r#"[{"allow":false,"type":"c","major":1,"minor":11,"access":"rwm"}]"#,
        ))
        .unwrap();
        assert_eq!(run(&p, CHAR, R, 1, 11), 0);
        assert_eq!(run(&p, BLOCK, R, 8, 0), 1);
    }
}
