//! Report bodies: `Content-Encoding` gzip / deflate (zlib or raw) / identity, decompressed with
//! a hard cap so that a small compressed body cannot expand into gigabytes. The wire size is
//! capped before this runs (`api.rs` stops reading past the limit).

use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};
use std::borrow::Cow;
use std::io::Read;

#[derive(Debug, PartialEq)]
pub enum BodyError {
    /// Over the decompressed cap (bytes).
    TooLarge(usize),
    /// Not valid data for its declared encoding.
    Corrupt(String),
    /// An encoding this server does not speak.
    Unsupported(String),
}

fn inflate(reader: impl Read, max: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    // Read one byte past the cap: reaching it proves the body is too large.
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Corrupt(e.to_string()))?;
    if out.len() > max {
        return Err(BodyError::TooLarge(max));
    }
    Ok(out)
}

/// The body as plain bytes, at most `max` of them.
pub fn decode<'a>(
    raw: &'a [u8],
    content_encoding: Option<&str>,
    max: usize,
) -> Result<Cow<'a, [u8]>, BodyError> {
    let enc = content_encoding
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match enc.as_str() {
        "" | "identity" => {
            if raw.len() > max {
                Err(BodyError::TooLarge(max))
            } else {
                Ok(Cow::Borrowed(raw))
            }
        }
        "gzip" | "x-gzip" => inflate(GzDecoder::new(raw), max).map(Cow::Owned),
        // HTTP's "deflate" is zlib-wrapped, but some clients send raw deflate: accept both.
        "deflate" => {
            let zlib = raw.len() >= 2 && (u16::from(raw[0]) << 8 | u16::from(raw[1])) % 31 == 0;
            if zlib {
                inflate(ZlibDecoder::new(raw), max).map(Cow::Owned)
            } else {
                inflate(DeflateDecoder::new(raw), max).map(Cow::Owned)
            }
        }
        other => Err(BodyError::Unsupported(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_deflate_round_trip_under_the_cap() {
        let data = b"{\"a\": 1}".repeat(10);
        assert_eq!(decode(&gz(&data), Some("gzip"), 1000).unwrap(), &data[..]);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&data).unwrap();
        assert_eq!(
            decode(&z.finish().unwrap(), Some("Deflate"), 1000).unwrap(),
            &data[..]
        );
        assert_eq!(decode(&data, None, 1000).unwrap(), &data[..]);
    }

    #[test]
    fn bombs_stop_at_the_cap_and_garbage_is_corrupt() {
        let bomb = gz(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20 * 1024);
        assert_eq!(
            decode(&bomb, Some("gzip"), 64 * 1024),
            Err(BodyError::TooLarge(64 * 1024))
        );
        assert!(matches!(
            decode(b"not gzip", Some("gzip"), 100),
            Err(BodyError::Corrupt(_))
        ));
        assert!(matches!(
            decode(b"x", Some("br"), 100),
            Err(BodyError::Unsupported(_))
        ));
        assert_eq!(decode(&[0u8; 10], None, 5), Err(BodyError::TooLarge(5)));
    }
}
