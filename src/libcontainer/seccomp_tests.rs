//! Unit tests: the compiled program is run through a small classic-BPF interpreter, so the
//! semantics are checked without installing anything.
use super::*;
use serde_json::json;

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("profile parses")
}

fn compiled(v: serde_json::Value) -> Filter {
    compile(&profile(v)).expect("compiles").expect("a filter")
}

fn err(v: serde_json::Value) -> String {
    format!("{:#}", compile(&profile(v)).expect_err("refused"))
}

fn nr(name: &str) -> u32 {
    syscalls::number(name).unwrap() as u32
}

/// Runs the program on one seccomp_data; supports what compile emits.
fn run_on(f: &Filter, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = &f.prog[pc];
        let code = u32::from(i.code);
        pc += 1;
        match code {
            c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                let o = i.k as usize;
                acc = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
            }
            c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => acc &= i.k,
            c if c == libc::BPF_JMP | libc::BPF_JA => pc += i.k as usize,
            c if c & 0x07 == libc::BPF_JMP => {
                let taken = match c & 0xf0 {
                    0x10 => acc == i.k,
                    0x20 => acc > i.k,
                    0x30 => acc >= i.k,
                    0x40 => acc & i.k != 0,
                    other => panic!("jump op {other:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            c if c == libc::BPF_RET | libc::BPF_K => return i.k,
            other => panic!("opcode {other:#x} at {}", pc - 1),
        }
    }
}

fn run(f: &Filter, name: &str, args: [u64; 6]) -> u32 {
    run_on(f, NATIVE.audit, nr(name), args)
}

/// The native ABI's groups of a profile, as `compile` builds them.
fn native_groups(p: &LinuxSeccomp, default: u32) -> (Section, Vec<String>) {
    let entries: Vec<Entry> = p
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|e| parse_entry(e).unwrap())
        .collect();
    let mut unknown = Vec::new();
    let s = section(&NATIVE, &entries, default, false, Some(&mut unknown));
    (s, unknown)
}

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | 1;
const NONE: [u64; 6] = [0; 6];

#[test]
fn actions() {
    use LinuxSeccompAction::*;
    assert_eq!(action(ScmpActErrno, None).unwrap(), EPERM);
    assert_eq!(
        action(ScmpActErrno, Some(38)).unwrap(),
        libc::SECCOMP_RET_ERRNO | 38
    );
    assert_eq!(
        action(ScmpActTrace, Some(7)).unwrap(),
        libc::SECCOMP_RET_TRACE | 7
    );
    assert_eq!(
        action(ScmpActTrace, None).unwrap(),
        libc::SECCOMP_RET_TRACE | 1
    );
    assert_eq!(
        action(ScmpActKill, None).unwrap(),
        libc::SECCOMP_RET_KILL_THREAD
    );
    assert_eq!(
        action(ScmpActKillThread, None).unwrap(),
        libc::SECCOMP_RET_KILL_THREAD
    );
    assert_eq!(
        action(ScmpActKillProcess, None).unwrap(),
        libc::SECCOMP_RET_KILL_PROCESS
    );
    assert_eq!(action(ScmpActTrap, None).unwrap(), libc::SECCOMP_RET_TRAP);
    assert_eq!(action(ScmpActLog, None).unwrap(), libc::SECCOMP_RET_LOG);
    assert_eq!(action(ScmpActAllow, None).unwrap(), ALLOW);
    let e = action(ScmpActAllow, Some(1)).unwrap_err().to_string();
    assert_eq!(
        e,
        "errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"
    );
    assert!(action(ScmpActErrno, Some(0x1_0000)).is_err());
    assert_eq!(
        action(ScmpActNotify, None).unwrap(),
        libc::SECCOMP_RET_USER_NOTIF
    );
    assert!(action(ScmpActNotify, Some(1)).is_err());
}

#[test]
fn unknown_action_op_and_arch_fail_to_parse() {
    let bad = |v: serde_json::Value| {
        serde_json::from_value::<LinuxSeccomp>(v)
            .unwrap_err()
            .to_string()
    };
    let e = bad(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}),
    );
    assert!(e.contains("SCMP_ACT_NOPE"), "{e}");
    let e = bad(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}),
    );
    assert!(e.contains("SCMP_CMP_LIKE"), "{e}");
    let e = bad(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}));
    assert!(e.contains("SECCOMP_FILTER_FLAG_BOGUS"), "{e}");
}

#[test]
fn deny_list_and_errno() {
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["fchmodat", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["unlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
    ]}));
    assert_eq!(run(&f, "fchmodat", NONE), EPERM);
    assert_eq!(run(&f, "mkdirat", NONE), EPERM);
    assert_eq!(run(&f, "unlinkat", NONE), libc::SECCOMP_RET_ERRNO | 38);
    assert_eq!(run(&f, "reboot", NONE), libc::SECCOMP_RET_KILL_PROCESS);
    assert_eq!(run(&f, "read", NONE), ALLOW);
    assert_eq!(run(&f, "write", NONE), ALLOW);
    assert_eq!(run_on(&f, NATIVE.audit, 9999, NONE), ALLOW);
}

#[test]
fn default_errno_ret_and_allow_list() {
    let f = compiled(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
        ]}),
    );
    assert_eq!(run(&f, "read", NONE), ALLOW);
    assert_eq!(run(&f, "exit_group", NONE), ALLOW);
    assert_eq!(run(&f, "mkdirat", NONE), libc::SECCOMP_RET_ERRNO | 38);
    assert!(
        err(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}))
            .contains("defaultAction")
    );
}

#[test]
fn every_operator() {
    let cases = [
        (
            "SCMP_CMP_NE",
            5,
            None,
            [(5, false), (4, true), (1 << 40, true)],
        ),
        (
            "SCMP_CMP_LT",
            5,
            None,
            [(4, true), (5, false), (u64::MAX, false)],
        ),
        ("SCMP_CMP_LE", 5, None, [(5, true), (6, false), (0, true)]),
        (
            "SCMP_CMP_EQ",
            0xffff_ffff,
            None,
            [(0xffff_ffff, true), (0x1_ffff_ffff, false), (0, false)],
        ),
        (
            "SCMP_CMP_GE",
            1 << 33,
            None,
            [(1 << 33, true), ((1 << 33) - 1, false), (u64::MAX, true)],
        ),
        (
            "SCMP_CMP_GT",
            5,
            None,
            [(6, true), (5, false), (1 << 32, true)],
        ),
        (
            "SCMP_CMP_MASKED_EQ",
            0xf0,
            Some(0x20),
            [(0x2f, true), (0x30, false), (0x120, true)],
        ),
    ];
    for (op, value, two, checks) in cases {
        let mut arg = json!({"index": 2, "value": value, "op": op});
        if let Some(t) = two {
            arg["valueTwo"] = json!(t);
        }
        let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "args": [arg]}]}));
        for (v, denied) in checks {
            let got = run(&f, "ioctl", [0, 0, v, 0, 0, 0]);
            assert_eq!(
                got,
                if denied { EPERM } else { ALLOW },
                "{op} {value:#x} against {v:#x}"
            );
            // Another argument slot with the same value must not match.
            assert_eq!(
                run(&f, "ioctl", [v, v, 7, v, v, v]) == EPERM,
                checks_at(op, value, two, 7)
            );
        }
    }
}

fn checks_at(op: &str, value: u64, two: Option<u64>, v: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => v != value,
        "SCMP_CMP_LT" => v < value,
        "SCMP_CMP_LE" => v <= value,
        "SCMP_CMP_EQ" => v == value,
        "SCMP_CMP_GE" => v >= value,
        "SCMP_CMP_GT" => v > value,
        _ => v & value == two.unwrap_or(0) & value,
    }
}

#[test]
fn conditions_and_entries_or() {
    // Two conditions in one entry AND; two entries for one syscall OR.
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
         "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]},
    ]}));
    assert_eq!(run(&f, "socket", [1, 2, 0, 0, 0, 0]), EPERM);
    assert_eq!(run(&f, "socket", [1, 1, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run(&f, "socket", [2, 2, 0, 0, 0, 0]), ALLOW);
    assert_eq!(
        run(&f, "socket", [40, 9, 0, 0, 0, 0]),
        libc::SECCOMP_RET_ERRNO | 97
    );
    assert_eq!(run(&f, "bind", [1, 2, 0, 0, 0, 0]), ALLOW);
}

#[test]
fn grouping_rules_per_syscall() {
    let p = profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["read", "personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["read"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
    ]}));
    let (sec, unknown) = native_groups(&p, EPERM);
    let groups = sec.groups;
    assert!(unknown.is_empty());
    assert_eq!(
        groups.len(),
        2,
        "write's entry matches the default and is dropped"
    );
    let pers = &groups[&nr("personality")];
    assert_eq!((pers.conditional.len(), pers.unconditional), (2, None));
    let read = &groups[&nr("read")];
    assert_eq!(
        (read.conditional.len(), read.unconditional),
        (0, Some(ALLOW)),
        "first unconditional entry wins, over the conditional ones too"
    );

    let f = compile(&p).unwrap().unwrap();
    assert_eq!(run(&f, "personality", [0; 6]), ALLOW);
    assert_eq!(run(&f, "personality", [8, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run(&f, "personality", [9, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(run(&f, "read", [3, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run(&f, "write", NONE), EPERM);
}

#[test]
fn unconditional_overrides_conditional_and_mixed_actions() {
    // libseccomp's precedence, seen through runc 1.1.5: an entry without args overrides the
    // syscall's entries with args, before or after them; one whose action is the default is
    // dropped and does not.
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["kill", "tkill"], "action": "SCMP_ACT_TRAP", "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["tkill"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["tgkill"], "action": "SCMP_ACT_TRAP", "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["tgkill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
        {"names": ["gettid"], "action": "SCMP_ACT_TRACE", "errnoRet": 3},
    ]}));
    check_layout(&f);
    assert_eq!(run(&f, "kill", [1, 9, 0, 0, 0, 0]), EPERM);
    assert_eq!(run(&f, "kill", [1, 15, 0, 0, 0, 0]), EPERM);
    assert_eq!(run(&f, "tgkill", [1, 1, 9, 0, 0, 0]), errno(38));
    assert_eq!(run(&f, "tkill", [1, 9, 0, 0, 0, 0]), libc::SECCOMP_RET_TRAP);
    assert_eq!(run(&f, "tkill", [1, 8, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run(&f, "getpid", NONE), libc::SECCOMP_RET_LOG);
    assert_eq!(run(&f, "gettid", NONE), libc::SECCOMP_RET_TRACE | 3);
}

#[test]
fn unknown_syscalls_are_skipped() {
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["no_such_call", "read", "from_the_future"], "action": "SCMP_ACT_ALLOW"},
    ]}));
    assert_eq!(run(&f, "read", NONE), ALLOW);
    let p = profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["no_such_call", "read", "from_the_future"], "action": "SCMP_ACT_ALLOW"}]}));
    let (sec, unknown) = native_groups(&p, EPERM);
    assert_eq!(unknown, ["no_such_call", "from_the_future"]);
    assert_eq!(sec.groups.keys().copied().collect::<Vec<_>>(), [nr("read")]);
    let none = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_call"], "action": "SCMP_ACT_ERRNO"}]}),
    ));
    assert!(none.unwrap().is_none(), "nothing left to enforce");
}

#[test]
fn malformed_profiles_are_refused() {
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]},
    ]}));
    assert_eq!(
        e,
        "linux.seccomp.syscalls[1] (mkdir, mkdirat): args[0]: index 6 is out of range: syscalls take arguments 0 to 5"
    );
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert_eq!(e, "linux.seccomp.syscalls[0] (): names must not be empty");
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}),
    );
    assert!(
        e.starts_with("linux.seccomp.syscalls[0] (read): errnoRet is only valid"),
        "{e}"
    );
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
    );
    assert!(
        e.contains("WAIT_KILLABLE_RECV only applies to SCMP_ACT_NOTIFY rules"),
        "{e}"
    );
}

fn notify_profile(rules: serde_json::Value) -> serde_json::Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
           "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": rules})
}

const NOTIF: u32 = libc::SECCOMP_RET_USER_NOTIF;

#[test]
fn notify_rules_return_user_notif_and_ask_for_a_listener() {
    let f = compiled(notify_profile(json!([
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO"},
        // notified only for a mode with the setuid bit
        {"names": ["fchmodat"], "action": "SCMP_ACT_NOTIFY",
         "args": [{"index": 2, "value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]}
    ])));
    assert!(f.notifies());
    assert_eq!(f.flags, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER);
    assert_eq!(run(&f, "mkdir", NONE), NOTIF);
    assert_eq!(run(&f, "mkdirat", NONE), NOTIF);
    assert_eq!(run(&f, "chmod", NONE), EPERM);
    assert_eq!(run(&f, "fchmodat", [0, 0, 0o4755, 0, 0, 0]), NOTIF);
    assert_eq!(run(&f, "fchmodat", [0, 0, 0o755, 0, 0, 0]), ALLOW);
    assert_eq!(run(&f, "write", NONE), ALLOW);
    assert_eq!(run(&f, "read", NONE), ALLOW);
    // every listed ABI in its own numbers
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(run_on(&f, AUDIT_ARCH_I386, i386_nr("mkdir"), NONE), NOTIF);
        assert_eq!(run_on(&f, AUDIT_ARCH_I386, i386_nr("write"), NONE), ALLOW);
        let x32 = syscalls::x32("mkdir").unwrap() | X32_SYSCALL_BIT;
        assert_eq!(run_on(&f, AUDIT_ARCH_X86_64, x32, NONE), NOTIF);
    }
    // Without a notify rule there is no listener, whatever listenerPath says (it is ignored).
    let f = compiled(notify_profile(
        json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]),
    ));
    assert!(!f.notifies());
    assert_eq!(f.flags, 0);
    assert_eq!(run(&f, "mkdir", NONE), EPERM);
}

#[test]
fn notify_flags() {
    let mut p = notify_profile(json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]));
    p["flags"] = json!([
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    ]);
    let f = compiled(p);
    // TSYNC's failure would come back as a thread id, where the listener's fd is expected.
    assert_eq!(
        f.flags,
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
            | libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
            | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    );
}

#[test]
fn notify_profiles_refused() {
    let mut p = notify_profile(json!([{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]));
    let e = err(p.clone());
    assert!(
        e.starts_with("linux.seccomp.syscalls[0] (read, write): SCMP_ACT_NOTIFY cannot be used for the write syscall"),
        "{e}"
    );
    // also when the rule has conditions, and whatever the other entries say
    p["syscalls"] = json!([
        {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_NOTIFY", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}
    ]);
    assert!(err(p.clone()).contains("cannot be used for the write syscall"));
    // writev, read and the rest are the agent's to answer
    p["syscalls"] = json!([{"names": ["writev", "read", "close", "futex", "execve"], "action": "SCMP_ACT_NOTIFY"}]);
    assert!(compiled(p.clone()).notifies());

    let mut d = notify_profile(json!([]));
    d["defaultAction"] = json!("SCMP_ACT_NOTIFY");
    assert_eq!(
        err(d),
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action"
    );

    let rules = json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]);
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    assert!(
        e.starts_with("linux.seccomp: SCMP_ACT_NOTIFY rules need linux.seccomp.listenerPath"),
        "{e}"
    );
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules, "listenerPath": ""}));
    assert!(e.starts_with("linux.seccomp.listenerPath is empty"), "{e}");
}

#[cfg(target_arch = "x86_64")]
fn i386_nr(name: &str) -> u32 {
    syscalls::i386(name).unwrap()
}

#[cfg(target_arch = "x86_64")]
fn x32_nr(name: &str) -> u32 {
    syscalls::x32(name).unwrap() | X32_SYSCALL_BIT
}

#[cfg(target_arch = "x86_64")]
#[test]
fn architectures() {
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]}),
    );
    assert_eq!(
        e,
        "linux.seccomp.architectures [SCMP_ARCH_AARCH64, SCMP_ARCH_ARM] lists no architecture this host runs (it is SCMP_ARCH_X86_64)"
    );
    let deny = json!([{"names": ["mkdir", "getpid"], "action": "SCMP_ACT_ERRNO"}]);
    // Native only: other ABIs are killed, x32 numbers included.
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": deny}));
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, i386_nr("mkdir"), NONE), kill);
    assert_eq!(run_on(&f, AUDIT_ARCH_X86_64, x32_nr("mkdir"), NONE), kill);
    assert_eq!(run_on(&f, 0xc000_00b7, 34, NONE), kill, "aarch64");
    // Listed compat ABIs get the rules in their own numbers, as libseccomp does.
    let f = compiled(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": deny}),
    );
    for (arch, nr) in [
        (AUDIT_ARCH_I386, i386_nr("getpid")),
        (AUDIT_ARCH_I386, i386_nr("mkdir")),
        (AUDIT_ARCH_X86_64, x32_nr("getpid")),
        (AUDIT_ARCH_X86_64, x32_nr("mkdir")),
        (AUDIT_ARCH_X86_64, nr("mkdir")),
    ] {
        assert_eq!(run_on(&f, arch, nr, NONE), EPERM, "{arch:#x} {nr:#x}");
    }
    assert_eq!(
        run_on(&f, AUDIT_ARCH_I386, nr("mkdir"), NONE),
        ALLOW,
        "83 is i386's symlink"
    );
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, i386_nr("read"), NONE), ALLOW);
    assert_eq!(run_on(&f, AUDIT_ARCH_X86_64, x32_nr("read"), NONE), ALLOW);
    assert_eq!(run(&f, "read", NONE), ALLOW);
    // An allow list: x86 alone listed leaves x32 killed.
    let f = compiled(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["read", "mkdir"], "action": "SCMP_ACT_ALLOW"}]}),
    );
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, i386_nr("read"), NONE), ALLOW);
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, i386_nr("mkdir"), NONE), ALLOW);
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, i386_nr("getpid"), NONE), EPERM);
    assert_eq!(run_on(&f, AUDIT_ARCH_X86_64, x32_nr("read"), NONE), kill);
    assert_eq!(run(&f, "read", NONE), ALLOW);
    // A name one ABI lacks is skipped there only.
    let f = compiled(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["epoll_ctl_old", "socketcall"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert_eq!(run(&f, "epoll_ctl_old", NONE), EPERM);
    assert_eq!(
        run_on(&f, AUDIT_ARCH_I386, i386_nr("socketcall"), NONE),
        EPERM
    );
    assert_eq!(
        run_on(&f, AUDIT_ARCH_I386, nr("epoll_ctl_old"), NONE),
        ALLOW
    );
}

/// 32-bit ABIs compare the low half of an argument only, as libseccomp does there.
#[cfg(target_arch = "x86_64")]
#[test]
fn compat_arguments_compare_32_bits() {
    let f = compiled(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 0x1_0000_0008u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_GT"}]},
        ]}),
    );
    let pers = i386_nr("personality");
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, pers, [8, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, pers, [9, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run(&f, "personality", [8, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(
        run(&f, "personality", [0x1_0000_0008, 0, 0, 0, 0, 0]),
        EPERM
    );
    let kill = i386_nr("kill");
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, kill, [0, 6, 0, 0, 0, 0]), EPERM);
    assert_eq!(
        run_on(&f, AUDIT_ARCH_I386, kill, [0, 1 << 32, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(run(&f, "kill", [0, 1 << 32, 0, 0, 0, 0]), EPERM);
}

#[test]
fn flags() {
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}));
    assert_eq!(
        f.flags,
        libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
    );
    assert_eq!(run(&f, "read", NONE), ALLOW);
}

/// Docker's default profile shape: a long allow list, ERRNO default, arg rules on clone,
/// personality and socket, clone3 answering ENOSYS.
#[cfg(target_arch = "x86_64")]
fn docker_like() -> serde_json::Value {
    let names: Vec<&str> = syscalls::LIBC
        .iter()
        .map(|(n, _)| &n[4..])
        .filter(|n| {
            ![
                "clone",
                "clone3",
                "personality",
                "socket",
                "reboot",
                "mount",
                "kexec_load",
                "ptrace",
            ]
            .contains(n)
        })
        .collect();
    json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": names, "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2_114_060_288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
    ]})
}

#[cfg(target_arch = "x86_64")]
#[test]
fn docker_profile_shape() {
    let p = profile(docker_like());
    let t = std::time::Instant::now();
    let f = compile(&p).unwrap().unwrap();
    let took = t.elapsed();
    // Three ABIs of ~360 syscalls each; the kernel takes 4096.
    assert!(f.prog.len() < 1400, "{} instructions", f.prog.len());
    assert!(
        took < std::time::Duration::from_millis(50),
        "compile took {took:?}"
    );
    assert_eq!(run(&f, "read", NONE), ALLOW);
    assert_eq!(run(&f, "mkdirat", NONE), ALLOW);
    assert_eq!(run(&f, "reboot", NONE), EPERM);
    assert_eq!(run(&f, "clone3", NONE), libc::SECCOMP_RET_ERRNO | 38);
    let sigchld = libc::SIGCHLD as u64;
    assert_eq!(
        run(
            &f,
            "clone",
            [sigchld | libc::CLONE_VM as u64, 0, 0, 0, 0, 0]
        ),
        ALLOW
    );
    assert_eq!(
        run(
            &f,
            "clone",
            [sigchld | libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]
        ),
        EPERM
    );
    assert_eq!(run(&f, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run(&f, "personality", [1, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(
        run(&f, "socket", [libc::AF_UNIX as u64, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(run(&f, "socket", [40, 0, 0, 0, 0, 0]), EPERM);
    // The compat ABIs run the same profile in their own numbers.
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, i386_nr("read"), NONE), ALLOW);
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, i386_nr("reboot"), NONE), EPERM);
    assert_eq!(run_on(&f, AUDIT_ARCH_X86_64, x32_nr("read"), NONE), ALLOW);
    assert_eq!(run_on(&f, AUDIT_ARCH_X86_64, x32_nr("reboot"), NONE), EPERM);
    let pers = i386_nr("personality");
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, pers, [8, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, pers, [1, 0, 0, 0, 0, 0]), EPERM);
    // clone3 is named (answering ENOSYS itself): newer syscalls answer ENOSYS, per ABI.
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    assert_eq!(run_on(&f, AUDIT_ARCH_X86_64, 1000, NONE), enosys);
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, 1000, NONE), enosys);
    assert_eq!(
        run_on(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 1000, NONE),
        enosys
    );
}

#[test]
fn can_install_late() {
    let proc_of = |v: serde_json::Value| serde_json::from_value::<Process>(v).unwrap();
    let base = json!({"cwd": "/", "user": {"uid": 0, "gid": 0}});
    let mut p = base.clone();
    assert!(
        can_install_after_user_switch(&proc_of(p.clone())),
        "root keeps its capabilities"
    );
    p["user"]["uid"] = json!(1000);
    assert!(!can_install_after_user_switch(&proc_of(p.clone())));
    p["noNewPrivileges"] = json!(true);
    assert!(can_install_after_user_switch(&proc_of(p.clone())));
    let mut p = base;
    p["capabilities"] =
        json!({"effective": ["CAP_CHOWN"], "bounding": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]});
    assert!(!can_install_after_user_switch(&proc_of(p.clone())));
    p["capabilities"]["effective"] = json!(["CAP_SYS_ADMIN"]);
    assert!(can_install_after_user_switch(&proc_of(p)));
}

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

/// Every jump lands inside the program, and every path ends in a return.
fn check_layout(f: &Filter) {
    let n = f.prog.len();
    assert!(n <= MAX_INSNS);
    assert_eq!(u32::from(f.prog[n - 1].code), libc::BPF_RET | libc::BPF_K);
    for (i, ins) in f.prog.iter().enumerate() {
        let code = u32::from(ins.code);
        if code & 0x07 != libc::BPF_JMP {
            continue;
        }
        let targets: Vec<usize> = if code == libc::BPF_JMP | libc::BPF_JA {
            vec![i + 1 + ins.k as usize]
        } else {
            vec![i + 1 + usize::from(ins.jt), i + 1 + usize::from(ins.jf)]
        };
        for t in targets {
            assert!(t < n, "jump at {i} to {t} past the end ({n})");
        }
    }
}

/// Issue 1: several syscalls with argument rules, each rule with its own errno. The old layout
/// only ever reached the first syscall's rules; everything after fell back to a default.
#[test]
fn every_conditional_rule_returns_its_own_errno() {
    for (default, dflt) in [("SCMP_ACT_ALLOW", ALLOW), ("SCMP_ACT_ERRNO", EPERM)] {
        let f = compiled(json!({"defaultAction": default, "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["process_vm_readv"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EINVAL,
             "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"}]},
            {"names": ["process_vm_readv"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOANO,
             "args": [{"index": 0, "value": 1337, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EBADE,
             "args": [{"index": 0, "value": 0xdead, "op": "SCMP_CMP_EQ"}]},
            {"names": ["process_vm_writev"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
             "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"}]},
            {"names": ["process_vm_writev"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOTTY,
             "args": [{"index": 2, "value": 7, "op": "SCMP_CMP_GE"}]},
        ]}));
        check_layout(&f);
        let arg0 = |v: u64| [v, 0, 0, 0, 0, 0];
        assert_eq!(run(&f, "process_vm_readv", arg0(100)), errno(libc::EINVAL));
        assert_eq!(run(&f, "process_vm_readv", arg0(1337)), errno(libc::ENOANO));
        assert_eq!(run(&f, "process_vm_readv", arg0(5)), dflt);
        assert_eq!(run(&f, "personality", arg0(0xdead)), errno(libc::EBADE));
        assert_eq!(run(&f, "personality", arg0(0)), dflt);
        assert_eq!(run(&f, "process_vm_writev", arg0(100)), errno(libc::EXDEV));
        assert_eq!(
            run(&f, "process_vm_writev", [1, 0, 9, 0, 0, 0]),
            errno(libc::ENOTTY)
        );
        assert_eq!(run(&f, "process_vm_writev", arg0(5)), dflt);
        // Syscalls without rules are not caught by another syscall's fallback.
        assert_eq!(run(&f, "read", NONE), ALLOW);
        assert_eq!(run(&f, "mkdirat", NONE), dflt);
    }
}

/// More groups and runs than a conditional jump can span: each still reaches its own action.
#[test]
fn long_profiles_reach_every_rule() {
    let names: Vec<&str> = syscalls::LIBC.iter().map(|(n, _)| &n[4..]).collect();
    let (cond, plain) = names.split_at(260);
    let mut rules = vec![json!({"names": plain, "action": "SCMP_ACT_ALLOW"})];
    for (i, n) in cond.iter().enumerate() {
        rules.push(
            json!({"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": 1000 + i,
            "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"}]}),
        );
        rules.push(
            json!({"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": 2000 + i,
            "args": [{"index": 1, "value": i, "op": "SCMP_CMP_NE"}]}),
        );
    }
    assert!(cond.len() > 255);
    let f = compiled(json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": rules}));
    check_layout(&f);
    for n in plain {
        assert_eq!(run(&f, n, NONE), ALLOW, "{n}");
    }
    for (i, n) in cond.iter().enumerate() {
        let i = i as u64;
        let got = run(&f, n, [i, i, 0, 0, 0, 0]);
        assert_eq!(got, errno(1000 + i as i32), "{n}");
        let got = run(&f, n, [i + 1, i + 1, 0, 0, 0, 0]);
        assert_eq!(got, errno(2000 + i as i32), "{n}");
        let got = run(&f, n, [i + 1, i, 0, 0, 0, 0]);
        assert_eq!(got, libc::SECCOMP_RET_KILL_PROCESS, "{n}");
    }
}

/// Six conditions in one rule, one per argument, all ANDed.
#[test]
fn six_conditions_in_one_rule() {
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["mmap"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 2, "op": "SCMP_CMP_NE"},
        {"index": 2, "value": 3, "op": "SCMP_CMP_GT"},
        {"index": 3, "value": 4, "op": "SCMP_CMP_LE"},
        {"index": 4, "value": 0xff00, "valueTwo": 0x1200, "op": "SCMP_CMP_MASKED_EQ"},
        {"index": 5, "value": 1u64 << 33, "op": "SCMP_CMP_GE"},
    ]}]}));
    check_layout(&f);
    let hit = [1, 0, 4, 4, 0x12ab, 1 << 33];
    assert_eq!(run(&f, "mmap", hit), EPERM);
    for i in 0..6 {
        let mut miss = hit;
        miss[i] = [2, 2, 3, 5, 0x13ab, (1 << 33) - 1][i];
        assert_eq!(run(&f, "mmap", miss), ALLOW, "argument {i}");
    }
}

const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// Issue 2, runc's rule: numbers above every syscall the profile names answer ENOSYS.
#[test]
fn newer_syscalls_answer_enosys() {
    let allow = |extra: serde_json::Value| {
        let mut p = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "write", "close_range", "mkdirat"], "action": "SCMP_ACT_ALLOW"},
        ]});
        if let Some(o) = extra.as_object() {
            p.as_object_mut().unwrap().extend(o.clone());
        }
        compiled(p)
    };
    let f = allow(json!({}));
    check_layout(&f);
    assert_eq!(run(&f, "close_range", NONE), ALLOW);
    assert_eq!(run(&f, "openat2", NONE), ENOSYS);
    assert_eq!(run(&f, "faccessat2", NONE), ENOSYS);
    assert_eq!(run_on(&f, NATIVE.audit, 1000, NONE), ENOSYS);
    assert_eq!(run_on(&f, NATIVE.audit, X32_SYSCALL_BIT - 1, NONE), ENOSYS);
    assert_eq!(
        run(&f, "reboot", NONE),
        EPERM,
        "older than the profile: the default"
    );
    assert_eq!(run(&f, "mkdirat", NONE), ALLOW);

    // An entry whose action is the default still names its syscall.
    let mut p = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "close_range"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["futex_waitv"], "action": "SCMP_ACT_ERRNO"},
    ]});
    let f = compiled(p.clone());
    assert_eq!(run(&f, "faccessat2", NONE), EPERM);
    assert_eq!(run(&f, "futex_waitv", NONE), EPERM);
    assert_eq!(run(&f, "set_mempolicy_home_node", NONE), ENOSYS);
    // defaultErrnoRet changes what older syscalls get, not the rule.
    p["defaultErrnoRet"] = json!(libc::EACCES);
    let f = compiled(p);
    assert_eq!(run(&f, "faccessat2", NONE), errno(libc::EACCES));
    assert_eq!(run(&f, "set_mempolicy_home_node", NONE), ENOSYS);
}

/// The rule applies under every default except allow, log and trace.
#[test]
fn enosys_rule_follows_the_default_action() {
    let names = json!(["read", "write", "close_range"]);
    for (default, applies) in [
        ("SCMP_ACT_ERRNO", true),
        ("SCMP_ACT_KILL", true),
        ("SCMP_ACT_KILL_THREAD", true),
        ("SCMP_ACT_KILL_PROCESS", true),
        ("SCMP_ACT_TRAP", true),
        ("SCMP_ACT_ALLOW", false),
        ("SCMP_ACT_LOG", false),
        ("SCMP_ACT_TRACE", false),
    ] {
        let act = if default == "SCMP_ACT_ALLOW" {
            "SCMP_ACT_ERRNO"
        } else {
            "SCMP_ACT_ALLOW"
        };
        let f = compiled(
            json!({"defaultAction": default, "syscalls": [{"names": names, "action": act}]}),
        );
        let d = action(serde_json::from_value(json!(default)).unwrap(), None).unwrap();
        let want = if applies { ENOSYS } else { d };
        assert_eq!(run(&f, "openat2", NONE), want, "{default}");
        assert_eq!(run_on(&f, NATIVE.audit, 1000, NONE), want, "{default}");
        assert_eq!(run(&f, "mkdirat", NONE), d, "{default}: older syscalls");
    }
    // runc's quirk: no ENOSYS rule for an ABI whose largest named number is 0.
    #[cfg(target_arch = "x86_64")]
    {
        let f = compiled(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
        );
        assert_eq!(run_on(&f, NATIVE.audit, 1000, NONE), EPERM);
    }
}

/// Each ABI has its own largest number; x32 unlisted is killed, not ENOSYS.
#[cfg(target_arch = "x86_64")]
#[test]
fn enosys_rule_per_architecture() {
    let names = json!(["read", "write", "socket"]);
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}));
    check_layout(&f);
    // socket is 41 natively, 359 on i386, 41 | bit on x32.
    assert_eq!(run(&f, "socket", NONE), ALLOW);
    assert_eq!(run_on(&f, NATIVE.audit, 200, NONE), ENOSYS);
    assert_eq!(run_on(&f, NATIVE.audit, 40, NONE), EPERM);
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, 359, NONE), ALLOW);
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, 200, NONE), EPERM);
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, 360, NONE), ENOSYS);
    assert_eq!(
        run_on(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 41, NONE),
        ALLOW
    );
    assert_eq!(
        run_on(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 40, NONE),
        EPERM
    );
    assert_eq!(
        run_on(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 42, NONE),
        ENOSYS
    );
    // No architectures listed: the native ABI still gets the rule (runc 1.1.15 and later).
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}));
    assert_eq!(run_on(&f, NATIVE.audit, 200, NONE), ENOSYS);
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    assert_eq!(
        run_on(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 42, NONE),
        kill
    );
    assert_eq!(run_on(&f, AUDIT_ARCH_I386, 360, NONE), kill);
}
