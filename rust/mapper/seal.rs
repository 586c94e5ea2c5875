//! Compression then encryption of encoded states, and the reverse, for a
//! whole batch at a time.
//!
//! esox's own compressors (`ZlibCompressor`, `ZstdCompressor`) and cipher
//! (`AESCipher`) are recognised by their exact class and run natively: the
//! byte work of a batch is done in one go with the GIL released. Any other
//! compressor or cipher object is called through its Python methods, one
//! state at a time, with the GIL held.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::to_bytes;
use crate::binding::bindings;
use crate::cipher::{AesGcm, Keys};
use crate::compress::Codec;
use crate::errors::{error, ErrorKind};

/// Below this many bytes of byte work, the GIL is kept: releasing and
/// re-taking it would cost more than the work.
pub const DETACH_BYTES: usize = 16 * 1024;

/// Runs byte work, turning a panic into an error message (none is known to
/// be possible; this keeps one from ever reaching Python).
pub fn no_panic<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(format!("internal error in esox ({what})"))
    })
}

/// Runs `f` without the GIL if the work is large enough to be worth it.
fn detached<T: Send>(
    py: Python<'_>,
    bytes: usize,
    f: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    if bytes >= DETACH_BYTES {
        py.detach(|| no_panic(f))
    } else {
        no_panic(f)
    }
}

pub enum Compressor {
    /// A codec and the most bytes a state may decompress to.
    Native(Codec, usize),
    Python(Py<PyAny>),
}

pub enum Cipher {
    /// Keys, and whether each state is bound to its event (associated data).
    Native(Arc<Keys>, bool),
    Python(Py<PyAny>),
}

impl Compressor {
    /// Native for exactly esox's `ZlibCompressor` and `ZstdCompressor`.
    pub fn new(obj: &Bound<'_, PyAny>) -> PyResult<Compressor> {
        let py = obj.py();
        let bound = bindings(py)?;
        let (zlib, zstd) = (&bound.zlib_compressor, &bound.zstd_compressor);
        let cls = obj.get_type();
        let max_size = || -> PyResult<usize> {
            match obj.getattr_opt(intern!(py, "max_size"))? {
                Some(size) => size.extract(),
                None => Ok(crate::compress::DEFAULT_MAX_SIZE),
            }
        };
        Ok(if cls.is(zlib.bind(py)) {
            Compressor::Native(Codec::Zlib, max_size()?)
        } else if cls.is(zstd.bind(py)) {
            Compressor::Native(Codec::Zstd, max_size()?)
        } else {
            Compressor::Python(obj.clone().unbind())
        })
    }
}

impl Cipher {
    /// Native for an `_core.AesGcm`, or exactly esox's `AESCipher` (whose
    /// `_aead` is one).
    pub fn new(obj: &Bound<'_, PyAny>) -> PyResult<Cipher> {
        let py = obj.py();
        if let Ok(aead) = obj.cast::<AesGcm>() {
            return Ok(Cipher::Native(aead.get().keys.clone(), false));
        }
        let aes_cipher = &bindings(py)?.aes_cipher;
        let bind = match obj.getattr_opt(intern!(py, "bind_event"))? {
            Some(bind) => bind.is_truthy()?,
            None => false,
        };
        if obj.get_type().is(aes_cipher.bind(py)) {
            if let Ok(aead) = obj.getattr(intern!(py, "_aead")) {
                if let Ok(aead) = aead.cast::<AesGcm>() {
                    return Ok(Cipher::Native(aead.get().keys.clone(), bind));
                }
            }
        }
        if bind {
            return Err(error(
                py,
                ErrorKind::Persistence,
                "CIPHER_BIND_EVENT needs esox's own AESCipher (this cipher is a \
                 subclass or another class, which the mapper calls without the event)",
            ));
        }
        Ok(Cipher::Python(obj.clone().unbind()))
    }
}

/// A batch of states between steps.
enum Batch<'a, 'py> {
    Borrowed(Vec<&'a [u8]>),
    Owned(Vec<Vec<u8>>),
    Python(Vec<Bound<'py, PyBytes>>),
}

impl<'py> Batch<'_, 'py> {
    fn slices(&self) -> Vec<&[u8]> {
        match self {
            Batch::Borrowed(items) => items.clone(),
            Batch::Owned(items) => items.iter().map(Vec::as_slice).collect(),
            Batch::Python(items) => items.iter().map(|b| b.as_bytes()).collect(),
        }
    }

    fn into_python(self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        match self {
            Batch::Borrowed(items) => items.into_iter().map(|b| PyBytes::new(py, b)).collect(),
            Batch::Owned(items) => items.iter().map(|b| PyBytes::new(py, b)).collect(),
            Batch::Python(items) => items,
        }
    }
}

/// Why a stored state could not be decrypted or decompressed.
pub struct UnsealError {
    pub problem: &'static str,
    pub cause: Cause,
}

pub enum Cause {
    Python(PyErr),
    Native(String),
}

pub const DECRYPT: &str = "could not decrypt state";
const DECOMPRESS: &str = "could not decompress state";

/// The states of a batch after decryption and decompression: those of the
/// events before the first failure, and that failure with its index.
pub struct Unsealed<'a, 'py> {
    batch: Batch<'a, 'py>,
    pub failure: Option<(usize, UnsealError)>,
}

impl Unsealed<'_, '_> {
    pub fn states(&self) -> Vec<&[u8]> {
        self.batch.slices()
    }
}

/// The compressor and cipher of a mapper, native where possible.
pub struct Sealing {
    pub compressor: Option<Compressor>,
    pub cipher: Option<Cipher>,
}

fn call_bytes<'py>(
    obj: &Py<PyAny>,
    py: Python<'py>,
    method: &Bound<'py, pyo3::types::PyString>,
    data: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    obj.bind(py)
        .call_method1(method, (PyBytes::new(py, data),))
        .and_then(to_bytes)
}

impl Sealing {
    pub fn is_plain(&self) -> bool {
        self.compressor.is_none() && self.cipher.is_none()
    }

    /// Whether states are bound to their events (`CIPHER_BIND_EVENT`): then
    /// `seal` and `unseal` take each event's associated data.
    pub fn binds(&self) -> bool {
        matches!(self.cipher, Some(Cipher::Native(_, true)))
    }

    /// Compresses then encrypts each state (with its event's associated
    /// data from `aads`, when binding; `aads` is empty otherwise).
    pub fn seal<'py>(
        &self,
        py: Python<'py>,
        states: Vec<&[u8]>,
        aads: &[Vec<u8>],
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let total: usize = states.iter().map(|s| s.len()).sum();
        let fail = |e: String| {
            error(
                py,
                ErrorKind::Persistence,
                format!("cannot seal state: {e}"),
            )
        };
        // The common configurations, in one pass without the GIL.
        match (&self.compressor, &self.cipher) {
            (Some(Compressor::Native(codec, _)), Some(Cipher::Native(keys, _))) => {
                let sealed = detached(py, total, || {
                    let packed = states
                        .iter()
                        .map(|s| codec.compress(s))
                        .collect::<Result<Vec<_>, _>>()?;
                    let slices: Vec<&[u8]> = packed.iter().map(Vec::as_slice).collect();
                    keys.encrypt_all(&slices, aads)
                })
                .map_err(fail)?;
                return Ok(Batch::Owned(sealed).into_python(py));
            }
            (None, None) => return Ok(Batch::Borrowed(states).into_python(py)),
            _ => {}
        }
        let mut batch = Batch::Borrowed(states);
        if let Some(compressor) = &self.compressor {
            batch = match compressor {
                Compressor::Native(codec, _) => {
                    let slices = batch.slices();
                    let packed = detached(py, total, || {
                        slices.iter().map(|s| codec.compress(s)).collect()
                    })
                    .map_err(fail)?;
                    Batch::Owned(packed)
                }
                Compressor::Python(obj) => {
                    let method = intern!(py, "compress");
                    Batch::Python(
                        batch
                            .slices()
                            .into_iter()
                            .map(|s| call_bytes(obj, py, method, s))
                            .collect::<PyResult<_>>()?,
                    )
                }
            };
        }
        if let Some(cipher) = &self.cipher {
            batch = match cipher {
                Cipher::Native(keys, _) => {
                    let slices = batch.slices();
                    Batch::Owned(
                        detached(py, total, || keys.encrypt_all(&slices, aads)).map_err(fail)?,
                    )
                }
                Cipher::Python(obj) => {
                    let method = intern!(py, "encrypt");
                    Batch::Python(
                        batch
                            .slices()
                            .into_iter()
                            .map(|s| call_bytes(obj, py, method, s))
                            .collect::<PyResult<_>>()?,
                    )
                }
            };
        }
        Ok(batch.into_python(py))
    }

    /// Decrypts (with each event's associated data from `aads`, when
    /// binding) then decompresses each state, stopping at the first failure.
    pub fn unseal<'a, 'py>(
        &self,
        py: Python<'py>,
        states: Vec<&'a [u8]>,
        aads: &[Vec<u8>],
    ) -> Unsealed<'a, 'py> {
        let total: usize = states.iter().map(|s| s.len()).sum();
        let mut failure: Option<(usize, UnsealError)> = None;
        let mut batch = Batch::Borrowed(states);
        if self.is_plain() {
            return Unsealed { batch, failure };
        }
        if let (Some(Compressor::Native(codec, max_size)), Some(Cipher::Native(keys, _))) =
            (&self.compressor, &self.cipher)
        {
            let slices = batch.slices();
            let (done, failed) = detached(py, total, || {
                let mut done = Vec::with_capacity(slices.len());
                for (i, sealed) in slices.iter().enumerate() {
                    let packed = match keys.decrypt(sealed, aad(aads, i)) {
                        Ok(packed) => packed,
                        Err(e) => return Ok((done, Some((i, DECRYPT, e)))),
                    };
                    match codec.decompress(&packed, *max_size) {
                        Ok(state) => done.push(state),
                        Err(e) => return Ok((done, Some((i, DECOMPRESS, e)))),
                    }
                }
                Ok((done, None))
            })
            .unwrap_or_else(|e| (Vec::new(), Some((0, DECRYPT, e))));
            let failure = failed.map(|(i, problem, e)| {
                (
                    i,
                    UnsealError {
                        problem,
                        cause: Cause::Native(e),
                    },
                )
            });
            return Unsealed {
                batch: Batch::Owned(done),
                failure,
            };
        }
        if let Some(cipher) = &self.cipher {
            let (next, failed) = step(py, batch, total, DECRYPT, cipher_step(cipher), aads);
            batch = next;
            failure = failed;
        }
        if let Some(compressor) = &self.compressor {
            let (next, failed) = step(
                py,
                batch,
                total,
                DECOMPRESS,
                compressor_step(compressor),
                aads,
            );
            batch = next;
            // An earlier failure came first.
            failure = failure.or(failed);
        }
        Unsealed { batch, failure }
    }
}

/// The associated data of state `i` (none when not binding).
fn aad(aads: &[Vec<u8>], i: usize) -> &[u8] {
    aads.get(i).map_or(&[], Vec::as_slice)
}

enum Step<'s> {
    Decrypt(&'s Keys),
    Decompress(Codec, usize),
    Python(&'s Py<PyAny>, &'static str),
}

impl Step<'_> {
    fn run(&self, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Step::Decrypt(keys) => keys.decrypt(data, aad),
            Step::Decompress(codec, max_size) => codec.decompress(data, *max_size),
            Step::Python(..) => Err("not a native step".to_owned()),
        }
    }
}

fn cipher_step(cipher: &Cipher) -> Step<'_> {
    match cipher {
        Cipher::Native(keys, _) => Step::Decrypt(keys),
        Cipher::Python(obj) => Step::Python(obj, "decrypt"),
    }
}

fn compressor_step(compressor: &Compressor) -> Step<'_> {
    match compressor {
        Compressor::Native(codec, max_size) => Step::Decompress(*codec, *max_size),
        Compressor::Python(obj) => Step::Python(obj, "decompress"),
    }
}

/// One reverse step over the states, up to the first failure.
fn step<'a, 'py>(
    py: Python<'py>,
    batch: Batch<'a, 'py>,
    total: usize,
    problem: &'static str,
    how: Step<'_>,
    aads: &[Vec<u8>],
) -> (Batch<'a, 'py>, Option<(usize, UnsealError)>) {
    let slices = batch.slices();
    match how {
        Step::Decrypt(_) | Step::Decompress(..) => {
            let how = &how;
            let (done, failed) = detached(py, total, || {
                let mut done = Vec::with_capacity(slices.len());
                for (i, s) in slices.iter().enumerate() {
                    match how.run(s, aad(aads, i)) {
                        Ok(out) => done.push(out),
                        Err(e) => return Ok((done, Some((i, e)))),
                    }
                }
                Ok((done, None))
            })
            .unwrap_or_else(|e| (Vec::new(), Some((0, e))));
            let failure = failed.map(|(i, e)| {
                (
                    i,
                    UnsealError {
                        problem,
                        cause: Cause::Native(e),
                    },
                )
            });
            (Batch::Owned(done), failure)
        }
        Step::Python(obj, method) => {
            let method = pyo3::types::PyString::intern(py, method);
            let mut done = Vec::with_capacity(slices.len());
            for (i, s) in slices.iter().enumerate() {
                match call_bytes(obj, py, &method, s) {
                    Ok(out) => done.push(out),
                    Err(e) => {
                        return (
                            Batch::Python(done),
                            Some((
                                i,
                                UnsealError {
                                    problem,
                                    cause: Cause::Python(e),
                                },
                            )),
                        )
                    }
                }
            }
            (Batch::Python(done), None)
        }
    }
}
