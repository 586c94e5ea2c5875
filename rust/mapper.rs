//! `Mapper`: domain events to stored events and back, a whole batch per call.
//!
//! Encoding reads an event's `__dict__` and writes its JSON state in Rust
//! (see `codec`); decoding parses the state into a dict, sets the originator
//! id and version, runs the class's upcasters and builds the event with
//! `object.__new__` and a direct `__dict__` assignment, never `__init__`.
//! Facts about classes and topics are cached per mapper.

mod classes;
mod decode;
mod diagnose;
mod encode;
mod seal;
mod value;

use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use pyo3::PyTraverseError;

use crate::codec::is_native_transcoder;
use crate::errors::{error, ErrorKind};
use crate::records::StoredEvent;
use classes::EventClasses;
pub use seal::{no_panic, DETACH_BYTES};
use seal::{Cipher, Compressor, Sealing};
pub use value::{decode_json, encode_json};
use value::{decode_value, encode_value};

/// Converts domain events to stored events and back, a batch per call.
#[pyclass(module = "esox._core", frozen, subclass)]
pub struct Mapper {
    transcoder: Py<PyAny>,
    compressor: Option<Py<PyAny>>,
    cipher: Option<Py<PyAny>>,
    /// The transcoder is a JSONTranscoder (has `types` and `names`).
    native: bool,
    /// The compressor and cipher, native where possible.
    sealing: Sealing,
    classes: EventClasses,
}

/// The items of a list, tuple or other iterable, one at a time.
fn for_each<'py>(
    items: &Bound<'py, PyAny>,
    mut f: impl FnMut(&Bound<'py, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    if let Ok(list) = items.cast::<PyList>() {
        list.iter().try_for_each(|item| f(&item))
    } else if let Ok(tuple) = items.cast::<PyTuple>() {
        tuple.iter().try_for_each(|item| f(&item))
    } else {
        items.try_iter()?.try_for_each(|item| f(&item?))
    }
}

/// `obj` as bytes (bytes as is; bytearray, memoryview and such copied).
pub(crate) fn to_bytes<'py>(obj: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    match obj.cast_into::<PyBytes>() {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let obj = e.into_inner();
            // SAFETY: `obj` is alive; PyBytes_FromObject returns a new reference.
            unsafe {
                Ok(
                    Bound::from_owned_ptr_or_err(obj.py(), ffi::PyBytes_FromObject(obj.as_ptr()))?
                        .cast_into_unchecked(),
                )
            }
        }
    }
}

/// Runs a mapper entry point; a panic becomes a PersistenceError instead of
/// reaching Python as a PanicException.
fn guarded<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(error(
            py,
            ErrorKind::Persistence,
            format!("internal error in esox's mapper ({what})"),
        ))
    })
}

#[pymethods]
impl Mapper {
    #[new]
    #[pyo3(signature = (transcoder, *, compressor = None, cipher = None))]
    fn new(
        transcoder: &Bound<'_, PyAny>,
        compressor: Option<Py<PyAny>>,
        cipher: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let py = transcoder.py();
        let none = |o: Option<Py<PyAny>>| o.filter(|o| !o.is_none(py));
        let (compressor, cipher) = (none(compressor), none(cipher));
        let sealing = Sealing {
            compressor: compressor
                .as_ref()
                .map(|c| Compressor::new(c.bind(py)))
                .transpose()?,
            cipher: cipher
                .as_ref()
                .map(|c| Cipher::new(c.bind(py)))
                .transpose()?,
        };
        Ok(Mapper {
            native: is_native_transcoder(transcoder)?,
            transcoder: transcoder.clone().unbind(),
            compressor,
            cipher,
            sealing,
            classes: EventClasses::default(),
        })
    }

    /// Lets Python's cycle collector see what the mapper holds.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.transcoder)?;
        visit.call(&self.compressor)?;
        visit.call(&self.cipher)?;
        self.classes.traverse(&visit)
    }

    #[getter]
    fn transcoder(&self, py: Python<'_>) -> Py<PyAny> {
        self.transcoder.clone_ref(py)
    }

    #[getter]
    fn compressor(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.compressor.as_ref().map(|c| c.clone_ref(py))
    }

    #[getter]
    fn cipher(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.cipher.as_ref().map(|c| c.clone_ref(py))
    }

    /// Forgets the cached topics and classes, so topics are resolved again
    /// (called when registered topics change).
    fn forget_classes(&self) {
        self.classes.clear();
    }

    /// Converts a domain event to a stored event.
    fn to_stored_event(&self, domain_event: &Bound<'_, PyAny>) -> PyResult<Py<StoredEvent>> {
        let py = domain_event.py();
        guarded(py, || {
            let events = PyTuple::new(py, [domain_event])?;
            let mut stored = self.stored_events(py, events.as_any())?;
            stored
                .pop()
                .ok_or_else(|| error(py, ErrorKind::Persistence, "no stored event"))
        })
    }

    /// Converts domain events to stored events, in one call.
    fn to_stored_events(&self, domain_events: &Bound<'_, PyAny>) -> PyResult<Vec<Py<StoredEvent>>> {
        let py = domain_events.py();
        guarded(py, || self.stored_events(py, domain_events))
    }

    /// Converts a stored event to a domain event.
    fn to_domain_event<'py>(
        &self,
        stored_event: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = stored_event.py();
        guarded(py, || {
            let stored = PyTuple::new(py, [stored_event])?;
            let mut events = self.domain_events(py, stored.as_any())?;
            events
                .pop()
                .ok_or_else(|| error(py, ErrorKind::Persistence, "no domain event"))
        })
    }

    /// Converts stored events to domain events, in one call.
    fn to_domain_events<'py>(
        &self,
        stored_events: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let py = stored_events.py();
        guarded(py, || self.domain_events(py, stored_events))
    }

    /// JSON-encodes `obj` (no compression or encryption).
    fn encode<'py>(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let transcoder = self.transcoder.bind(obj.py());
        if self.native {
            guarded(obj.py(), || encode_value(obj, transcoder, true))
        } else {
            to_bytes(transcoder.call_method1(intern!(obj.py(), "encode"), (obj,))?)
        }
    }

    /// Decodes JSON written by `encode` (no decompression or decryption).
    fn decode<'py>(&self, data: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = data.py();
        let transcoder = self.transcoder.bind(py);
        if self.native {
            guarded(py, || decode_value(data, transcoder))
        } else {
            transcoder.call_method1(intern!(py, "decode"), (data,))
        }
    }
}
