//! Layer decompression, chosen by the stream's magic bytes rather than the media type, so that
//! mislabelled layers (common in the wild) still unpack and hostile ones can't pick a decoder.
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read};

/// The tar crate quotes raw header bytes in some errors; keep the one-line, printable start.
pub fn tar_error(e: std::io::Error) -> anyhow::Error {
    let text = e.to_string();
    let first: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    anyhow::anyhow!("not a valid tar stream ({first})")
}

pub fn decompress<'a, R: Read + 'a>(r: R) -> Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf().context("reading layer")?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = ruzstd::decoding::StreamingDecoder::new(br)
            .map_err(|e| anyhow::anyhow!("zstd: {e}"))?;
        Ok(Box::new(d))
    } else {
        Ok(Box::new(br))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_and_plain() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"hello tar").unwrap();
        let gz = e.finish().unwrap();
        let mut out = String::new();
        decompress(&gz[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello tar");
        out.clear();
        decompress(&b"plain"[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "plain");
        out.clear();
        decompress(&b""[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "");
    }

    #[test]
    fn zstd_frame() {
        // "hi\n" compressed by zstd(1) -19: a raw-block frame with a content checksum.
        let z = [
            0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x68, 0x19, 0x00, 0x00, 0x68, 0x69, 0x0a, 0x34, 0x3d,
            0x50, 0x92,
        ];
        let mut out = String::new();
        decompress(&z[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hi\n");
    }
}
