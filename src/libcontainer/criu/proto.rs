//! The few messages of criu's RPC (`images/rpc.proto` in criu's tree, proto2) that rt sends
//! and reads, encoded by hand: a request is a handful of varints, strings and nested messages,
//! a response a few fields to pick out. Field numbers are criu's and never change meaning.
use anyhow::{bail, Result};

/// `criu_req_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqType {
    Dump = 1,
    Restore = 2,
    PreDump = 4,
    Notify = 6,
    FeatureCheck = 9,
    Version = 10,
}

impl ReqType {
    fn from_u64(v: u64) -> Option<ReqType> {
        Some(match v {
            1 => ReqType::Dump,
            2 => ReqType::Restore,
            4 => ReqType::PreDump,
            6 => ReqType::Notify,
            9 => ReqType::FeatureCheck,
            10 => ReqType::Version,
            _ => return None,
        })
    }

    /// As criu and runc name them in messages.
    pub fn name(self) -> &'static str {
        match self {
            ReqType::Dump => "DUMP",
            ReqType::Restore => "RESTORE",
            ReqType::PreDump => "PRE_DUMP",
            ReqType::Notify => "NOTIFY",
            ReqType::FeatureCheck => "FEATURE_CHECK",
            ReqType::Version => "VERSION",
        }
    }
}

/// `criu_cg_mode`: what criu does with the cgroups of the tree it dumps or restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgMode {
    Ignore = 0,
    Soft = 3,
    Full = 4,
    Strict = 5,
}

impl CgMode {
    /// `--manage-cgroups-mode`, in runc's words when it is none of them.
    pub fn parse(s: &str) -> Result<CgMode> {
        Ok(match s {
            "soft" => CgMode::Soft,
            "full" => CgMode::Full,
            "strict" => CgMode::Strict,
            "ignore" => CgMode::Ignore,
            _ => bail!("invalid --manage-cgroups-mode {s:?}: want soft, full, strict or ignore"),
        })
    }
}

/// `criu_opts`: only the fields rt sets. A bool is sent only when true (false is proto2's
/// default for all of them).
#[derive(Debug, Default, Clone)]
pub struct Opts {
    pub images_dir_fd: i32,
    pub pid: Option<i32>,
    pub leave_running: bool,
    pub ext_unix_sk: bool,
    pub tcp_established: bool,
    pub evasive_devices: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub log_level: Option<i32>,
    pub log_file: Option<String>,
    /// `ps`: the page server's address and port.
    pub page_server: Option<(String, i32)>,
    pub notify_scripts: bool,
    pub root: Option<String>,
    pub parent_img: Option<String>,
    pub track_mem: bool,
    pub auto_dedup: bool,
    pub work_dir_fd: Option<i32>,
    /// `ext_mnt`: (key, val) pairs.
    pub ext_mnt: Vec<(String, String)>,
    pub manage_cgroups: bool,
    /// `cg_root`: (controller or none for every one, path).
    pub cg_root: Vec<(Option<String>, String)>,
    pub rst_sibling: bool,
    /// `inherit_fd`: (key, fd number in criu's process).
    pub inherit_fd: Vec<(String, i32)>,
    pub manage_cgroups_mode: Option<CgMode>,
    pub external: Vec<String>,
    pub empty_ns: Option<u32>,
    /// `join_ns`: (namespace name, path of its file).
    pub join_ns: Vec<(String, String)>,
    pub freeze_cgroup: Option<String>,
    pub lazy_pages: bool,
    pub orphan_pts_master: bool,
    pub config_file: Option<String>,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

/// `criu_features`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub mem_track: bool,
    pub lazy_pages: bool,
}

/// `criu_req`.
#[derive(Debug, Clone)]
pub struct Req {
    pub typ: ReqType,
    pub opts: Option<Opts>,
    pub notify_success: bool,
    /// criu serves more requests on the same socket after this one.
    pub keep_open: bool,
    pub features: Option<Features>,
}

impl Req {
    pub fn new(typ: ReqType, opts: Option<Opts>) -> Req {
        Req {
            typ,
            opts,
            notify_success: false,
            keep_open: false,
            features: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.uint(1, self.typ as u64);
        if let Some(o) = &self.opts {
            e.msg(2, |e| o.encode(e));
        }
        e.flag(3, self.notify_success);
        e.flag(4, self.keep_open);
        if let Some(f) = self.features {
            e.msg(5, |e| {
                // asked for means present, with value true
                if f.mem_track {
                    e.uint(1, 1);
                }
                if f.lazy_pages {
                    e.uint(2, 1);
                }
            });
        }
        e.0
    }
}

impl Opts {
    fn encode(&self, e: &mut Enc) {
        e.int(1, self.images_dir_fd);
        if let Some(p) = self.pid {
            e.int(2, p);
        }
        e.flag(3, self.leave_running);
        e.flag(4, self.ext_unix_sk);
        e.flag(5, self.tcp_established);
        e.flag(6, self.evasive_devices);
        e.flag(7, self.shell_job);
        e.flag(8, self.file_locks);
        if let Some(l) = self.log_level {
            e.int(9, l);
        }
        e.opt_str(10, &self.log_file);
        if let Some((addr, port)) = &self.page_server {
            e.msg(11, |e| {
                e.str(1, addr);
                e.int(2, *port);
            });
        }
        e.flag(12, self.notify_scripts);
        e.opt_str(13, &self.root);
        e.opt_str(14, &self.parent_img);
        e.flag(15, self.track_mem);
        e.flag(16, self.auto_dedup);
        if let Some(fd) = self.work_dir_fd {
            e.int(17, fd);
        }
        for (k, v) in &self.ext_mnt {
            e.msg(23, |e| {
                e.str(1, k);
                e.str(2, v);
            });
        }
        e.flag(24, self.manage_cgroups);
        for (ctrl, path) in &self.cg_root {
            e.msg(25, |e| {
                e.opt_str(1, ctrl);
                e.str(2, path);
            });
        }
        e.flag(26, self.rst_sibling);
        for (k, fd) in &self.inherit_fd {
            e.msg(27, |e| {
                e.str(1, k);
                e.int(2, *fd);
            });
        }
        if let Some(m) = self.manage_cgroups_mode {
            e.uint(34, m as u64);
        }
        for x in &self.external {
            e.str(37, x);
        }
        if let Some(m) = self.empty_ns {
            e.uint(38, m as u64);
        }
        for (ns, file) in &self.join_ns {
            e.msg(39, |e| {
                e.str(1, ns);
                e.str(2, file);
            });
        }
        e.opt_str(44, &self.freeze_cgroup);
        e.flag(48, self.lazy_pages);
        e.flag(50, self.orphan_pts_master);
        e.opt_str(51, &self.config_file);
        e.opt_str(53, &self.lsm_profile);
        e.opt_str(63, &self.lsm_mount_context);
    }
}

/// `criu_resp`, the fields rt reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resp {
    pub typ: Option<ReqType>,
    /// The raw type, for a message about one rt does not know.
    pub raw_type: u64,
    pub success: bool,
    /// `restore.pid`
    pub restored_pid: Option<i32>,
    /// `notify.script`, `notify.pid`
    pub notify: Option<(String, i32)>,
    pub cr_errno: Option<i32>,
    pub cr_errmsg: Option<String>,
    pub features: Option<Features>,
    /// `version`: major, minor, sublevel.
    pub version: Option<(i32, i32, i32)>,
}

impl Resp {
    pub fn decode(buf: &[u8]) -> Result<Resp> {
        let mut r = Resp::default();
        for f in Fields(buf) {
            match f? {
                (1, Val::Int(v)) => {
                    r.raw_type = v;
                    r.typ = ReqType::from_u64(v);
                }
                (2, Val::Int(v)) => r.success = v != 0,
                (4, Val::Bytes(b)) => {
                    for f in Fields(b) {
                        if let (1, Val::Int(v)) = f? {
                            r.restored_pid = Some(v as i32);
                        }
                    }
                }
                (5, Val::Bytes(b)) => {
                    let (mut script, mut pid) = (String::new(), 0);
                    for f in Fields(b) {
                        match f? {
                            (1, Val::Bytes(s)) => script = String::from_utf8_lossy(s).into(),
                            (2, Val::Int(v)) => pid = v as i32,
                            _ => {}
                        }
                    }
                    r.notify = Some((script, pid));
                }
                (7, Val::Int(v)) => r.cr_errno = Some(v as i32),
                (8, Val::Bytes(b)) => {
                    let mut feat = Features::default();
                    for f in Fields(b) {
                        match f? {
                            (1, Val::Int(v)) => feat.mem_track = v != 0,
                            (2, Val::Int(v)) => feat.lazy_pages = v != 0,
                            _ => {}
                        }
                    }
                    r.features = Some(feat);
                }
                (9, Val::Bytes(s)) => r.cr_errmsg = Some(String::from_utf8_lossy(s).into()),
                (10, Val::Bytes(b)) => {
                    let mut v = (0, 0, 0);
                    for f in Fields(b) {
                        match f? {
                            (1, Val::Int(x)) => v.0 = x as i32,
                            (2, Val::Int(x)) => v.1 = x as i32,
                            (4, Val::Int(x)) => v.2 = x as i32,
                            _ => {}
                        }
                    }
                    r.version = Some(v);
                }
                _ => {}
            }
        }
        Ok(r)
    }
}

/// The wire format's writer: keys are (field << 3 | wire type); 0 is a varint, 2 is
/// length-delimited.
#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn uint(&mut self, field: u32, v: u64) {
        self.varint(u64::from(field) << 3);
        self.varint(v);
    }

    /// int32: a negative value is sign-extended to ten bytes, as protobuf does.
    fn int(&mut self, field: u32, v: i32) {
        self.uint(field, i64::from(v) as u64);
    }

    fn flag(&mut self, field: u32, v: bool) {
        if v {
            self.uint(field, 1);
        }
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.varint(u64::from(field) << 3 | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn str(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    fn opt_str(&mut self, field: u32, s: &Option<String>) {
        if let Some(s) = s {
            self.str(field, s);
        }
    }

    fn msg(&mut self, field: u32, f: impl FnOnce(&mut Enc)) {
        let mut inner = Enc::default();
        f(&mut inner);
        self.bytes(field, &inner.0);
    }
}

enum Val<'a> {
    Int(u64),
    Bytes(&'a [u8]),
    Skipped,
}

/// The wire format's reader: each field of a message, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some((&b, rest)) = self.0.split_first() else {
                bail!("criu's answer is cut short");
            };
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("criu's answer has a varint that does not end")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            bail!("criu's answer is cut short");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Val<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let mut one = || -> Result<(u32, Val<'a>)> {
            let key = self.varint()?;
            let field = (key >> 3) as u32;
            let v = match key & 7 {
                0 => Val::Int(self.varint()?),
                1 => {
                    self.take(8)?;
                    Val::Skipped
                }
                2 => {
                    let n = self.varint()? as usize;
                    Val::Bytes(self.take(n)?)
                }
                5 => {
                    self.take(4)?;
                    Val::Skipped
                }
                w => bail!("criu's answer has wire type {w}, which rt does not read"),
            };
            Ok((field, v))
        };
        let r = one();
        if r.is_err() {
            self.0 = &[];
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_match_protobuf() {
        // What protoc's encoder gives for criu_req{type: VERSION, keep_open: true}.
        let mut r = Req::new(ReqType::Version, None);
        r.keep_open = true;
        assert_eq!(r.encode(), [0x08, 0x0a, 0x20, 0x01]);

        // criu_req{type: DUMP, opts{images_dir_fd: 5, pid: -1, log_file: "d", ext_mnt{k,v}}}
        let o = Opts {
            images_dir_fd: 5,
            pid: Some(-1),
            log_file: Some("d".into()),
            ext_mnt: vec![("k".into(), "v".into())],
            manage_cgroups_mode: Some(CgMode::Ignore),
            ..Default::default()
        };
        let got = Req::new(ReqType::Dump, Some(o)).encode();
        let mut want = vec![0x08, 0x01, 0x12, 28, 0x08, 0x05, 0x10];
        want.extend([0xff; 9]);
        want.push(0x01);
        want.extend([0x52, 0x01, b'd']);
        want.extend([0xba, 0x01, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v']);
        want.extend([0x90, 0x02, 0x00]);
        assert_eq!(got, want);
    }

    #[test]
    fn response_fields() {
        // criu_resp{type: NOTIFY, success: true, notify{script: "post-restore", pid: 42}}
        let mut b = vec![0x08, 0x06, 0x10, 0x01, 0x2a, 16, 0x0a, 12];
        b.extend(b"post-restore");
        b.extend([0x10, 42]);
        let r = Resp::decode(&b).unwrap();
        assert_eq!(r.typ, Some(ReqType::Notify));
        assert!(r.success);
        assert_eq!(r.notify, Some(("post-restore".into(), 42)));

        // criu_resp{type: VERSION, success: true, version{3, 17, sublevel 1}, cr_errno 0}
        let b = [
            0x08, 0x0a, 0x10, 0x01, 0x52, 0x06, 0x08, 0x03, 0x10, 0x11, 0x20, 0x01, 0x38, 0x00,
        ];
        let r = Resp::decode(&b).unwrap();
        assert_eq!(r.version, Some((3, 17, 1)));
        assert_eq!(r.cr_errno, Some(0));

        assert!(Resp::decode(&[0x08]).is_err());
        assert!(Resp::decode(&[0x0a, 0x05, 0x01]).is_err());
    }
}
