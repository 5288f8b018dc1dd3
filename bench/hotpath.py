#!/usr/bin/env python3
"""Lists the functions rt runs for the common commands, in the order it first runs them, for the
linker to place together (build.rs passes the list to lld as --symbol-ordering-file).

Why: the kernel maps file pages around every page fault (64 KiB of them), so the resident size of
an rt process is set less by how much code it runs than by how many 64 KiB stretches of the binary
that code is scattered over. Packing the functions a container's life needs into one stretch
keeps the rest of the binary (image pulls, TLS, decompression, help texts) unmapped.

How: every function entry of rt gets a one-shot breakpoint in
each traced rt process (addresses from the link map), /proc/PID/mem patched in one write; a hit is recorded, the byte restored,
the process continued. Children are followed through clone/fork, a re-exec'd rt init is patched
again, and a process that execs anything else (the container's program) is let go.

Usage (as root): bench/hotpath.py --rt RT --map RT_LINK_MAP --rootfs DIR --out FILE
`bench/hotpath.sh` builds rt and the rootfs and writes bench/hot-functions.txt.
"""
import argparse, ctypes, json, os, re, signal, subprocess, sys, tempfile

PTRACE_TRACEME, PTRACE_CONT, PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_DETACH = 0, 7, 12, 13, 17
PTRACE_SETOPTIONS = 0x4200
OPTIONS = 0x2 | 0x4 | 0x8 | 0x10  # trace fork, vfork, clone, exec
EVENT_EXEC = 4
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


class Regs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_ulonglong) for n in (
        "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss "
        "fs_base gs_base ds es fs gs").split()]


def ptrace(req, pid, addr=0, data=0):
    if libc.ptrace(req, pid, addr, data) < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"ptrace({req}, {pid}): {os.strerror(e)}")


def functions(link_map):
    """Address -> names of every symbol in the .text of lld's link map (rt itself is stripped).
    Map lines are VMA LMA SIZE ALIGN, then an output section, an input section (8 columns in)
    or a symbol (16 columns in)."""
    line_re = re.compile(r"\s*([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+\d+ ( *)(\S+)")
    funcs, section = {}, None
    for line in open(link_map):
        m = line_re.match(line)
        if not m:
            continue
        indent = len(m.group(2))
        if indent == 0:
            section = m.group(3)
        elif indent == 16 and section == ".text":
            funcs.setdefault(int(m.group(1), 16), []).append(m.group(3))
    return funcs


def text_segment(rt):
    """(vaddr, bytes) of the executable PT_LOAD of a non-PIE rt."""
    out = subprocess.run(["readelf", "-lW", rt], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        p = line.split()
        if p and p[0] == "LOAD" and "E" in p[6:-1]:
            off, vaddr, size = int(p[1], 16), int(p[2], 16), int(p[4], 16)
            with open(rt, "rb") as f:
                f.seek(off)
                return vaddr, f.read(size)
    raise SystemExit("hotpath: no executable segment in " + rt)


class Tracer:
    def __init__(self, rt, link_map):
        self.rt = rt
        self.funcs = functions(link_map)
        self.base, self.text = text_segment(rt)
        self.funcs = {a: n for a, n in self.funcs.items() if self.base <= a < self.base + len(self.text)}
        self.head = open(rt, "rb").read(4096)
        self.hit = {}  # address -> order of first hit

    def patch(self, pid):
        """Breakpoints on every function not yet hit."""
        mem = bytearray(self.text)
        for a in self.funcs:
            if a not in self.hit:
                mem[a - self.base] = 0xCC
        with open(f"/proc/{pid}/mem", "r+b", buffering=0) as m:
            m.seek(self.base)
            m.write(mem)

    def is_rt(self, pid):
        try:
            with open(f"/proc/{pid}/exe", "rb") as f:
                return f.read(4096) == self.head
        except OSError:
            return False

    def on_trap(self, pid):
        regs = Regs()
        ptrace(PTRACE_GETREGS, pid, 0, ctypes.addressof(regs))
        a = regs.rip - 1
        if a not in self.funcs:
            return False
        self.hit.setdefault(a, len(self.hit))
        with open(f"/proc/{pid}/mem", "r+b", buffering=0) as m:
            m.seek(a)
            m.write(self.text[a - self.base:a - self.base + 1])
        regs.rip = a
        ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(regs))
        return True

    def run(self, argv, cwd=None):
        """Runs argv (an rt command) to completion under the tracer; returns its exit status."""
        pid = os.fork()
        if pid == 0:
            try:
                if cwd:
                    os.chdir(cwd)
                null = os.open("/dev/null", os.O_RDWR)
                for fd in (0, 1):
                    os.dup2(null, fd)
                ptrace(PTRACE_TRACEME, 0)
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        _, st = os.waitpid(pid, WALL)  # stopped at the exec
        ptrace(PTRACE_SETOPTIONS, pid, 0, OPTIONS)
        self.patch(pid)
        ptrace(PTRACE_CONT, pid, 0, 0)
        # Processes the command leaves behind (a created container's init) stay traced; their
        # events keep coming while later commands run.
        while True:
            p, st = os.waitpid(-1, WALL)
            if os.WIFEXITED(st) or os.WIFSIGNALED(st):
                if p == pid:
                    return os.waitstatus_to_exitcode(st)
                continue
            sig, event = os.WSTOPSIG(st), st >> 16
            deliver = 0
            if event == EVENT_EXEC:
                if not self.is_rt(p):
                    ptrace(PTRACE_DETACH, p, 0, 0)
                    continue
                self.patch(p)
            elif event:
                pass  # fork/clone: the new child arrives with its own stop
            elif sig == signal.SIGTRAP:
                self.on_trap(p)
            elif sig != signal.SIGSTOP:
                deliver = sig
            try:
                ptrace(PTRACE_CONT, p, 0, deliver)
            except OSError:
                pass  # killed meanwhile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rt", required=True)
    ap.add_argument("--map", required=True, help="lld's -Map output of the link that made --rt")
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t = Tracer(a.rt, a.map)
    work = tempfile.mkdtemp(prefix="rt-hotpath.")
    root = os.path.join(work, "state")
    bundle = os.path.join(work, "bundle")
    os.makedirs(bundle)
    os.symlink(os.path.abspath(a.rootfs), os.path.join(bundle, "rootfs"))
    subprocess.run([a.rt, "spec", "--bundle", bundle], check=True)
    cfg = json.load(open(os.path.join(bundle, "config.json")))
    cfg["process"]["terminal"] = False

    def config(args):
        cfg["process"]["args"] = args
        json.dump(cfg, open(os.path.join(bundle, "config.json"), "w"))

    def rt(*args):
        st = t.run([a.rt, "--root", root, *args])
        if st != 0:
            raise SystemExit(f"hotpath: rt {' '.join(args)} exited {st}")

    # A container's life, most common first: the order is the layout.
    config(["sleep", "60"])
    rt("create", "--bundle", bundle, "c")
    rt("start", "c")
    rt("state", "c")
    rt("exec", "c", "true")
    rt("ps", "c")
    rt("kill", "c", "KILL")
    rt("delete", "-f", "c")
    # Engines (Docker, containerd) always send a seccomp profile.
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]}
    config(["true"])
    rt("run", "--bundle", bundle, "r")
    rt("list")
    subprocess.run(["rm", "-rf", work])

    order = sorted(t.hit, key=t.hit.get)
    with open(a.out, "w") as f:
        for addr in order:
            for name in t.funcs[addr]:
                f.write(name + "\n")
    size = sum(1 for _ in order)
    print(f"hotpath: {size} of {len(t.funcs)} functions run; written to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
