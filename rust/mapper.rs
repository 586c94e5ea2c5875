//! `Mapper`: domain events to stored events and back, a whole batch per call.
//!
//! Encoding reads an event's `__dict__` and writes its JSON state in Rust
//! (see `codec`); decoding parses the state into a dict, sets the originator
//! id and version, runs the class's upcasters and builds the event with
//! `object.__new__` and a direct `__dict__` assignment, never `__init__`.
//! Facts about classes and topics are cached per mapper.

mod classes;

use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};
use pyo3::PyTraverseError;

use crate::codec::decode::Decoder;
use crate::codec::encode::Encoder;
use crate::codec::error::DecodeError;
use crate::codec::native::new_uuid;
use crate::codec::text::parse_uuid_hex;
use crate::codec::{builtins, is_native_transcoder};
use crate::errors::{error, ErrorKind};
use crate::records::StoredEvent;
use classes::{EventClasses, Memo};

/// Converts domain events to stored events and back, a batch per call.
#[pyclass(module = "esox._core", frozen, subclass)]
pub struct Mapper {
    transcoder: Py<PyAny>,
    compressor: Option<Py<PyAny>>,
    cipher: Option<Py<PyAny>>,
    /// The transcoder is a JSONTranscoder (has `types` and `names`).
    native: bool,
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
fn to_bytes<'py>(obj: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
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

/// A stored event's fields: originator id, version, topic and state.
type StoredFields<'py> = (
    Bound<'py, PyAny>,
    i64,
    Bound<'py, PyString>,
    Bound<'py, PyBytes>,
);

/// The fields of esox's StoredEvent, or of any object with those attributes.
fn stored_fields<'py>(stored: &Bound<'py, PyAny>) -> PyResult<StoredFields<'py>> {
    let py = stored.py();
    if let Ok(record) = stored.cast::<StoredEvent>() {
        let r = record.get();
        return Ok((
            r.originator_id.bind(py).clone(),
            r.originator_version,
            r.topic.bind(py).clone(),
            r.state.bind(py).clone(),
        ));
    }
    Ok((
        stored.getattr(intern!(py, "originator_id"))?,
        stored
            .getattr(intern!(py, "originator_version"))?
            .extract()?,
        stored
            .getattr(intern!(py, "topic"))?
            .cast_into::<PyString>()?,
        to_bytes(stored.getattr(intern!(py, "state"))?)?,
    ))
}

/// `object.__new__(cls)` with `__dict__` set to `state`, bypassing the
/// class's `__setattr__`. `cls` must have passed `object.__new__(cls)` once.
fn new_event<'py>(
    cls: &Bound<'py, PyType>,
    state: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = cls.py();
    // SAFETY: `object.__new__(cls)` succeeded once (see `decode_class`), so
    // `cls` is a plain object subclass, not abstract: allocating it is all
    // that object.__new__ does besides preparing an empty `__dict__`, which
    // is about to be replaced anyway.
    unsafe {
        let ty = cls.as_ptr() as *mut ffi::PyTypeObject;
        let obj = match (*ty).tp_alloc {
            Some(alloc) => Bound::from_owned_ptr_or_err(py, alloc(ty, 0))?,
            None => py
                .get_type::<PyAny>()
                .call_method1(intern!(py, "__new__"), (cls,))?,
        };
        if ffi::PyObject_GenericSetDict(obj.as_ptr(), state.as_ptr(), std::ptr::null_mut()) != 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(obj)
    }
}

fn with_cause(py: Python<'_>, kind: ErrorKind, message: String, cause: PyErr) -> PyErr {
    let err = error(py, kind, message);
    err.set_cause(py, Some(cause));
    err
}

impl Mapper {
    fn to_stored<'py>(
        &self,
        enc: &mut Encoder<'py>,
        memo: &mut Memo<'py>,
        event: &Bound<'py, PyAny>,
    ) -> PyResult<Py<StoredEvent>> {
        let py = event.py();
        let (topic, class_version) = self.classes.encoding(&event.get_type(), memo)?;
        let fail = |problem: String| {
            error(
                py,
                ErrorKind::Persistence,
                format!("cannot encode {topic} event: {problem}"),
            )
        };
        // SAFETY: `event` is alive; PyObject_GenericGetDict returns a new reference.
        let state = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyObject_GenericGetDict(event.as_ptr(), std::ptr::null_mut()),
            )
        }
        .and_then(|d| Ok(d.cast_into::<PyDict>()?))
        .map_err(|e| fail(format!("cannot read its __dict__ ({e})")))?;
        let (id_key, version_key) = (
            intern!(py, "originator_id"),
            intern!(py, "originator_version"),
        );
        let originator_id = state
            .get_item(id_key)?
            .ok_or_else(|| fail("it has no originator_id".into()))?;
        let originator_version: i64 = state
            .get_item(version_key)?
            .ok_or_else(|| fail("it has no originator_version".into()))?
            .extract()
            .map_err(|e| fail(format!("originator_version must be an int ({e})")))?;
        let encoded = if self.native {
            enc.buf.clear();
            let skip = [
                (id_key, "originator_id"),
                (version_key, "originator_version"),
            ];
            enc.encode_state(&state, skip, class_version).map_err(|e| {
                let context = format!(
                    " (topic '{topic}', originator_id '{originator_id}', \
                     originator_version {originator_version})"
                );
                e.into_pyerr(py, "event attribute", &context)
            })?;
            PyBytes::new(py, &enc.buf)
        } else {
            let state = state.copy()?;
            state.del_item(id_key)?;
            state.del_item(version_key)?;
            if class_version > 1 {
                state.set_item(intern!(py, "class_version"), class_version)?;
            }
            to_bytes(
                self.transcoder
                    .bind(py)
                    .call_method1(intern!(py, "encode"), (state,))?,
            )?
        };
        let sealed = self.seal(encoded)?;
        StoredEvent::create(
            py,
            originator_id.unbind(),
            originator_version,
            topic.unbind(),
            sealed.unbind(),
        )
    }

    /// Compresses then encrypts, with whichever of them is configured.
    fn seal<'py>(&self, mut state: Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyBytes>> {
        let py = state.py();
        if let Some(compressor) = &self.compressor {
            state = to_bytes(
                compressor
                    .bind(py)
                    .call_method1(intern!(py, "compress"), (state,))?,
            )?;
        }
        if let Some(cipher) = &self.cipher {
            state = to_bytes(
                cipher
                    .bind(py)
                    .call_method1(intern!(py, "encrypt"), (state,))?,
            )?;
        }
        Ok(state)
    }

    /// Decrypts then decompresses; the error says which step failed.
    fn unseal<'py>(
        &self,
        mut state: Bound<'py, PyBytes>,
    ) -> Result<Bound<'py, PyBytes>, (&'static str, PyErr)> {
        let py = state.py();
        if let Some(cipher) = &self.cipher {
            state = cipher
                .bind(py)
                .call_method1(intern!(py, "decrypt"), (state,))
                .and_then(to_bytes)
                .map_err(|e| ("could not decrypt state", e))?;
        }
        if let Some(compressor) = &self.compressor {
            state = compressor
                .bind(py)
                .call_method1(intern!(py, "decompress"), (state,))
                .and_then(to_bytes)
                .map_err(|e| ("could not decompress state", e))?;
        }
        Ok(state)
    }

    fn to_domain<'py>(
        &self,
        dec: &mut Decoder<'py>,
        memo: &mut Memo<'py>,
        stored: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = stored.py();
        let (originator_id, version, topic, state) = stored_fields(stored)?;
        let context = || {
            format!(
                "cannot decode stored event (originator_id '{originator_id}', \
                 originator_version {version}, topic '{topic}'): "
            )
        };
        let fail = |problem: &str, cause: PyErr| {
            with_cause(
                py,
                ErrorKind::MapperDeserialisation,
                format!("{}{problem}: {cause}", context()),
                cause,
            )
        };
        let class = self
            .classes
            .decoding(&topic, memo)
            .map_err(|(problem, e)| fail(problem, e))?;
        let state = self
            .unseal(state)
            .map_err(|(problem, e)| fail(problem, e))?;
        let decoded = if self.native {
            dec.decode(state.as_bytes())
                .map_err(|e| e.into_pyerr(py, &context()))?
        } else {
            self.transcoder
                .bind(py)
                .call_method1(intern!(py, "decode"), (state,))
                .map_err(|e| fail("the transcoder could not decode state", e))?
        };
        let state = decoded.cast_into::<PyDict>().map_err(|e| {
            let found = e.into_inner().get_type();
            error(
                py,
                ErrorKind::MapperDeserialisation,
                format!("{}state is a {found}, not a JSON object", context()),
            )
        })?;
        let originator_id = match originator_id.cast::<PyString>() {
            Ok(text) if class.id_is_uuid => {
                let b = builtins(py)?;
                match text
                    .to_str()
                    .ok()
                    .and_then(|t| parse_uuid_hex(t.as_bytes()))
                {
                    Some(value) => new_uuid(py, b, value)?,
                    None => b
                        .uuid_type
                        .bind(py)
                        .call1((text,))
                        .map_err(|e| fail("its originator id is not a UUID", e))?,
                }
            }
            _ => originator_id.clone(),
        };
        state.set_item(intern!(py, "originator_id"), originator_id)?;
        state.set_item(intern!(py, "originator_version"), version)?;
        let class_version_key = intern!(py, "class_version");
        let mut from_version = 1;
        if let Some(stored_version) = state.get_item(class_version_key)? {
            state.del_item(class_version_key)?;
            from_version = stored_version.extract()?;
        }
        let cls = class.cls.bind(py);
        while from_version < class.class_version {
            let upcast = format!("upcast_v{from_version}_v{}", from_version + 1);
            cls.getattr(upcast.as_str())?.call1((&state,))?;
            from_version += 1;
        }
        new_event(cls, &state)
    }
}

/// JSON of `obj` via a JSONTranscoder's registry (no compression or encryption).
fn encode_value<'py>(
    obj: &Bound<'py, PyAny>,
    transcoder: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    let mut enc = Encoder::new(transcoder)?;
    enc.encode(obj)
        .map_err(|e| e.into_pyerr(py, "value at", ""))?;
    Ok(PyBytes::new(py, &enc.buf))
}

/// The object that `encode_value` encoded.
fn decode_value<'py>(
    data: Bound<'py, PyAny>,
    transcoder: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let data = to_bytes(data)?;
    let mut dec = Decoder::new(transcoder)?;
    dec.decode(data.as_bytes())
        .map_err(|e: DecodeError| e.into_pyerr(py, ""))
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
        Ok(Mapper {
            native: is_native_transcoder(transcoder)?,
            transcoder: transcoder.clone().unbind(),
            compressor: none(compressor),
            cipher: none(cipher),
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

    /// Converts a domain event to a stored event.
    fn to_stored_event(&self, domain_event: &Bound<'_, PyAny>) -> PyResult<Py<StoredEvent>> {
        let mut enc = Encoder::new(self.transcoder.bind(domain_event.py()))?;
        self.to_stored(&mut enc, &mut Memo::default(), domain_event)
    }

    /// Converts domain events to stored events, in one call.
    fn to_stored_events(&self, domain_events: &Bound<'_, PyAny>) -> PyResult<Vec<Py<StoredEvent>>> {
        let mut enc = Encoder::new(self.transcoder.bind(domain_events.py()))?;
        let mut memo = Memo::default();
        let mut out = Vec::with_capacity(domain_events.len().unwrap_or(0));
        for_each(domain_events, |event| {
            out.push(self.to_stored(&mut enc, &mut memo, event)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Converts a stored event to a domain event.
    fn to_domain_event<'py>(
        &self,
        stored_event: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut dec = Decoder::new(self.transcoder.bind(stored_event.py()))?;
        self.to_domain(&mut dec, &mut Memo::default(), stored_event)
    }

    /// Converts stored events to domain events, in one call.
    fn to_domain_events<'py>(
        &self,
        stored_events: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut dec = Decoder::new(self.transcoder.bind(stored_events.py()))?;
        let mut memo = Memo::default();
        let mut out = Vec::with_capacity(stored_events.len().unwrap_or(0));
        for_each(stored_events, |stored| {
            out.push(self.to_domain(&mut dec, &mut memo, stored)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// JSON-encodes `obj` (no compression or encryption).
    fn encode<'py>(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let transcoder = self.transcoder.bind(obj.py());
        if self.native {
            encode_value(obj, transcoder)
        } else {
            to_bytes(transcoder.call_method1(intern!(obj.py(), "encode"), (obj,))?)
        }
    }

    /// Decodes JSON written by `encode` (no decompression or decryption).
    fn decode<'py>(&self, data: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = data.py();
        let transcoder = self.transcoder.bind(py);
        if self.native {
            decode_value(data, transcoder)
        } else {
            transcoder.call_method1(intern!(py, "decode"), (data,))
        }
    }
}

/// JSON-encodes `obj`, custom types via `transcoder.types`.
#[pyfunction]
pub fn encode_json<'py>(
    obj: &Bound<'py, PyAny>,
    transcoder: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    encode_value(obj, transcoder)
}

/// Decodes JSON bytes, custom types via `transcoder.names`.
#[pyfunction]
pub fn decode_json<'py>(
    data: Bound<'py, PyAny>,
    transcoder: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    decode_value(data, transcoder)
}
