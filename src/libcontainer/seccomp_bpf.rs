//! The classic-BPF side of seccomp: a tiny assembler with labels for the long jumps, and the code
//! for one ABI's section of the filter (its ENOSYS rule, its rules and its default).
//!
//! Conditional jumps only ever go a few instructions forward (within one argument condition or
//! one rule); everything farther is a `ja` to a label, whose offset is 32 bits. So no layout can
//! produce a jump past 255 instructions, however long the profile.
use anyhow::{bail, Result};
use oci_spec::runtime::LinuxSeccompOperator;
use std::collections::BTreeMap;

// Offsets into struct seccomp_data.
pub(super) const DATA_NR: u32 = 0;
pub(super) const DATA_ARCH: u32 = 4;
const DATA_ARGS: u32 = 16;

pub(super) const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// One argument condition, read as libseccomp reads it: `MASKED_EQ` is
/// `(arg & value) == (value_two & value)`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Cond {
    pub index: u8,
    pub op: LinuxSeccompOperator,
    pub value: u64,
    pub value_two: u64,
}

/// One syscall's rules: entries with conditions in profile order, then the fallback (the first
/// entry without conditions, which `seccomp::section` lets override the others, or the default).
#[derive(Default, Debug)]
pub(super) struct Group {
    pub conditional: Vec<(Vec<Cond>, u32)>,
    pub unconditional: Option<u32>,
}

/// One ABI's part of the filter, entered with the syscall number loaded.
#[derive(Debug)]
pub(super) struct Section {
    /// Keyed by the number the filter sees (x32's with `X32_SYSCALL_BIT`).
    pub groups: BTreeMap<u32, Group>,
    /// Numbers above this one answer ENOSYS (runc's rule for syscalls newer than the profile).
    pub enosys_above: Option<u32>,
    /// 64-bit arguments; on a 32-bit ABI only the low half is compared, as libseccomp does.
    pub wide_args: bool,
    pub default: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Label(usize);

/// A program under construction: instructions plus `ja` targets resolved at the end.
#[derive(Default)]
pub(super) struct Asm {
    prog: Vec<libc::sock_filter>,
    /// (instruction index, label) of every `ja` to a label.
    fixups: Vec<(usize, Label)>,
    labels: Vec<Option<usize>>,
}

fn insn(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

const LD_W_ABS: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const JGT: u32 = libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K;
const JGE: u32 = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
const JSET: u32 = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
const AND: u32 = libc::BPF_ALU | libc::BPF_AND | libc::BPF_K;

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }
    pub fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.prog.len());
    }
    pub fn load(&mut self, offset: u32) {
        self.prog.push(insn(LD_W_ABS, offset, 0, 0));
    }
    pub fn ret(&mut self, k: u32) {
        self.prog.push(insn(libc::BPF_RET | libc::BPF_K, k, 0, 0));
    }
    /// A conditional jump over the next `jt`/`jf` instructions.
    pub fn jump(&mut self, code: u32, k: u32, jt: u8, jf: u8) {
        self.prog.push(insn(code, k, jt, jf));
    }
    pub fn jeq(&mut self, k: u32, jt: u8, jf: u8) {
        self.jump(JEQ, k, jt, jf);
    }
    pub fn jset(&mut self, k: u32, jt: u8, jf: u8) {
        self.jump(JSET, k, jt, jf);
    }
    pub fn ja(&mut self, to: Label) {
        self.fixups.push((self.prog.len(), to));
        self.prog.push(insn(libc::BPF_JMP | libc::BPF_JA, 0, 0, 0));
    }
    /// `acc == k` goes on to `to`, anything else falls through.
    pub fn jeq_to(&mut self, k: u32, to: Label) {
        self.jeq(k, 0, 1);
        self.ja(to);
    }

    pub fn finish(mut self) -> Vec<libc::sock_filter> {
        for (at, l) in std::mem::take(&mut self.fixups) {
            let target = self.labels[l.0].expect("every label is bound");
            // Labels are only ever ahead of their jumps.
            self.prog[at].k = (target - at - 1) as u32;
        }
        self.prog
    }

    /// One ABI's section; the accumulator holds the syscall number.
    pub fn section(&mut self, s: &Section) -> Result<()> {
        if let Some(last) = s.enosys_above {
            self.jump(JGT, last, 0, 1);
            self.ret(RET_ENOSYS);
        }
        // Syscalls without conditions: one compare each, sharing one return per action. Allow
        // goes first as it is what most calls hit; numbers ascend, which puts read/write/mmap
        // near the front.
        let mut by_action: BTreeMap<(bool, u32), Vec<u32>> = BTreeMap::new();
        for (nr, g) in &s.groups {
            if let (Some(act), true) = (g.unconditional, g.conditional.is_empty()) {
                let key = (act != libc::SECCOMP_RET_ALLOW, act);
                by_action.entry(key).or_default().push(*nr);
            }
        }
        for ((_, act), nrs) in &by_action {
            // jt is 8 bits: a run ends at most 255 compares before its return.
            for run in nrs.chunks(255) {
                let n = run.len();
                for (i, nr) in run.iter().enumerate() {
                    self.jeq(*nr, (n - 1 - i) as u8, u8::from(i + 1 == n));
                }
                self.ret(*act);
            }
        }
        // Syscalls with conditions: each rule falls through to the next when it does not match,
        // then the syscall's unconditional action or the default. The number is still in the
        // accumulator at every `jeq`, since nothing before one loads an argument.
        for (nr, g) in s.groups.iter().filter(|(_, g)| !g.conditional.is_empty()) {
            let next = self.label();
            self.jeq(*nr, 1, 0);
            self.ja(next);
            for (conds, act) in &g.conditional {
                self.rule(conds, *act, s.wide_args)?;
            }
            self.ret(g.unconditional.unwrap_or(s.default));
            self.bind(next);
        }
        self.ret(s.default);
        Ok(())
    }

    /// The conditions ANDed, then `ret act`; any failed condition lands just past the return.
    fn rule(&mut self, conds: &[Cond], act: u32, wide: bool) -> Result<()> {
        let mut code: Vec<Proto> = Vec::new();
        for c in conds {
            let start = code.len();
            condition(c, wide, &mut code);
            let end = code.len();
            for p in &mut code[start..] {
                for t in [&mut p.jt, &mut p.jf] {
                    if let Tgt::CondEnd = t {
                        *t = Tgt::At(end);
                    }
                }
            }
        }
        let fail = code.len() + 1; // past the return
        for (i, p) in code.iter().enumerate() {
            let off = |t: Tgt| -> Result<u8> {
                let to = match t {
                    Tgt::Next => i + 1,
                    Tgt::At(x) => x,
                    Tgt::Fail => fail,
                    Tgt::CondEnd => unreachable!("resolved above"),
                };
                match u8::try_from(to - i - 1) {
                    Ok(o) => Ok(o),
                    Err(_) => bail!("an argument rule compiles to more than 255 instructions"),
                }
            };
            let (jt, jf) = (off(p.jt)?, off(p.jf)?);
            self.prog.push(insn(p.code, p.k, jt, jf));
        }
        self.ret(act);
        Ok(())
    }
}

/// Where a jump in a condition goes: the next instruction, the end of this condition (it
/// holds), a resolved index in the rule, or past the rule's return (the rule fails).
#[derive(Clone, Copy)]
enum Tgt {
    Next,
    CondEnd,
    At(usize),
    Fail,
}

struct Proto {
    code: u32,
    k: u32,
    jt: Tgt,
    jf: Tgt,
}

fn p(code: u32, k: u32, jt: Tgt, jf: Tgt) -> Proto {
    Proto { code, k, jt, jf }
}

/// One condition: falls through (to the next condition) when it holds, else jumps to Fail.
/// 64-bit values are compared high half first, unsigned, as libseccomp does.
fn condition(c: &Cond, wide: bool, out: &mut Vec<Proto>) {
    use LinuxSeccompOperator::*;
    use Tgt::*;
    let arg = DATA_ARGS + 8 * u32::from(c.index);
    // Little-endian: the low half first.
    let (lo_at, hi_at) = (arg, arg + 4);
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    let ld = |at: u32| p(LD_W_ABS, at, Next, Next);
    match c.op {
        ScmpCmpMaskedEq => {
            let (dh, dl) = ((c.value_two >> 32) as u32, c.value_two as u32);
            if wide {
                out.extend([
                    ld(hi_at),
                    p(AND, vh, Next, Next),
                    p(JEQ, dh & vh, Next, Fail),
                ]);
            }
            out.extend([
                ld(lo_at),
                p(AND, vl, Next, Next),
                p(JEQ, dl & vl, CondEnd, Fail),
            ]);
        }
        ScmpCmpEq => {
            if wide {
                out.extend([ld(hi_at), p(JEQ, vh, Next, Fail)]);
            }
            out.extend([ld(lo_at), p(JEQ, vl, CondEnd, Fail)]);
        }
        ScmpCmpNe => {
            if wide {
                // A different high half is enough.
                out.extend([ld(hi_at), p(JEQ, vh, Next, CondEnd)]);
            }
            out.extend([ld(lo_at), p(JEQ, vl, Fail, CondEnd)]);
        }
        // Greater: a greater high half holds, a smaller one fails, an equal one compares low.
        ScmpCmpGt | ScmpCmpGe => {
            let low = if c.op == ScmpCmpGt { JGT } else { JGE };
            if wide {
                out.extend([ld(hi_at), p(JGT, vh, CondEnd, Next), p(JEQ, vh, Next, Fail)]);
            }
            out.extend([ld(lo_at), p(low, vl, CondEnd, Fail)]);
        }
        // Less: the mirror image, with the low compare's outcomes swapped.
        ScmpCmpLt | ScmpCmpLe => {
            let low = if c.op == ScmpCmpLt { JGE } else { JGT };
            if wide {
                out.extend([ld(hi_at), p(JGT, vh, Fail, Next), p(JEQ, vh, Next, CondEnd)]);
            }
            out.extend([ld(lo_at), p(low, vl, Fail, CondEnd)]);
        }
    }
}
