//! Content addressing: sha256 digests checked while bytes stream past, and a small base64.
use anyhow::{bail, Result};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};

/// io::copy with a buffer sized for layers rather than 8 KiB, to keep syscalls few.
pub fn copy_big<R: Read + ?Sized, W: Write + ?Sized>(r: &mut R, w: &mut W) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..k])?;
        n += k as u64;
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A reader that hashes and counts what passes through it, and refuses to read past `limit` bytes
/// (a registry that sends more than the descriptor's size is wrong, and must not fill the disk).
pub struct Verifier<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: Option<u64>,
}

impl<R: Read> Verifier<R> {
    pub fn new(inner: R, limit: Option<u64>) -> Self {
        Verifier {
            inner,
            hasher: Sha256::new(),
            count: 0,
            limit,
        }
    }

    /// The digest of everything read so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex(&self.hasher.clone().finalize()))
    }

    /// Drains what is left, then checks the size and digest; `what` names the blob in the error.
    pub fn finish(mut self, what: &str, digest: &str, size: Option<u64>) -> Result<()> {
        copy_big(&mut self, &mut io::sink())?;
        if let Some(s) = size {
            if self.count != s {
                bail!(
                    "{what}: size mismatch: expected {s} bytes, got {}",
                    self.count
                );
            }
        }
        let got = self.digest();
        if got != digest {
            bail!("{what}: digest mismatch: expected {digest}, got {got}");
        }
        Ok(())
    }
}

impl<R: Read> Read for Verifier<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if let Some(l) = self.limit {
            if self.count > l {
                return Err(io::Error::other(format!(
                    "more data than the expected {l} bytes"
                )));
            }
        }
        Ok(n)
    }
}

/// A writer that only hashes, for digests of streams that are consumed elsewhere.
#[derive(Default)]
pub struct HashSink {
    hasher: Sha256,
}

impl HashSink {
    pub fn digest(self) -> String {
        format!("sha256:{}", hex(&self.hasher.finalize()))
    }
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim().bytes().filter(|&c| c != b'=') {
        let v = match B64.iter().position(|&x| x == c) {
            Some(v) => v as u32,
            None => bail!("invalid base64"),
        };
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in ["", "f", "fo", "foo", "user:pass", "a:b:c\u{e9}"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert!(base64_decode("a*b").is_err());
    }

    #[test]
    fn verifier_checks_size_and_digest() {
        let data = b"hello";
        let d = sha256_digest(data);
        Verifier::new(&data[..], Some(5))
            .finish("blob", &d, Some(5))
            .unwrap();
        let e = Verifier::new(&data[..], None)
            .finish("blob x", &d, Some(4))
            .unwrap_err();
        assert!(e.to_string().contains("blob x: size mismatch"));
        let e = Verifier::new(&b"hellO"[..], None)
            .finish("blob y", &d, Some(5))
            .unwrap_err();
        assert!(e.to_string().contains("blob y: digest mismatch"));
        assert!(Verifier::new(&data[..], Some(3))
            .finish("z", &d, Some(5))
            .is_err());
    }
}
