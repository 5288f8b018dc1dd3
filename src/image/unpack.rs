//! Applying layers to a rootfs: one streaming pass per layer, whiteouts honoured, metadata kept,
//! and every entry confined to the rootfs (see safefs.rs).
use super::compress::{decompress, tar_error};
use super::digest::{copy_big, Verifier};
use super::safefs::{self, components, is_plain_name, lstat_at, Root};
use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

const WH_PREFIX: &str = ".wh.";
const WH_OPAQUE: &str = ".wh..wh..opq";

/// One layer to apply: its bytes (compressed or not) and the digest of the uncompressed tar.
pub struct Layer<'a> {
    pub label: String,
    pub reader: Box<dyn Read + 'a>,
    pub diff_id: String,
}

/// Applies layers in order onto the directory `rootfs`, which must exist.
/// Directory mtimes are set last, because creating children changes them.
pub fn unpack(rootfs: &Path, layers: Vec<Layer<'_>>) -> Result<()> {
    let root = Root::open(rootfs)?;
    let mut dir_times: HashMap<Vec<OsString>, i64> = HashMap::new();
    for layer in layers {
        apply_layer(&root, layer, &mut dir_times)?;
    }
    for (comps, mtime) in dir_times {
        if comps.is_empty() {
            let t = TimeSpec::new(mtime, 0);
            futimens(root.fd(), &t, &t).context("setting the rootfs mtime")?;
            continue;
        }
        let (name, parent) = comps.split_last().unwrap();
        if let Ok(Some(pfd)) = root.dir(parent, false) {
            let t = TimeSpec::new(mtime, 0);
            // A directory removed by a later layer simply has no time to set.
            let _ = utimensat(
                &pfd,
                name.as_os_str(),
                &t,
                &t,
                UtimensatFlags::NoFollowSymlink,
            );
        }
    }
    Ok(())
}

fn apply_layer(
    root: &Root,
    layer: Layer<'_>,
    dir_times: &mut HashMap<Vec<OsString>, i64>,
) -> Result<()> {
    let label = layer.label;
    let mut verifier = Verifier::new(
        decompress(layer.reader).with_context(|| label.clone())?,
        None,
    );
    // Paths this layer wrote: an opaque marker must spare them whatever order the tar lists them in.
    let mut created: HashSet<Vec<OsString>> = HashSet::new();
    {
        let mut ar = tar::Archive::new(&mut verifier);
        for entry in ar
            .entries()
            .map_err(tar_error)
            .with_context(|| format!("{label}: reading tar"))?
        {
            let mut entry = entry
                .map_err(tar_error)
                .with_context(|| format!("{label}: reading tar"))?;
            let path = entry.path().map(|p| p.into_owned()).unwrap_or_default();
            apply_entry(root, &mut entry, &mut created, dir_times)
                .with_context(|| format!("{label}: entry {:?}", path.to_string_lossy()))?;
        }
    }
    verifier.finish(&format!("{label} (uncompressed)"), &layer.diff_id, None)
}

fn apply_entry<R: Read>(
    root: &Root,
    e: &mut tar::Entry<'_, R>,
    created: &mut HashSet<Vec<OsString>>,
    dir_times: &mut HashMap<Vec<OsString>, i64>,
) -> Result<()> {
    let kind = e.header().entry_type();
    if matches!(
        kind,
        tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink
    ) {
        return Ok(());
    }
    let comps = components(&e.path()?)?;
    let h = e.header();
    let mode = Mode::from_bits_truncate((h.mode()? & 0o7777) as libc::mode_t);
    let (uid, gid) = (h.uid()? as u32, h.gid()? as u32);
    let mtime = h.mtime()? as i64;

    let Some((name, parent)) = comps.split_last() else {
        // "./": the rootfs directory itself.
        if kind != tar::EntryType::Directory {
            bail!("the root can only be a directory");
        }
        fchown(
            root.fd(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
        )?;
        fchmod(root.fd(), mode)?;
        dir_times.insert(vec![], mtime);
        return Ok(());
    };

    let name_str = name.to_string_lossy();
    if let Some(target) = name_str.strip_prefix(WH_PREFIX) {
        return whiteout(root, parent, target, created);
    }

    let pfd = root.dir(parent, true)?.expect("created");
    let existing = lstat_at(&pfd, name)?;
    let is_dir = kind == tar::EntryType::Directory;
    match &existing {
        Some(st) if is_dir && safefs::is_dir(st) => {}
        Some(_) => safefs::remove_all_at(&pfd, name)?,
        None => {}
    }
    let own = |fd: &OwnedFd, n: &OsStr| -> Result<()> {
        fchownat(
            fd,
            n,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .context("chown")
    };
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let fd = openat(
                &pfd,
                name.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .context("creating file")?;
            let mut f = File::from(fd);
            copy_big(e, &mut f).context("writing file")?;
            // chown clears set-id bits, so the mode goes on after it.
            fchown(&f, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).context("chown")?;
            fchmod(&f, mode).context("chmod")?;
            set_xattrs(e, &pfd, name)?;
            let t = TimeSpec::new(mtime, 0);
            futimens(&f, &t, &t).context("setting mtime")?;
        }
        tar::EntryType::Directory => {
            if existing.is_none() {
                nix::sys::stat::mkdirat(&pfd, name.as_os_str(), Mode::from_bits_truncate(0o700))
                    .context("mkdir")?;
            }
            own(&pfd, name)?;
            fchmodat(&pfd, name.as_os_str(), mode, FchmodatFlags::NoFollowSymlink)
                .or_else(|_| fchmodat(&pfd, name.as_os_str(), mode, FchmodatFlags::FollowSymlink))
                .context("chmod")?;
            set_xattrs(e, &pfd, name)?;
            let mut key = parent.to_vec();
            key.push(name.clone());
            dir_times.insert(key, mtime);
        }
        tar::EntryType::Symlink => {
            let target = e
                .link_name()?
                .ok_or_else(|| anyhow!("symlink without a target"))?;
            // The target is stored, never followed by us, so any value is harmless here.
            symlinkat(target.as_os_str(), &pfd, name.as_os_str()).context("symlink")?;
            own(&pfd, name)?;
            set_mtime(&pfd, name, mtime)?;
        }
        tar::EntryType::Link => {
            let target = e
                .link_name()?
                .ok_or_else(|| anyhow!("hardlink without a target"))?;
            let tc = components(&target)
                .map_err(|err| anyhow!("hardlink target {:?}: {err}", target.to_string_lossy()))?;
            let Some((tname, tparent)) = tc.split_last() else {
                bail!("hardlink to the root")
            };
            let tfd = root
                .dir(tparent, false)
                .with_context(|| format!("hardlink target {:?}", target.to_string_lossy()))?
                .ok_or_else(|| {
                    anyhow!(
                        "hardlink target {:?} does not exist",
                        target.to_string_lossy()
                    )
                })?;
            // Without AT_SYMLINK_FOLLOW a symlink target is linked as the link itself, never followed.
            linkat(
                &tfd,
                tname.as_os_str(),
                &pfd,
                name.as_os_str(),
                AtFlags::empty(),
            )
            .with_context(|| format!("hardlink to {:?}", target.to_string_lossy()))?;
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let (sflag, dev) = match kind {
                tar::EntryType::Char => (SFlag::S_IFCHR, dev_of(e)?),
                tar::EntryType::Block => (SFlag::S_IFBLK, dev_of(e)?),
                _ => (SFlag::S_IFIFO, 0),
            };
            mknodat(&pfd, name.as_os_str(), sflag, mode, dev).context("mknod")?;
            own(&pfd, name)?;
            fchmodat(&pfd, name.as_os_str(), mode, FchmodatFlags::FollowSymlink)
                .context("chmod")?;
            set_xattrs(e, &pfd, name)?;
            set_mtime(&pfd, name, mtime)?;
        }
        other => bail!("unsupported tar entry type {other:?}"),
    }
    let mut key = parent.to_vec();
    key.push(name.clone());
    if kind != tar::EntryType::Directory {
        // A directory this path used to be must not get its mtime restored onto the new file.
        dir_times.remove(&key);
    }
    created.insert(key);
    Ok(())
}

fn dev_of<R: Read>(e: &tar::Entry<'_, R>) -> Result<libc::dev_t> {
    let h = e.header();
    let major = h.device_major()?.unwrap_or(0);
    let minor = h.device_minor()?.unwrap_or(0);
    Ok(nix::sys::stat::makedev(major as u64, minor as u64))
}

/// Copies `SCHILY.xattr.*` PAX records onto the new file.
fn set_xattrs<R: Read>(e: &mut tar::Entry<'_, R>, pfd: &OwnedFd, name: &OsStr) -> Result<()> {
    let Some(exts) = e.pax_extensions()? else {
        return Ok(());
    };
    for ext in exts {
        let ext = ext?;
        let Ok(key) = ext.key() else { continue };
        if let Some(x) = key.strip_prefix("SCHILY.xattr.") {
            safefs::set_xattr(pfd, name, x, ext.value_bytes())?;
        }
    }
    Ok(())
}

/// `.wh.NAME` deletes NAME from the layers below; `.wh..wh..opq` empties its directory of
/// everything the layers below put there.
fn whiteout(
    root: &Root,
    parent: &[OsString],
    target: &str,
    created: &HashSet<Vec<OsString>>,
) -> Result<()> {
    if WH_OPAQUE.strip_prefix(WH_PREFIX) == Some(target) {
        let Some(dfd) = root.dir(parent, false)? else {
            return Ok(());
        };
        let keep = |n: &OsStr| {
            let mut k = parent.to_vec();
            k.push(n.to_os_string());
            created.contains(&k)
        };
        return safefs::clear_dir(&dfd, &keep);
    }
    if target.starts_with(WH_PREFIX) {
        // Other ".wh..wh." names are aufs bookkeeping, not whiteouts.
        return Ok(());
    }
    let t = OsStr::new(target);
    if !is_plain_name(t) {
        bail!("whiteout names {target:?}, which is not a plain file name");
    }
    match root.dir(parent, false)? {
        Some(pfd) => safefs::remove_all_at(&pfd, t),
        None => Ok(()),
    }
}

/// The entry's mtime on the name itself (a symlink is not followed).
fn set_mtime(dir: &OwnedFd, name: &std::ffi::OsStr, mtime: i64) -> Result<()> {
    let t = TimeSpec::new(mtime, 0);
    utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink).context("setting mtime")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::HashSink;

    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a str),
        Sym(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    fn tar_of(entries: &[E]) -> (Vec<u8>, String) {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_000_000);
            h.set_uid(0);
            h.set_gid(0);
            match e {
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    b.append_data(&mut h, p, &[][..]).unwrap();
                }
                E::File(p, c) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(c.len() as u64);
                    // append_data refuses "..", so the raw name goes straight into the header.
                    raw_name(&mut h, p);
                    h.set_cksum();
                    b.append(&h, c.as_bytes()).unwrap();
                }
                E::Sym(p, t) | E::Hard(p, t) => {
                    h.set_entry_type(if matches!(e, E::Sym(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_mode(0o777);
                    h.set_size(0);
                    raw_name(&mut h, p);
                    h.set_link_name(t).unwrap();
                    h.set_cksum();
                    b.append(&h, &[][..]).unwrap();
                }
            }
        }
        let data = b.into_inner().unwrap();
        let mut s = HashSink::default();
        std::io::Write::write_all(&mut s, &data).unwrap();
        (data, s.digest())
    }

    fn raw_name(h: &mut tar::Header, p: &str) {
        let n = &mut h.as_old_mut().name;
        n.fill(0);
        n[..p.len()].copy_from_slice(p.as_bytes());
    }

    fn apply(dir: &Path, layers: &[&[E]]) -> Result<()> {
        let tars: Vec<_> = layers.iter().map(|l| tar_of(l)).collect();
        let ls = tars
            .iter()
            .enumerate()
            .map(|(i, (d, id))| Layer {
                label: format!("layer {i}"),
                reader: Box::new(&d[..]),
                diff_id: id.clone(),
            })
            .collect();
        unpack(dir, ls)
    }

    #[test]
    fn whiteouts_and_opaque_dirs() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        apply(
            r,
            &[
                &[
                    E::Dir("data/"),
                    E::File("data/keep", "v1"),
                    E::File("data/gone", "x"),
                    E::Dir("data/dir/"),
                    E::File("data/dir/x", "x"),
                    E::Dir("opq/"),
                    E::File("opq/a", "a"),
                ],
                &[
                    E::File("data/.wh.gone", ""),
                    E::File("data/.wh.dir", ""),
                    E::File("data/keep", "v2"),
                ],
                // The marker after a sibling of the same layer must not delete that sibling.
                &[
                    E::Dir("opq/"),
                    E::File("opq/new", "new"),
                    E::File("opq/.wh..wh..opq", ""),
                    E::File(".wh.nothing-here", ""),
                ],
            ],
        )
        .unwrap();
        let names = |d: &str| {
            let mut v: Vec<_> = std::fs::read_dir(r.join(d))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("data"), ["keep"]);
        assert_eq!(std::fs::read_to_string(r.join("data/keep")).unwrap(), "v2");
        assert_eq!(names("opq"), ["new"]);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(r.join("data")).unwrap().mtime(),
            1_000_000
        );
    }

    #[test]
    fn hostile_entries_are_refused() {
        let cases: Vec<(&str, Vec<Vec<E>>)> = vec![
            ("../evil", vec![vec![E::File("../evil", "x")]]),
            ("a/../../evil", vec![vec![E::File("a/../../evil", "x")]]),
            ("/evil", vec![vec![E::File("/evil", "x")]]),
            (
                "link/evil",
                vec![vec![E::Sym("link", "..")], vec![E::File("link/evil", "x")]],
            ),
            (
                "abs/evil",
                vec![vec![E::Sym("abs", "/tmp"), E::File("abs/evil", "x")]],
            ),
            ("hl", vec![vec![E::Hard("hl", "../outside")]]),
            (
                "link/.wh.outside",
                vec![
                    vec![E::Sym("link", "..")],
                    vec![E::File("link/.wh.outside", "")],
                ],
            ),
            (".wh..", vec![vec![E::File("sub/.wh..", "")]]),
        ];
        for (needle, layers) in cases {
            let t = tempfile::tempdir().unwrap();
            let root = t.path().join("rootfs");
            std::fs::create_dir(&root).unwrap();
            std::fs::write(t.path().join("outside"), "keep").unwrap();
            let refs: Vec<&[E]> = layers.iter().map(|l| &l[..]).collect();
            let err = format!("{:#}", apply(&root, &refs).unwrap_err());
            assert!(err.contains(needle), "{needle}: {err}");
            assert!(!t.path().join("evil").exists(), "{needle}");
            assert!(!Path::new("/tmp/evil").exists(), "{needle}");
            assert_eq!(
                std::fs::read_to_string(t.path().join("outside")).unwrap(),
                "keep",
                "{needle}"
            );
        }
    }

    #[test]
    fn diff_id_mismatch_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let (data, _) = tar_of(&[E::File("f", "x")]);
        let bad = format!("sha256:{}", "0".repeat(64));
        let err = unpack(
            t.path(),
            vec![Layer {
                label: "layer L".into(),
                reader: Box::new(&data[..]),
                diff_id: bad,
            }],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("layer L (uncompressed): digest mismatch"),
            "{err}"
        );
    }
}
