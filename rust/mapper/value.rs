//! One value to JSON and back, with no compression or encryption: what
//! `Mapper.encode` and `Mapper.decode` run with a JSONTranscoder, and the
//! `encode_json` and `decode_json` functions.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{guarded, to_bytes};
use crate::codec::decode::Decoder;
use crate::codec::encode::Encoder;
use crate::codec::error::DecodeError;

/// JSON of `obj` via a JSONTranscoder's registry (no compression or encryption).
pub(super) fn encode_value<'py>(
    obj: &Bound<'py, PyAny>,
    transcoder: &Bound<'py, PyAny>,
    paths: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    let mut enc = Encoder::new(transcoder)?;
    let subject = if paths { "value at" } else { "" };
    enc.encode(obj).map_err(|e| e.into_pyerr(py, subject, ""))?;
    Ok(PyBytes::new(py, &enc.buf))
}

/// The object that `encode_value` encoded.
pub(super) fn decode_value<'py>(
    data: Bound<'py, PyAny>,
    transcoder: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let data = to_bytes(data)?;
    let mut dec = Decoder::new(transcoder)?;
    dec.decode(data.as_bytes())
        .map_err(|e: DecodeError| e.into_pyerr(py, ""))
}

/// JSON-encodes `obj`, custom types via `transcoder.types`. With `paths`
/// false an error does not name where in `obj` the bad value is (as
/// eventsourcing's `JSONTranscoder.encode` words it).
#[pyfunction]
#[pyo3(signature = (obj, transcoder, *, paths = true))]
pub fn encode_json<'py>(
    obj: &Bound<'py, PyAny>,
    transcoder: &Bound<'py, PyAny>,
    paths: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    guarded(obj.py(), || encode_value(obj, transcoder, paths))
}

/// Decodes JSON bytes, custom types via `transcoder.names`.
#[pyfunction]
pub fn decode_json<'py>(
    data: Bound<'py, PyAny>,
    transcoder: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(data.py(), || decode_value(data, transcoder))
}
