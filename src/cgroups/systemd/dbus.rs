//! The few D-Bus calls the systemd driver makes, spoken directly on a unix socket.
//!
//! Why by hand: rt forks and re-execs itself, so a client that starts threads (zbus's
//! blocking API runs an executor thread) is a hazard, and libdbus would bring a C library
//! into a static binary. The driver needs little: SASL EXTERNAL, `Hello`, `AddMatch`, method
//! calls with a handful of types, and one signal (`JobRemoved`). Only little-endian
//! messages are read, which is what every peer on x86 and arm sends.
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A D-Bus value of the types systemd's unit properties use.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Path(String),
    Sig(String),
    /// The element signature is kept so an empty array still has a type.
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::F64(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(e, _) => format!("a{e}"),
            Value::Struct(f) => format!("({})", f.iter().map(Value::signature).collect::<String>()),
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }
}

fn align_of(sig: u8) -> usize {
    match sig {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 4,
    }
}

/// Splits the first complete type off a signature.
fn split_type(sig: &str) -> Result<(&str, &str)> {
    let b = sig.as_bytes();
    let end = match b.first() {
        None => bail!("empty D-Bus signature"),
        Some(b'a') => 1 + split_type(&sig[1..])?.0.len(),
        Some(&open @ (b'(' | b'{')) => {
            let close = if open == b'(' { b')' } else { b'}' };
            let mut i = 1;
            while b.get(i) != Some(&close) {
                if i >= b.len() {
                    bail!("unbalanced D-Bus signature {sig:?}");
                }
                i += split_type(&sig[i..])?.0.len();
            }
            i + 1
        }
        Some(_) => 1,
    };
    Ok(sig.split_at(end))
}

#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, n: usize) {
        while !self.buf.len().is_multiple_of(n) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(*b as u32),
            Value::I32(i) => self.u32(*i as u32),
            Value::U32(u) => self.u32(*u),
            Value::I64(i) => self.u64(*i as u64),
            Value::U64(u) => self.u64(*u),
            Value::F64(f) => self.u64(f.to_bits()),
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(align_of(elem.as_bytes()[0]));
                let start = self.buf.len();
                for i in items {
                    self.value(i);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f);
                }
            }
            Value::Variant(inner) => {
                self.value(&Value::Sig(inner.signature()));
                self.value(inner);
            }
        }
    }

    fn u64(&mut self, v: u64) {
        self.pad(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .context("D-Bus message ends early")?;
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4);
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }

    fn u64(&mut self) -> Result<u64> {
        self.align(8);
        Ok(u64::from_le_bytes(self.take(8)?.try_into()?))
    }

    fn text(&mut self, len: usize) -> Result<String> {
        let s = String::from_utf8(self.take(len)?.to_vec()).context("D-Bus string not UTF-8")?;
        self.take(1)?;
        Ok(s)
    }

    fn value(&mut self, sig: &str) -> Result<Value> {
        Ok(match sig.as_bytes()[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'n' | b'q' => {
                self.align(2);
                Value::U32(u16::from_le_bytes(self.take(2)?.try_into()?) as u32)
            }
            b'i' => Value::I32(self.u32()? as i32),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(self.u64()? as i64),
            b't' => Value::U64(self.u64()?),
            b'd' => Value::F64(f64::from_bits(self.u64()?)),
            b's' | b'o' => {
                let n = self.u32()? as usize;
                let s = self.text(n)?;
                if sig.starts_with('o') {
                    Value::Path(s)
                } else {
                    Value::Str(s)
                }
            }
            b'g' => {
                let n = self.take(1)?[0] as usize;
                Value::Sig(self.text(n)?)
            }
            b'a' => {
                let n = self.u32()? as usize;
                let elem = &sig[1..];
                self.align(align_of(elem.as_bytes()[0]));
                let end = self.pos + n;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem)?);
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' | b'{' => {
                self.align(8);
                let mut rest = &sig[1..sig.len() - 1];
                let mut fields = Vec::new();
                while !rest.is_empty() {
                    let (t, r) = split_type(rest)?;
                    fields.push(self.value(t)?);
                    rest = r;
                }
                Value::Struct(fields)
            }
            b'v' => {
                let Value::Sig(s) = self.value("g")? else {
                    unreachable!()
                };
                split_type(&s)?;
                Value::Variant(Box::new(self.value(&s)?))
            }
            c => bail!("unsupported D-Bus type {:?}", c as char),
        })
    }

    fn values(&mut self, mut sig: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        while !sig.is_empty() {
            let (t, rest) = split_type(sig)?;
            out.push(self.value(t)?);
            sig = rest;
        }
        Ok(out)
    }
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

/// A message read from the bus.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub body: Vec<Value>,
}

/// One method call, marshalled.
pub struct Call<'a> {
    pub dest: &'a str,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub args: &'a [Value],
}

fn encode_call(serial: u32, c: &Call) -> Vec<u8> {
    let mut body = Writer::default();
    for a in c.args {
        body.value(a);
    }
    let sig: String = c.args.iter().map(Value::signature).collect();
    let field =
        |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Value::Path(c.path.into())),
        field(2, Value::str(c.interface)),
        field(3, Value::str(c.member)),
    ];
    if !c.dest.is_empty() {
        fields.push(field(6, Value::str(c.dest)));
    }
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut m = Writer::default();
    m.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    m.u32(body.buf.len() as u32);
    m.u32(serial);
    m.value(&Value::Array("(yv)".into(), fields));
    m.pad(8);
    m.buf.extend_from_slice(&body.buf);
    m.buf
}

fn decode(buf: &[u8]) -> Result<Message> {
    if buf.first() != Some(&b'l') {
        bail!("D-Bus message is not little-endian");
    }
    let mut r = Reader { buf, pos: 12 };
    let Value::Array(_, fields) = r.value("a(yv)")? else {
        unreachable!()
    };
    r.align(8);
    let mut m = Message {
        kind: buf[1],
        reply_serial: None,
        interface: None,
        member: None,
        error_name: None,
        body: Vec::new(),
    };
    let mut sig = String::new();
    for f in fields {
        let Value::Struct(f) = f else { continue };
        let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (f.first(), f.get(1)) else {
            continue;
        };
        match (code, v.as_ref()) {
            (2, v) => m.interface = v.as_str().map(String::from),
            (3, v) => m.member = v.as_str().map(String::from),
            (4, v) => m.error_name = v.as_str().map(String::from),
            (5, Value::U32(s)) => m.reply_serial = Some(*s),
            (8, Value::Sig(s)) => sig = s.clone(),
            _ => {}
        }
    }
    // The body is aligned from its own start, which the header padding makes 8-aligned.
    let body = &buf[r.pos..];
    m.body = Reader { buf: body, pos: 0 }.values(&sig)?;
    Ok(m)
}

/// A connection to the system bus, systemd's private socket or the user's session bus.
pub struct Bus {
    sock: BufReader<UnixStream>,
    /// Through a bus daemon (which needs match rules for signals), not systemd directly.
    pub via_daemon: bool,
    serial: u32,
    /// Signals that came while waiting for a reply.
    signals: Vec<Message>,
}

pub const SYSTEMD_PRIVATE: &str = "/run/systemd/private";
/// How long a reply may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn system_bus_path() -> String {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|a| {
            a.split(';').find_map(|a| {
                a.strip_prefix("unix:path=")
                    .map(|p| p.split(',').next().unwrap_or(p).to_string())
            })
        })
        .unwrap_or_else(|| "/run/dbus/system_bus_socket".into())
}

impl Bus {
    /// The system bus, as go-systemd (and so runc) uses it; for root, systemd's private
    /// socket when there is no bus daemon. (Private first was tried: once in a few runs under
    /// emulation a StopUnit got no reply within 30 s there, which never happened on the bus.)
    pub fn system() -> Result<Bus> {
        let path = system_bus_path();
        match Bus::connect(&path, true) {
            Ok(b) => Ok(b),
            Err(e) if nix::unistd::geteuid().is_root() => Bus::connect(SYSTEMD_PRIVATE, false)
                .with_context(|| format!("{e:#}; and systemd's {SYSTEMD_PRIVATE}")),
            Err(e) => Err(e),
        }
    }

    /// The user's session bus, where the user's own systemd is (see user.rs), authenticated
    /// as the uid it knows us by.
    pub fn user() -> Result<Bus> {
        let addr = super::user::session_bus()?;
        let s = addr.connect()?;
        let uid = super::user::auth_uid(&s)?;
        Bus::over(s, &addr.to_string(), true, uid)
            .with_context(|| format!("the user's bus, as UID {uid}"))
    }

    /// `bus`: a message bus (Hello, and a match rule for signals), not a direct peer.
    pub fn connect(path: &str, bus: bool) -> Result<Bus> {
        let s =
            UnixStream::connect(path).with_context(|| format!("connecting to D-Bus at {path}"))?;
        Bus::over(s, path, bus, nix::unistd::geteuid().as_raw())
    }

    /// A connected socket, authenticated (EXTERNAL) as `uid`.
    fn over(s: UnixStream, what: &str, bus: bool, uid: u32) -> Result<Bus> {
        s.set_read_timeout(Some(CALL_TIMEOUT))?;
        let mut b = Bus {
            sock: BufReader::new(s),
            via_daemon: bus,
            serial: 0,
            signals: Vec::new(),
        };
        b.auth(uid)
            .with_context(|| format!("authenticating to D-Bus at {what}"))?;
        if bus {
            b.call(&Call {
                dest: "org.freedesktop.DBus",
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "Hello",
                args: &[],
            })?;
        }
        Ok(b)
    }

    fn auth(&mut self, uid: u32) -> Result<()> {
        let uid = uid.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let s = self.sock.get_mut();
        s.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        self.sock.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            bail!(
                "the bus refused EXTERNAL authentication: {}",
                line.trim_end()
            );
        }
        self.sock.get_mut().write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    /// Asks the bus to pass on signals matching `rule`.
    pub fn add_match(&mut self, rule: &str) -> Result<()> {
        self.call(&Call {
            dest: "org.freedesktop.DBus",
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "AddMatch",
            args: &[Value::str(rule)],
        })
        .map(drop)
    }

    fn send(&mut self, c: &Call) -> Result<u32> {
        self.serial += 1;
        let msg = encode_call(self.serial, c);
        self.sock
            .get_mut()
            .write_all(&msg)
            .context("writing to D-Bus")?;
        crate::debug!("dbus: call #{} {}.{}", self.serial, c.interface, c.member);
        Ok(self.serial)
    }

    fn read(&mut self) -> Result<Message> {
        let mut head = [0u8; 16];
        self.sock
            .read_exact(&mut head)
            .context("reading from D-Bus")?;
        let body_len = u32::from_le_bytes(head[4..8].try_into()?) as usize;
        let fields_len = u32::from_le_bytes(head[12..16].try_into()?) as usize;
        let total = (16 + fields_len).div_ceil(8) * 8 + body_len;
        if total > 64 << 20 {
            bail!("D-Bus message of {total} bytes");
        }
        let mut buf = head.to_vec();
        buf.resize(total, 0);
        self.sock
            .read_exact(&mut buf[16..])
            .context("reading from D-Bus")?;
        let m = decode(&buf)?;
        crate::debug!(
            "dbus: got kind {} {:?} reply to {:?} {:?}",
            m.kind,
            m.member,
            m.reply_serial,
            m.error_name
        );
        Ok(m)
    }

    /// Calls a method and returns its reply's values; a D-Bus error is an error carrying its
    /// name (`org.freedesktop.systemd1.NoSuchUnit: ...`).
    pub fn call(&mut self, c: &Call) -> Result<Vec<Value>> {
        let serial = self.send(c)?;
        loop {
            let m = self.read()?;
            match m.kind {
                METHOD_RETURN if m.reply_serial == Some(serial) => return Ok(m.body),
                ERROR if m.reply_serial == Some(serial) => {
                    let text = m.body.first().and_then(Value::as_str).unwrap_or("");
                    bail!(
                        "{}: {text}",
                        m.error_name.as_deref().unwrap_or("D-Bus error")
                    );
                }
                SIGNAL => self.signals.push(m),
                _ => {}
            }
        }
    }

    /// The first signal, seen already or arriving before `timeout`, that `pick` takes.
    pub fn wait_signal<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&Message) -> Option<T>,
    ) -> Result<T> {
        if let Some(i) = self.signals.iter().position(|m| pick(m).is_some()) {
            let m = self.signals.remove(i);
            return Ok(pick(&m).expect("picked above"));
        }
        let end = Instant::now() + timeout;
        let res = loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(anyhow::anyhow!("timed out after {timeout:?}"));
            }
            self.sock.get_ref().set_read_timeout(Some(left))?;
            match self.read() {
                Ok(m) if m.kind == SIGNAL => {
                    if let Some(t) = pick(&m) {
                        break Ok(t);
                    }
                }
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        self.sock.get_ref().set_read_timeout(Some(CALL_TIMEOUT))?;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_split() {
        assert_eq!(split_type("a(sv)s").unwrap(), ("a(sv)", "s"));
        assert_eq!(split_type("(sa(sv))").unwrap(), ("(sa(sv))", ""));
        assert_eq!(split_type("a{sv}u").unwrap(), ("a{sv}", "u"));
        assert!(split_type("(ss").is_err());
    }

    #[test]
    fn values_round_trip() {
        let v = vec![
            Value::str("rt-c1.scope"),
            Value::Array(
                "(sv)".into(),
                vec![
                    Value::Struct(vec![
                        Value::str("PIDs"),
                        Value::Variant(Box::new(Value::Array("u".into(), vec![Value::U32(42)]))),
                    ]),
                    Value::Struct(vec![
                        Value::str("MemoryMax"),
                        Value::Variant(Box::new(Value::U64(1 << 30))),
                    ]),
                    Value::Struct(vec![
                        Value::str("Delegate"),
                        Value::Variant(Box::new(Value::Bool(true))),
                    ]),
                    Value::Struct(vec![
                        Value::str("DeviceAllow"),
                        Value::Variant(Box::new(Value::Array("(ss)".into(), vec![]))),
                    ]),
                ],
            ),
            Value::Byte(7),
            Value::I64(-3),
        ];
        let mut w = Writer::default();
        for x in &v {
            w.value(x);
        }
        let sig: String = v.iter().map(Value::signature).collect();
        assert_eq!(sig, "sa(sv)yx");
        let back = Reader {
            buf: &w.buf,
            pos: 0,
        }
        .values(&sig)
        .unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn a_call_decodes_as_sent() {
        let args = [Value::str("a"), Value::U32(5)];
        let buf = encode_call(
            9,
            &Call {
                dest: "d.e",
                path: "/p",
                interface: "i.f",
                member: "M",
                args: &args,
            },
        );
        assert_eq!(&buf[..4], b"l\x01\x00\x01");
        let m = decode(&buf).unwrap();
        assert_eq!(m.kind, METHOD_CALL);
        assert_eq!(m.member.as_deref(), Some("M"));
        assert_eq!(m.interface.as_deref(), Some("i.f"));
        assert_eq!(m.body, args);
    }

    /// The whole client against a real bus daemon: auth, Hello, a call, an error, a signal.
    #[test]
    fn talks_to_a_real_bus() {
        let Ok(daemon) = which("dbus-daemon") else {
            eprintln!("skip: dbus-daemon is not installed");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bus");
        let conf = dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                "<busconfig><type>session</type><listen>unix:path={}</listen>\
                 <auth>EXTERNAL</auth><policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
                 <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>",
                sock.display()
            ),
        )
        .unwrap();
        // --print-address writes once the socket listens: then connecting cannot race it.
        let mut child = std::process::Command::new(daemon)
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert!(ready.contains(sock.to_str().unwrap()), "{ready}");
        let res = (|| -> Result<()> {
            let mut b = Bus::connect(sock.to_str().unwrap(), true)?;
            let names = b.call(&Call {
                dest: "org.freedesktop.DBus",
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "ListNames",
                args: &[],
            })?;
            let Some(Value::Array(_, names)) = names.first() else {
                bail!("no names: {names:?}")
            };
            assert!(
                names.contains(&Value::str("org.freedesktop.DBus")),
                "{names:?}"
            );
            let e = b
                .call(&Call {
                    dest: "org.freedesktop.DBus",
                    path: "/org/freedesktop/DBus",
                    interface: "org.freedesktop.DBus",
                    member: "GetNameOwner",
                    args: &[Value::str("no.such.name")],
                })
                .unwrap_err();
            assert!(format!("{e}").contains("NameHasNoOwner"), "{e}");
            // Asking for a name makes the bus signal NameAcquired to us.
            b.add_match("type='signal',member='NameAcquired'")?;
            b.call(&Call {
                dest: "org.freedesktop.DBus",
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "RequestName",
                args: &[Value::str("org.example.rt"), Value::U32(0)],
            })?;
            let got = b.wait_signal(Duration::from_secs(5), |m| {
                (m.member.as_deref() == Some("NameAcquired")
                    && m.body.first() == Some(&Value::str("org.example.rt")))
                .then_some(())
            });
            got
        })();
        let _ = child.kill();
        let _ = child.wait();
        res.unwrap();
    }

    fn which(name: &str) -> Result<std::path::PathBuf> {
        std::env::var("PATH")?
            .split(':')
            .map(|d| std::path::Path::new(d).join(name))
            .find(|p| p.exists())
            .context("not found")
    }
}
