//! The user's own systemd, which a rootless caller's `--systemd-cgroup` talks to, as runc does:
//! reached through the user's session bus, which knows the caller by its uid on the host. Root
//! in a user namespace (podman's way of running the runtime) has another uid there, so it
//! authenticates as the bus's owner: the uid whose `user-UID.slice` the bus daemon runs in,
//! which is what `busctl --user status` prints as OwnerUID= and what runc asks busctl for. rt
//! reads it itself (the daemon's pid from the socket, its cgroup from /proc): no busctl needed.
use anyhow::{bail, Context, Result};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::path::PathBuf;

/// A unix transport of a D-Bus address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Path(p) => write!(f, "unix:path={}", p.display()),
            Address::Abstract(a) => write!(f, "unix:abstract={}", String::from_utf8_lossy(a)),
        }
    }
}

impl Address {
    pub fn connect(&self) -> Result<UnixStream> {
        let s = match self {
            Address::Path(p) => UnixStream::connect(p),
            Address::Abstract(name) => {
                SocketAddr::from_abstract_name(name).and_then(|a| UnixStream::connect_addr(&a))
            }
        };
        s.with_context(|| format!("connecting to D-Bus at {self}"))
    }
}

/// The first unix transport of a D-Bus server address list (`unix:path=/run/user/1000/bus`,
/// `unix:abstract=/tmp/dbus-X,guid=…;tcp:…`); values may be %-escaped.
pub fn parse_address(list: &str) -> Option<Address> {
    list.split(';').find_map(|a| {
        let keys = a.strip_prefix("unix:")?;
        keys.split(',').find_map(|kv| match kv.split_once('=')? {
            ("path", v) => Some(Address::Path(PathBuf::from(unescape(v)?))),
            ("abstract", v) => Some(Address::Abstract(unescape_bytes(v)?)),
            _ => None,
        })
    })
}

fn unescape_bytes(v: &str) -> Option<Vec<u8>> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn unescape(v: &str) -> Option<String> {
    String::from_utf8(unescape_bytes(v)?).ok()
}

/// The user's session bus, where runc looks for it: `$DBUS_SESSION_BUS_ADDRESS`, else
/// `$XDG_RUNTIME_DIR/bus` when it exists.
pub fn session_bus() -> Result<Address> {
    if let Some(a) = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty())
    {
        return parse_address(&a)
            .with_context(|| format!("$DBUS_SESSION_BUS_ADDRESS {a:?} names no unix socket"));
    }
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        let bus = PathBuf::from(xdg).join("bus");
        if bus.exists() {
            return Ok(Address::Path(bus));
        }
    }
    bail!(
        "no user session bus: neither $DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR/bus \
         (rootless --systemd-cgroup needs the user's systemd and its bus: a login session or \
         `loginctl enable-linger`, and Debian's dbus-user-session)"
    )
}

/// The uid the bus on `sock` knows this process by, for EXTERNAL authentication: the real uid,
/// or in a user namespace the bus owner's.
pub fn auth_uid(sock: &UnixStream) -> Result<u32> {
    if crate::userns::running_in_userns() {
        owner_uid(sock)
    } else {
        Ok(nix::unistd::getuid().as_raw())
    }
}

/// The owner of the bus on `sock` (sd_bus_creds_get_owner_uid of its daemon): the uid of the
/// `user-UID.slice` its daemon runs in.
pub fn owner_uid(sock: &UnixStream) -> Result<u32> {
    let cred = nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::PeerCredentials)
        .context("SO_PEERCRED of the user's bus")?;
    let pid = cred.pid();
    if pid <= 0 {
        // a daemon outside our pid namespace
        bail!(
            "could not detect the OwnerUID of the user's bus: its daemon's pid is not visible here"
        );
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("reading the cgroup of the bus daemon (pid {pid})"))?;
    let path = systemd_cgroup(&text).unwrap_or_default();
    owner_of_cgroup(path).with_context(|| {
        format!("could not detect the OwnerUID of the user's bus: its daemon (pid {pid}) is in {path:?}, in no user-UID.slice")
    })
}

/// The uid of whoever owns the user's bus, connecting only to ask the socket (no
/// authentication): rootless mode's question for root in a user namespace (0: a systemd
/// of root's, which makes rt rootful there).
pub fn bus_owner_uid() -> Result<u32> {
    owner_uid(&session_bus()?.connect()?)
}

/// The cgroup systemd manages a process by: the cgroup2 one, else v1's name=systemd.
fn systemd_cgroup(proc_cgroup: &str) -> Option<&str> {
    let mut named = None;
    for l in proc_cgroup.lines() {
        let mut f = l.splitn(3, ':');
        match (f.next(), f.next(), f.next()) {
            (Some("0"), Some(""), Some(p)) => return Some(p),
            (_, Some("name=systemd"), Some(p)) => named = Some(p),
            _ => {}
        }
    }
    named
}

/// systemd's owner of a cgroup path: the last slice of the run of slices it starts with, when
/// that is `user-UID.slice` (/user.slice/user-1000.slice/user@1000.service/… is 1000's).
pub fn owner_of_cgroup(path: &str) -> Option<u32> {
    let slice = path
        .split('/')
        .filter(|c| !c.is_empty())
        .take_while(|c| c.ends_with(".slice"))
        .last()?;
    slice
        .strip_prefix("user-")?
        .strip_suffix(".slice")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            parse_address("unix:path=/run/user/1000/bus"),
            Some(Address::Path("/run/user/1000/bus".into()))
        );
        assert_eq!(
            parse_address("tcp:host=x;unix:guid=ab,abstract=/tmp/dbus-Q%2cz"),
            Some(Address::Abstract(b"/tmp/dbus-Q,z".to_vec()))
        );
        assert_eq!(
            parse_address("unix:path=/a%20b,guid=1"),
            Some(Address::Path("/a b".into()))
        );
        assert_eq!(parse_address("tcp:host=x,port=1"), None);
        assert_eq!(parse_address("unix:path=/x%2"), None);
    }

    #[test]
    fn owner_is_the_user_slice() {
        let own = |p| owner_of_cgroup(p);
        assert_eq!(
            own("/user.slice/user-1000.slice/user@1000.service/session.slice/dbus.service"),
            Some(1000)
        );
        assert_eq!(own("/user.slice/user-42.slice/session-3.scope"), Some(42));
        // a slice below the first unit does not count
        assert_eq!(own("/system.slice/x.service/user-7.slice"), None);
        assert_eq!(own("/system.slice/dbus.service"), None);
        assert_eq!(own("/"), None);
        assert_eq!(own("/user.slice/user-x.slice/a.service"), None);
        assert_eq!(
            systemd_cgroup("12:pids:/a\n1:name=systemd:/user.slice/user-5.slice\n"),
            Some("/user.slice/user-5.slice")
        );
        assert_eq!(
            systemd_cgroup("1:name=systemd:/x\n0::/user.slice\n"),
            Some("/user.slice")
        );
    }

    /// The owner of a real socket: whoever listens on it (this test process), found from the
    /// peer's credentials and its cgroup; on a host where the test does not run in a user slice
    /// there is none to find.
    #[test]
    fn owner_of_a_socket_is_its_listeners_slice() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        let s = UnixStream::connect(&p).unwrap();
        let _peer = l.accept().unwrap();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let want = systemd_cgroup(&own).and_then(owner_of_cgroup);
        match owner_uid(&s) {
            Ok(uid) => assert_eq!(Some(uid), want),
            Err(e) => {
                assert_eq!(want, None);
                assert!(format!("{e:#}").contains("OwnerUID"), "{e:#}");
            }
        }
    }
}
