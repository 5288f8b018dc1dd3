//! What std's runtime would do before `main`, minus what rt does not need.
//!
//! rt is built with `#![no_main]`: std's start-up reads /proc/self/maps to set up a stack
//! overflow handler (through glibc's pthread_getattr_np and its scanf), which costs every rt
//! process about 70 µs and 250 KiB of touched pages, and rt starts two processes per exec.
//! A stack overflow is then a plain SIGSEGV instead of a message. The two parts of std's
//! start-up rt relies on are kept here.

/// Makes fds 0-2 valid and ignores SIGPIPE, as std's start-up does.
pub fn prepare() {
    open_missing_stdio();
    // Writes to a closed pipe become EPIPE errors, handled where they happen (see `out!`);
    // init restores the default before exec'ing the user's process.
    // SAFETY: installs SIG_IGN, no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// A caller that closed stdin, stdout or stderr would otherwise see the next file rt opens
/// take that number, and rt's output (or a container's stdio) land in it.
fn open_missing_stdio() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll on a local array of three pollfds, zero timeout.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // open returns the lowest free number, which is this one: the lower ones are valid.
        // SAFETY: a NUL-terminated literal path; the fd is deliberately never closed.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if fd != p.fd {
            std::process::abort();
        }
    }
}
