//! Dict keys read by the decoder, interned and cached across calls: the
//! events of one class share their attribute names, and attribute lookups on
//! decoded events compare interned strings by pointer.

use std::sync::{Mutex, MutexGuard, TryLockError};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Interned dict keys, shared by all decoders (direct-mapped by hash).
pub struct KeyCache {
    slots: Vec<Option<CachedKey>>,
}

struct CachedKey {
    bytes: Box<[u8]>,
    string: Py<PyString>,
}

const KEY_SLOTS: usize = 2048;
pub const MAX_CACHED_KEY: usize = 64;

static KEYS: Mutex<KeyCache> = Mutex::new(KeyCache { slots: Vec::new() });

/// A cheap hash of a key from (at most) three overlapping words of it; a
/// collision only costs a cache miss.
fn key_hash(bytes: &[u8]) -> usize {
    let n = bytes.len();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            bytes[at..at + 4].try_into().unwrap_or([0; 4]),
        ))
    };
    let (a, b, c) = match n {
        16.. => (word(0), word(n / 2 - 4), word(n - 8)),
        8.. => (word(0), 0, word(n - 8)),
        4.. => (half(0), 0, half(n - 4)),
        1.. => (
            u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16,
            0,
            0,
        ),
        0 => (0, 0, 0),
    };
    let hash = (a ^ (n as u64) << 56).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ c.wrapping_mul(0x1656_67b1_9e37_79f9);
    (hash ^ hash >> 29) as usize
}

/// The shared cache, unless another thread (or an outer decode on this one)
/// holds it. Never waits: the holder may be waiting for the GIL.
pub fn try_lock_keys() -> Option<MutexGuard<'static, KeyCache>> {
    match KEYS.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Builds a str from UTF-8 known to be valid (`ascii`: all bytes < 0x80).
pub fn new_str<'py>(py: Python<'py>, bytes: &[u8], ascii: bool) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: a new str of the right size and kind is filled before use.
    unsafe {
        let ptr = if ascii {
            let ptr = ffi::PyUnicode_New(bytes.len() as ffi::Py_ssize_t, 127);
            if !ptr.is_null() {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    ffi::PyUnicode_DATA(ptr) as *mut u8,
                    bytes.len(),
                );
            }
            ptr
        } else {
            ffi::PyUnicode_DecodeUTF8(
                bytes.as_ptr().cast(),
                bytes.len() as ffi::Py_ssize_t,
                std::ptr::null(),
            )
        };
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// The interned str of `bytes`, from the cache when it is there.
pub fn cached_key<'py>(
    py: Python<'py>,
    keys: &mut KeyCache,
    bytes: &[u8],
    ascii: bool,
) -> PyResult<Bound<'py, PyString>> {
    if keys.slots.is_empty() {
        keys.slots.resize_with(KEY_SLOTS, || None);
    }
    let slot = &mut keys.slots[key_hash(bytes) % KEY_SLOTS];
    if let Some(cached) = slot {
        if &*cached.bytes == bytes {
            return Ok(cached.string.bind(py).clone());
        }
    }
    let string = new_str(py, bytes, ascii)?;
    let mut ptr = string.into_ptr();
    // SAFETY: `ptr` is an owned, exact str; interning may replace it.
    let string = unsafe {
        ffi::PyUnicode_InternInPlace(&mut ptr);
        Bound::from_owned_ptr(py, ptr).cast_into_unchecked::<PyString>()
    };
    *slot = Some(CachedKey {
        bytes: bytes.into(),
        string: string.clone().unbind(),
    });
    Ok(string)
}
