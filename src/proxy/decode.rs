//! Capped `Content-Encoding` decoding for bodies the proxy must inspect.
//!
//! A governed body is inspected decoded and forwarded decoded (the caller
//! drops `Content-Encoding`), so an encoding we cannot undo exactly is
//! refused rather than passed through unexamined (attacks.md G.49–51):
//!
//! - one coding only: `identity`, `gzip`/`x-gzip`, `deflate`, `br`, matched
//!   without regard to case; anything else is [`DecodeError::Unsupported`]
//!   and a list of several (`gzip, br`, even `identity, gzip`) is
//!   [`DecodeError::Stacked`];
//! - output is capped: decoders are read through `Read::take(limit + 1)`, so
//!   a decompression bomb stops after `limit + 1` bytes, never inflated whole;
//! - the compressed stream must be complete and end the body: truncated
//!   streams, bad checksums and trailing bytes are [`DecodeError::Corrupt`]
//!   (the policy would otherwise judge less than what was sent).

use bytes::Bytes;
use std::io::Read;

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A content coding we do not decode (lower-cased, sanitised, at most 32
    /// characters: it comes from a header and may end up in logs).
    #[error("unsupported content coding {0:?}")]
    Unsupported(String),
    /// More than one content coding.
    #[error("stacked content codings")]
    Stacked,
    /// The decoded body is larger than the limit.
    #[error("decoded body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The encoded data is invalid, truncated or followed by other bytes.
    #[error("corrupt body: {0}")]
    Corrupt(&'static str),
}

/// Decodes a body according to its `Content-Encoding` header value: absent,
/// empty or `identity` → unchanged (no copy); `gzip`/`x-gzip` (all members of
/// a multi-member file); `deflate` (zlib-wrapped as RFC 9110 says, or raw
/// deflate as some servers send and browsers accept); `br`. Any other coding,
/// or more than one, is an error. The decoded size is capped at `limit` bytes
/// without inflating more than `limit + 1` bytes; an identity body over the
/// limit is refused too. An empty body decodes to an empty body whatever the
/// coding (HEAD and 204 responses carry the header without data).
pub fn decode(
    content_encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, DecodeError> {
    let coding = Coding::parse(content_encoding)?;
    if coding == Coding::Identity || body.is_empty() {
        return if body.len() > limit {
            Err(DecodeError::TooLarge { limit })
        } else {
            Ok(body)
        };
    }
    let decoded = match coding {
        Coding::Gzip => gunzip(&body, limit)?,
        Coding::Deflate => inflate(&body, limit)?,
        Coding::Brotli => unbrotli(&body, limit)?,
        Coding::Identity => return Ok(body),
    };
    Ok(Bytes::from(decoded))
}

const TRAILING: &str = "data after the end of the compressed stream";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
}

impl Coding {
    fn parse(header: Option<&str>) -> Result<Self, DecodeError> {
        // A list may hold empty elements (RFC 9110 §5.6.1); they name nothing.
        let mut codings = header
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let Some(coding) = codings.next() else {
            return Ok(Self::Identity);
        };
        if codings.next().is_some() {
            return Err(DecodeError::Stacked);
        }
        match coding.to_ascii_lowercase().as_str() {
            "identity" => Ok(Self::Identity),
            "gzip" | "x-gzip" => Ok(Self::Gzip),
            "deflate" => Ok(Self::Deflate),
            "br" => Ok(Self::Brotli),
            other => Err(DecodeError::Unsupported(sanitise(other))),
        }
    }
}

/// Header text made safe to log: printable ASCII only, bounded length.
fn sanitise(coding: &str) -> String {
    coding
        .chars()
        .take(32)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// Reads a decoder to its end, or to `limit + 1` bytes, whichever is first.
fn read_capped(
    decoder: &mut impl Read,
    compressed_len: usize,
    limit: usize,
    corrupt: &'static str,
) -> Result<Vec<u8>, DecodeError> {
    let cap = u64::try_from(limit).map_or(u64::MAX, |l| l.saturating_add(1));
    // Most bodies shrink 2–10×; start there and let read_to_end grow.
    let hint = compressed_len.saturating_mul(4).min(limit).min(1 << 20);
    let mut out = Vec::with_capacity(hint);
    decoder
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|_| DecodeError::Corrupt(corrupt))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

/// gzip, all members; flate2 checks each CRC and size and refuses trailing
/// bytes that are not another member.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut decoder = flate2::bufread::MultiGzDecoder::new(body);
    read_capped(&mut decoder, body.len(), limit, "invalid gzip data")
}

fn inflate(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let (out, rest) = if is_zlib_header(body) {
        let mut decoder = flate2::bufread::ZlibDecoder::new(body);
        let out = read_capped(&mut decoder, body.len(), limit, "invalid zlib data")?;
        (out, decoder.get_ref().len())
    } else {
        let mut decoder = flate2::bufread::DeflateDecoder::new(body);
        let out = read_capped(&mut decoder, body.len(), limit, "invalid deflate data")?;
        (out, decoder.get_ref().len())
    };
    // flate2 stops at the end of the stream and leaves any rest unread.
    if rest != 0 {
        return Err(DecodeError::Corrupt(TRAILING));
    }
    Ok(out)
}

/// RFC 1950 header: CM 8 (deflate), window ≤ 32 KiB, check bits valid. Raw
/// deflate data cannot start like that unless its first block header bits
/// happen to match, in which case it is refused rather than guessed.
fn is_zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

fn unbrotli(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut decoder = brotli_decompressor::Decompressor::new(body, 4096);
    let out = read_capped(&mut decoder, body.len(), limit, "invalid brotli data")?;
    // After the stream ends, one more read reports bytes left in the
    // decoder's buffer; get_ref holds those it has not buffered yet.
    let mut probe = [0u8; 1];
    match decoder.read(&mut probe) {
        Ok(0) if decoder.get_ref().is_empty() => Ok(out),
        _ => Err(DecodeError::Corrupt(TRAILING)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use std::io::Write;
    use std::time::{Duration, Instant};

    const TEXT: &[u8] = br#"{"customer":{"ssn":"078-05-1120","card":"4111111111111111"}}"#;
    const MIB: usize = 1 << 20;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).expect("encode");
        encoder.finish().expect("encode")
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).expect("encode");
        encoder.finish().expect("encode")
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).expect("encode");
        encoder.finish().expect("encode")
    }

    /// A valid brotli stream made of uncompressed meta-blocks (RFC 7932
    /// §9.2): enough to test the decoder wiring without an encoder.
    fn brotli_stored(data: &[u8]) -> Vec<u8> {
        let mut bits = BitWriter::default();
        bits.push(0, 1); // WBITS = 16
        for chunk in data.chunks(1 << 16) {
            bits.push(0, 1); // ISLAST = 0
            bits.push(0, 2); // MNIBBLES = 4
            bits.push(chunk.len() as u64 - 1, 16); // MLEN - 1
            bits.push(1, 1); // ISUNCOMPRESSED
            bits.align();
            bits.bytes.extend_from_slice(chunk);
        }
        bits.push(1, 1); // ISLAST
        bits.push(1, 1); // ISLASTEMPTY
        bits.align();
        bits.bytes
    }

    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        used: u32,
    }

    impl BitWriter {
        fn push(&mut self, value: u64, width: u32) {
            for i in 0..width {
                if self.used == 0 {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                *self.bytes.last_mut().expect("a byte was pushed") |= bit << self.used;
                self.used = (self.used + 1) % 8;
            }
        }

        fn align(&mut self) {
            self.used = 0;
        }
    }

    fn dec(coding: &str, body: Vec<u8>, limit: usize) -> Result<Bytes, DecodeError> {
        decode(Some(coding), Bytes::from(body), limit)
    }

    #[test]
    fn identity_is_unchanged_without_a_copy() {
        let body = Bytes::from_static(TEXT);
        for header in [
            None,
            Some(""),
            Some(" "),
            Some("identity"),
            Some("Identity"),
            Some(" , "),
        ] {
            let out = decode(header, body.clone(), MIB).expect("decodes");
            assert_eq!(out.as_ptr(), body.as_ptr(), "{header:?}");
            assert_eq!(out, body);
        }
        assert_eq!(
            decode(None, body.clone(), TEXT.len() - 1),
            Err(DecodeError::TooLarge {
                limit: TEXT.len() - 1
            })
        );
        assert!(decode(None, body, TEXT.len()).is_ok());
    }

    #[test]
    fn gzip_round_trips() {
        assert_eq!(dec("gzip", gzip(TEXT), MIB).expect("decodes"), TEXT);
        assert_eq!(dec("x-gzip", gzip(TEXT), MIB).expect("decodes"), TEXT);
        // Multi-member files decode whole, as gzip(1) does.
        let mut two = gzip(b"{\"a\":");
        two.extend(gzip(b"1}"));
        assert_eq!(dec("gzip", two, MIB).expect("decodes"), &b"{\"a\":1}"[..]);
    }

    #[test]
    fn deflate_round_trips_zlib_and_raw() {
        assert_eq!(dec("deflate", zlib(TEXT), MIB).expect("decodes"), TEXT);
        assert_eq!(
            dec("deflate", raw_deflate(TEXT), MIB).expect("decodes"),
            TEXT
        );
    }

    #[test]
    fn brotli_round_trips() {
        assert_eq!(dec("br", brotli_stored(TEXT), MIB).expect("decodes"), TEXT);
        let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            dec("br", brotli_stored(&large), MIB).expect("decodes"),
            large
        );
        // A compressed stream from brotli-decompressor's own test suite.
        let ten_x_ten_y = vec![
            0x1b, 0x13, 0x00, 0x00, 0xa4, 0xb0, 0xb2, 0xea, 0x81, 0x47, 0x02, 0x8a,
        ];
        assert_eq!(
            dec("br", ten_x_ten_y, MIB).expect("decodes"),
            &b"XXXXXXXXXXYYYYYYYYYY"[..]
        );
    }

    #[test]
    fn codings_are_case_insensitive_and_trimmed() {
        assert_eq!(dec("GZIP", gzip(TEXT), MIB).expect("decodes"), TEXT);
        assert_eq!(dec(" Deflate ", zlib(TEXT), MIB).expect("decodes"), TEXT);
        assert_eq!(dec("BR", brotli_stored(TEXT), MIB).expect("decodes"), TEXT);
        assert_eq!(dec("gzip,", gzip(TEXT), MIB).expect("decodes"), TEXT);
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 * MIB]);
        assert_eq!(
            dec("gzip", bomb, MIB),
            Err(DecodeError::TooLarge { limit: MIB })
        );
        let bomb = zlib(&vec![0u8; 10 * MIB]);
        assert_eq!(
            dec("deflate", bomb, MIB),
            Err(DecodeError::TooLarge { limit: MIB })
        );
        let big = brotli_stored(&vec![0u8; MIB + 1]);
        assert_eq!(
            dec("br", big, MIB),
            Err(DecodeError::TooLarge { limit: MIB })
        );
    }

    #[test]
    fn bomb_is_not_inflated_whole() {
        // 8192 gzip members of 1 MiB of zeros: 8 GiB from ~8 MB of input,
        // which would take far longer than the bound to inflate whole.
        let member = gzip(&vec![0u8; MIB]);
        let bomb = member.repeat(8192);
        let start = Instant::now();
        assert_eq!(
            dec("gzip", bomb, MIB),
            Err(DecodeError::TooLarge { limit: MIB })
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "took {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn exact_limit_is_accepted() {
        let data = vec![7u8; 4096];
        assert_eq!(dec("gzip", gzip(&data), 4096).expect("decodes").len(), 4096);
        assert_eq!(
            dec("gzip", gzip(&data), 4095),
            Err(DecodeError::TooLarge { limit: 4095 })
        );
    }

    #[test]
    fn unknown_codings_are_refused() {
        for coding in ["compress", "zstd", "x-compress", "gzip;q=1", "dcb"] {
            assert!(
                matches!(
                    dec(coding, gzip(TEXT), MIB),
                    Err(DecodeError::Unsupported(_))
                ),
                "{coding}"
            );
        }
        assert_eq!(
            dec("ZSTD", vec![1], MIB),
            Err(DecodeError::Unsupported("zstd".into()))
        );
        let Err(DecodeError::Unsupported(shown)) =
            dec(&format!("a\u{7f}{}", "b".repeat(100)), vec![1], MIB)
        else {
            panic!("expected Unsupported");
        };
        assert_eq!(shown.len(), 32);
        assert!(shown.starts_with("a?b"));
    }

    #[test]
    fn stacked_codings_are_refused() {
        for coding in [
            "gzip, br",
            "gzip,gzip",
            "identity, gzip",
            "gzip, identity",
            "zstd, gzip",
        ] {
            assert_eq!(
                dec(coding, gzip(TEXT), MIB),
                Err(DecodeError::Stacked),
                "{coding}"
            );
        }
    }

    #[test]
    fn corrupt_data_is_refused() {
        assert!(matches!(
            dec("gzip", TEXT.to_vec(), MIB),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            dec("deflate", TEXT.to_vec(), MIB),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            dec("br", TEXT.to_vec(), MIB),
            Err(DecodeError::Corrupt(_))
        ));
        // Not decodable as the declared coding, even though it is another one.
        assert!(matches!(
            dec("gzip", zlib(TEXT), MIB),
            Err(DecodeError::Corrupt(_))
        ));
        let mut bad_crc = gzip(TEXT);
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        assert!(matches!(
            dec("gzip", bad_crc, MIB),
            Err(DecodeError::Corrupt(_))
        ));
        let mut bad_adler = zlib(TEXT);
        let last = bad_adler.len() - 1;
        bad_adler[last] ^= 1;
        assert!(matches!(
            dec("deflate", bad_adler, MIB),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn truncated_streams_are_refused() {
        let cases = [
            ("gzip", gzip(TEXT)),
            ("deflate", zlib(TEXT)),
            ("deflate", raw_deflate(TEXT)),
            ("br", brotli_stored(TEXT)),
        ];
        for (coding, full) in cases {
            for cut in [full.len() - 1, full.len() / 2, 1] {
                let result = dec(coding, full[..cut].to_vec(), MIB);
                assert!(
                    matches!(result, Err(DecodeError::Corrupt(_))),
                    "{coding} cut at {cut}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let cases = [
            ("gzip", gzip(TEXT)),
            ("deflate", zlib(TEXT)),
            ("deflate", raw_deflate(TEXT)),
            ("br", brotli_stored(TEXT)),
        ];
        for (coding, mut body) in cases {
            body.extend_from_slice(br#"{"ssn":"x"}"#);
            let result = dec(coding, body, MIB);
            assert!(
                matches!(result, Err(DecodeError::Corrupt(_))),
                "{coding}: {result:?}"
            );
        }
        // Beyond the brotli decoder's 4 KiB input buffer too.
        let mut body = brotli_stored(&vec![b'a'; 10_000]);
        body.extend_from_slice(&[0u8; 5000]);
        assert!(matches!(dec("br", body, MIB), Err(DecodeError::Corrupt(_))));
    }

    #[test]
    fn empty_body_stays_empty() {
        for coding in ["gzip", "deflate", "br"] {
            assert_eq!(dec(coding, Vec::new(), MIB).expect("decodes"), Bytes::new());
        }
    }
}
