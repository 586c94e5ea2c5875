//! Compression of stored-event state: zlib (the format eventsourcing writes
//! with Python's `zlib.compress`) and zstd (esox's option for large states:
//! from a few KiB up it compresses about 4x faster than zlib and smaller;
//! below that its per-frame set-up makes it slower than `fixed`).
//!
//! zlib is done with libdeflate, which compresses a whole buffer at once and
//! has no per-stream state to clear: on event-sized states it is several
//! times faster than zlib or zlib-rs, whose set-up dominates at that size.
//! States of up to 1 KiB are written by `fixed`, cheaper still (and faster
//! to read back): one block with deflate's fixed Huffman code.
//! Every state is compressed (no size threshold), so the stored bytes are
//! always one self-describing zlib stream (first byte 0x78) or zstd frame
//! (magic number 28 b5 2f fd), as eventsourcing expects.
//!
//! Nothing here touches Python: the mapper runs it with the GIL released.

pub(crate) mod fixed;

use std::cell::RefCell;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{error, ErrorKind};

/// Python's `zlib.compress` default level.
const ZLIB_LEVEL: i32 = 6;
/// States up to this size are written with the fixed Huffman code (see
/// `fixed`); larger ones by libdeflate, whose per-block codes then pay off.
const FIXED_MAX: usize = 1024;
/// zstd's default level.
const ZSTD_LEVEL: i32 = 3;
/// Deflate expands at most 1032:1, so no valid stream decompresses to more.
const DEFLATE_MAX_RATIO: usize = 1032;
/// The largest state decompression produces unless told otherwise: far
/// above real events, far below what would exhaust a machine's memory.
pub const DEFAULT_MAX_SIZE: usize = 64 * 1024 * 1024;

/// A compression format of stored-event state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Zlib,
    Zstd,
}

thread_local! {
    static DEFLATE: RefCell<Option<libdeflater::Compressor>> = const { RefCell::new(None) };
    static INFLATE: RefCell<Option<libdeflater::Decompressor>> = const { RefCell::new(None) };
    static ZSTD_C: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static ZSTD_D: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's `T`, made on first use and then kept.
fn with_cached<T, R>(
    cell: &'static std::thread::LocalKey<RefCell<Option<T>>>,
    make: impl FnOnce() -> Result<T, String>,
    f: impl FnOnce(&mut T) -> Result<R, String>,
) -> Result<R, String> {
    cell.with(|slot| {
        // A re-entrant call cannot happen (no callbacks), but be safe: use a
        // fresh one rather than panic if the slot is in use.
        match slot.try_borrow_mut() {
            Ok(mut slot) => {
                if slot.is_none() {
                    *slot = Some(make()?);
                }
                match slot.as_mut() {
                    Some(value) => f(value),
                    None => Err("no codec context".to_owned()),
                }
            }
            Err(_) => f(&mut make()?),
        }
    })
}

impl Codec {
    /// The compressed form of `data`.
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Codec::Zlib if data.len() <= FIXED_MAX => Ok(fixed::zlib_fixed(data)),
            Codec::Zlib => with_cached(
                &DEFLATE,
                || {
                    let level = libdeflater::CompressionLvl::new(ZLIB_LEVEL)
                        .map_err(|e| format!("zlib level: {e:?}"))?;
                    Ok(libdeflater::Compressor::new(level))
                },
                |c| {
                    let mut out = vec![0u8; c.zlib_compress_bound(data.len())];
                    let n = c
                        .zlib_compress(data, &mut out)
                        .map_err(|e| format!("zlib: {e}"))?;
                    out.truncate(n);
                    Ok(out)
                },
            ),
            Codec::Zstd => with_cached(
                &ZSTD_C,
                || zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| format!("zstd: {e}")),
                |c| c.compress(data).map_err(|e| format!("zstd: {e}")),
            ),
        }
    }

    /// The data that `compressed` holds, or why it could not be read. Never
    /// more than `max_size` bytes, whatever the input declares: a larger
    /// state is an error, and no buffer is sized by the input beyond that.
    pub fn decompress(self, compressed: &[u8], max_size: usize) -> Result<Vec<u8>, String> {
        match self {
            Codec::Zlib => inflate(compressed, max_size),
            Codec::Zstd => unzstd(compressed, max_size),
        }
    }
}

/// The error of a state that decompresses past `max_size`.
fn too_large(codec: &str, max_size: usize) -> String {
    format!(
        "the {codec} state decompresses to more than {max_size} bytes, the \
         maximum state size (a corrupt or forged state; if it is genuine, raise \
         MAX_STATE_SIZE)"
    )
}

/// A zeroed buffer of `size` bytes, or an error if memory is short.
fn zeroed(size: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    out.try_reserve_exact(size)
        .map_err(|_| format!("out of memory for a {size}-byte state"))?;
    out.resize(size, 0);
    Ok(out)
}

fn inflate(compressed: &[u8], max_size: usize) -> Result<Vec<u8>, String> {
    // A zlib stream begins with a two-byte header whose 16-bit value is a
    // multiple of 31 and whose method is deflate (8).
    match compressed {
        [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 => {
        }
        [] => return Err("zlib data is empty".to_owned()),
        _ => return Err("not zlib data (bad header)".to_owned()),
    }
    // One byte over the maximum tells a state that is too large from one
    // that fills the buffer exactly.
    let deflate_limit = compressed.len().saturating_mul(DEFLATE_MAX_RATIO) + 64;
    let limit = deflate_limit.min(max_size.saturating_add(1));
    let mut size = compressed
        .len()
        .saturating_mul(4)
        .saturating_add(256)
        .min(limit);
    with_cached(
        &INFLATE,
        || Ok(libdeflater::Decompressor::new()),
        |d| loop {
            let mut out = zeroed(size)?;
            match d.zlib_decompress(compressed, &mut out) {
                Ok(n) if n > max_size => return Err(too_large("zlib", max_size)),
                Ok(n) => {
                    out.truncate(n);
                    return Ok(out);
                }
                Err(libdeflater::DecompressionError::InsufficientSpace) if size < limit => {
                    size = size.saturating_mul(4).min(limit);
                }
                Err(libdeflater::DecompressionError::InsufficientSpace)
                    if limit < deflate_limit =>
                {
                    return Err(too_large("zlib", max_size))
                }
                Err(libdeflater::DecompressionError::InsufficientSpace) => {
                    return Err("zlib data is corrupt (decompresses past the deflate limit)".into())
                }
                Err(libdeflater::DecompressionError::BadData) => {
                    return Err("zlib data is corrupt or truncated".to_owned())
                }
            }
        },
    )
}

fn unzstd(compressed: &[u8], max_size: usize) -> Result<Vec<u8>, String> {
    let declared = zstd::zstd_safe::get_frame_content_size(compressed)
        .map_err(|_| "not zstd data (bad frame header)".to_owned())?;
    // A declared size is only a hint, and never believed past the maximum.
    let limit = max_size.saturating_add(1);
    let mut size = match declared {
        Some(n) if n > max_size as u64 => {
            return Err(format!(
                "{} (its header declares {n} bytes)",
                too_large("zstd", max_size)
            ))
        }
        Some(n) => n as usize,
        None => compressed
            .len()
            .saturating_mul(4)
            .saturating_add(256)
            .min(limit),
    };
    with_cached(
        &ZSTD_D,
        || zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}")),
        |d| loop {
            let mut out = Vec::new();
            out.try_reserve_exact(size)
                .map_err(|_| format!("out of memory for a {size}-byte state"))?;
            match d.decompress_to_buffer(compressed, &mut out) {
                Ok(n) if n > max_size => return Err(too_large("zstd", max_size)),
                Ok(_) => return Ok(out),
                // Too small: only when no size was declared.
                Err(e) if declared.is_none() && is_too_small(&e) => {
                    if size >= limit {
                        return Err(too_large("zstd", max_size));
                    }
                    size = size.saturating_mul(4).min(limit);
                }
                Err(e) => return Err(format!("zstd data is corrupt or truncated ({e})")),
            }
        },
    )
}

fn is_too_small(e: &std::io::Error) -> bool {
    e.to_string().contains("too small")
}

fn run<'py>(
    py: Python<'py>,
    data: &[u8],
    f: impl FnOnce() -> Result<Vec<u8>, String> + Send,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = if data.len() >= crate::mapper::DETACH_BYTES {
        py.detach(|| crate::mapper::no_panic(f))
    } else {
        crate::mapper::no_panic(f)
    };
    match out {
        Ok(bytes) => Ok(PyBytes::new(py, &bytes)),
        Err(message) => Err(error(py, ErrorKind::MapperDeserialisation, message)),
    }
}

/// `zlib.compress(data)` (level 6), done natively.
#[pyfunction]
pub fn zlib_compress<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    run(py, data, || Codec::Zlib.compress(data))
}

/// `zlib.decompress(data)`, done natively; MapperDeserialisationError if
/// corrupt or larger than `max_size`.
#[pyfunction]
#[pyo3(signature = (data, max_size = DEFAULT_MAX_SIZE))]
pub fn zlib_decompress<'py>(
    py: Python<'py>,
    data: &[u8],
    max_size: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    run(py, data, || Codec::Zlib.decompress(data, max_size))
}

/// One zstd frame (level 3) holding `data`.
#[pyfunction]
pub fn zstd_compress<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    run(py, data, || Codec::Zstd.compress(data))
}

/// The data a zstd frame holds; MapperDeserialisationError if corrupt or
/// larger than `max_size`.
#[pyfunction]
#[pyo3(signature = (data, max_size = DEFAULT_MAX_SIZE))]
pub fn zstd_decompress<'py>(
    py: Python<'py>,
    data: &[u8],
    max_size: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    run(py, data, || Codec::Zstd.decompress(data, max_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_codecs_round_trip_every_size() {
        for codec in [Codec::Zlib, Codec::Zstd] {
            for len in [0usize, 1, 10, 100, 1000, 100_000] {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 % 13) as u8 + b'a').collect();
                let packed = codec.compress(&data).unwrap();
                assert_eq!(
                    codec.decompress(&packed, DEFAULT_MAX_SIZE).unwrap(),
                    data,
                    "{codec:?} {len}"
                );
            }
        }
    }

    #[test]
    fn zlib_output_is_a_zlib_stream_and_highly_compressible_data_grows_back() {
        let data = vec![b'x'; 5_000_000];
        let packed = Codec::Zlib.compress(&data).unwrap();
        assert_eq!(packed[0], 0x78);
        assert!(packed.len() < 10_000);
        assert_eq!(
            Codec::Zlib.decompress(&packed, DEFAULT_MAX_SIZE).unwrap(),
            data
        );
    }

    #[test]
    fn corrupt_and_truncated_data_is_refused_without_panicking() {
        for codec in [Codec::Zlib, Codec::Zstd] {
            let packed = codec.compress(b"hello hello hello hello").unwrap();
            for cut in 0..packed.len() {
                let _ = codec.decompress(&packed[..cut], DEFAULT_MAX_SIZE);
            }
            for i in 0..packed.len() {
                for bit in 0..8 {
                    let mut bad = packed.clone();
                    bad[i] ^= 1 << bit;
                    let _ = codec.decompress(&bad, DEFAULT_MAX_SIZE);
                }
            }
            assert!(codec.decompress(b"", DEFAULT_MAX_SIZE).is_err());
            // Never more than the maximum, exactly the maximum is fine.
            let data = vec![b'y'; 100_000];
            let packed = codec.compress(&data).unwrap();
            assert_eq!(codec.decompress(&packed, 100_000).unwrap(), data);
            assert!(codec
                .decompress(&packed, 99_999)
                .unwrap_err()
                .contains("more than 99999 bytes"));
            assert!(codec
                .decompress(b"not compressed at all", DEFAULT_MAX_SIZE)
                .is_err());
        }
    }
}
