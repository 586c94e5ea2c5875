//! `Mapper`: domain events to stored events and back, a whole batch per call.
//!
//! Encoding reads an event's `__dict__` and writes its JSON state in Rust
//! (see `codec`); decoding parses the state into a dict, sets the originator
//! id and version, runs the class's upcasters and builds the event with
//! `object.__new__` and a direct `__dict__` assignment, never `__init__`.
//! Facts about classes and topics are cached per mapper.

mod classes;
mod diagnose;
mod seal;

use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};
use pyo3::PyTraverseError;

use crate::codec::decode::{is_atomic, set_item, Decoder};
use crate::codec::encode::Encoder;
use crate::codec::error::DecodeError;
use crate::codec::native::new_uuid;
use crate::codec::text::parse_uuid_hex;
use crate::codec::{builtins, is_native_transcoder};
use crate::cpython;
use crate::errors::{error, ErrorKind};
use crate::records::StoredEvent;
use classes::{DecodeClass, EventClasses, Memo};
use diagnose::{associated_data, decode_hint, unseal_hint};
pub use seal::{no_panic, DETACH_BYTES};
use seal::{Cause, Cipher, Compressor, Sealing, UnsealError};

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
        let obj = Bound::from_owned_ptr_or_err(py, cpython::alloc(cls.as_type_ptr()))?;
        if cpython::set_instance_dict(py, obj.as_ptr(), state.as_ptr()) != 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(obj)
    }
}

/// Stops the cycle collector tracking a `uuid.UUID` (exactly): it refers
/// only to an int and an enum member and cannot be changed, so it can never
/// be part of a cycle; untracked, the dicts holding it can stay untracked.
fn untrack_uuid(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    let uuid_type = &builtins(py)?.uuid_type;
    // SAFETY: `obj` is alive, and a UUID refers to no container.
    unsafe {
        if ffi::Py_TYPE(obj.as_ptr()) as *mut ffi::PyObject == uuid_type.as_ptr() {
            cpython::untrack(obj.as_ptr());
        }
    }
    Ok(())
}

fn with_cause(py: Python<'_>, kind: ErrorKind, message: String, cause: PyErr) -> PyErr {
    let err = error(py, kind, message);
    err.set_cause(py, Some(cause));
    err
}

/// A stored event's originator id, version and topic, for error messages.
fn describe(originator_id: &Bound<'_, PyAny>, version: i64, topic: &Bound<'_, PyString>) -> String {
    format!(
        "cannot decode stored event (originator_id '{originator_id}', \
         originator_version {version}, topic '{topic}'): "
    )
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

/// What a stored event needs besides its state.
type Head<'py> = (Bound<'py, PyAny>, i64, Bound<'py, PyString>);

impl Mapper {
    /// Appends an event's encoded state to `enc.buf`; returns its id,
    /// version and topic.
    fn encode_event<'py>(
        &self,
        enc: &mut Encoder<'py>,
        memo: &mut Memo<'py>,
        event: &Bound<'py, PyAny>,
    ) -> PyResult<Head<'py>> {
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
        if self.native {
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
        } else {
            let state = state.copy()?;
            state.del_item(id_key)?;
            state.del_item(version_key)?;
            if class_version > 1 {
                state.set_item(intern!(py, "class_version"), class_version)?;
            }
            let encoded = to_bytes(
                self.transcoder
                    .bind(py)
                    .call_method1(intern!(py, "encode"), (state,))?,
            )?;
            enc.buf.extend_from_slice(encoded.as_bytes());
        }
        Ok((originator_id, originator_version, topic))
    }

    /// Domain events to stored events: every state encoded (GIL held),
    /// then the batch compressed and encrypted (GIL released if large).
    fn stored_events<'py>(
        &self,
        py: Python<'py>,
        events: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Py<StoredEvent>>> {
        let mut enc = Encoder::new(self.transcoder.bind(py))?;
        let mut memo = Memo::default();
        let capacity = events.len().unwrap_or(0);
        let mut heads = Vec::with_capacity(capacity);
        let mut ends = Vec::with_capacity(capacity);
        for_each(events, |event| {
            heads.push(self.encode_event(&mut enc, &mut memo, event)?);
            ends.push(enc.buf.len());
            Ok(())
        })?;
        let mut start = 0;
        let states: Vec<&[u8]> = ends
            .iter()
            .map(|&end| {
                let state = &enc.buf[start..end];
                start = end;
                state
            })
            .collect();
        let aads = if self.sealing.binds() {
            heads
                .iter()
                .map(|(id, version, topic)| associated_data(id, *version, topic))
                .collect::<PyResult<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let sealed = self.sealing.seal(py, states, &aads)?;
        heads
            .into_iter()
            .zip(sealed)
            .map(|((originator_id, version, topic), state)| {
                StoredEvent::create(
                    py,
                    originator_id.unbind(),
                    version,
                    topic.unbind(),
                    state.unbind(),
                )
            })
            .collect()
    }

    /// Stored events to domain events: the batch decrypted and decompressed
    /// (GIL released if large), then each state decoded and its event built.
    fn domain_events<'py>(
        &self,
        py: Python<'py>,
        stored_events: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut records = Vec::with_capacity(stored_events.len().unwrap_or(0));
        for_each(stored_events, |stored| {
            records.push(stored_fields(stored)?);
            Ok(())
        })?;
        let aads = if self.sealing.binds() {
            records
                .iter()
                .map(|(id, version, topic, _)| associated_data(id, *version, topic))
                .collect::<PyResult<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let unsealed =
            self.sealing
                .unseal(py, records.iter().map(|r| r.3.as_bytes()).collect(), &aads);
        let states = unsealed.states();
        let mut dec = Decoder::new(self.transcoder.bind(py))?;
        let mut memo = Memo::default();
        let mut out = Vec::with_capacity(records.len());
        for (i, (originator_id, version, topic, stored)) in records.iter().enumerate() {
            let fail = |problem: &str, cause: PyErr| {
                with_cause(
                    py,
                    ErrorKind::MapperDeserialisation,
                    format!(
                        "{}{problem}: {cause}",
                        describe(originator_id, *version, topic)
                    ),
                    cause,
                )
            };
            // The state first: with a cipher, a forged row fails here, before
            // its topic is resolved (no module imported, nothing built).
            let Some(state) = states.get(i) else {
                return Err(match &unsealed.failure {
                    Some((_, UnsealError { problem, cause })) => {
                        let hint = unseal_hint(&self.sealing, problem, stored.as_bytes());
                        match cause {
                            Cause::Python(e) => {
                                let e = e.clone_ref(py);
                                with_cause(
                                    py,
                                    ErrorKind::MapperDeserialisation,
                                    format!(
                                        "{}{problem}: {e}{hint}",
                                        describe(originator_id, *version, topic)
                                    ),
                                    e,
                                )
                            }
                            Cause::Native(message) => error(
                                py,
                                ErrorKind::MapperDeserialisation,
                                format!(
                                    "{}{problem}: {message}{hint}",
                                    describe(originator_id, *version, topic)
                                ),
                            ),
                        }
                    }
                    None => error(py, ErrorKind::Persistence, "missing state"),
                });
            };
            let class = self
                .classes
                .decoding(topic, &mut memo)
                .map_err(|(problem, e)| fail(problem, e))?;
            out.push(self.build_event(&mut dec, &class, originator_id, *version, topic, state)?);
        }
        Ok(out)
    }

    /// Decodes a state and builds its event: ids set, upcast, no `__init__`.
    fn build_event<'py>(
        &self,
        dec: &mut Decoder<'py>,
        class: &DecodeClass,
        originator_id: &Bound<'py, PyAny>,
        version: i64,
        topic: &Bound<'py, PyString>,
        state: &[u8],
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = originator_id.py();
        let context = || describe(originator_id, version, topic);
        let decoded = if self.native {
            dec.decode(state).map_err(|e| {
                let hint = decode_hint(&self.sealing, state);
                e.into_pyerr(py, &format!("{}{hint}", context()))
            })?
        } else {
            self.transcoder
                .bind(py)
                .call_method1(intern!(py, "decode"), (PyBytes::new(py, state),))
                .map_err(|e| {
                    with_cause(
                        py,
                        ErrorKind::MapperDeserialisation,
                        format!("{}the transcoder could not decode state: {e}", context()),
                        e,
                    )
                })?
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
                    None => b.uuid_type.bind(py).call1((text,)).map_err(|e| {
                        with_cause(
                            py,
                            ErrorKind::MapperDeserialisation,
                            format!("{}its originator id is not a UUID: {e}", context()),
                            e,
                        )
                    })?,
                }
            }
            _ => {
                untrack_uuid(py, originator_id)?;
                originator_id.clone()
            }
        };
        set_item(&state, intern!(py, "originator_id"), &originator_id)?;
        set_item(
            &state,
            intern!(py, "originator_version"),
            version.into_pyobject(py)?.as_any(),
        )?;
        let class_version_key = intern!(py, "class_version");
        let mut from_version = 1;
        // The decoder has seen whether there is one (any transcoder: look).
        if !self.native || dec.class_version {
            if let Some(stored_version) = state.get_item(class_version_key)? {
                state.del_item(class_version_key)?;
                from_version = stored_version.extract().map_err(|e| {
                    with_cause(
                        py,
                        ErrorKind::MapperDeserialisation,
                        format!(
                            "{}its stored class_version {} is not an int (the \
                             state is corrupt or was not written by a mapper)",
                            context(),
                            stored_version
                                .repr()
                                .map_or_else(|_| "?".into(), |r| r.to_string())
                        ),
                        e,
                    )
                })?;
            }
        }
        let cls = class.cls.bind(py);
        if from_version > class.class_version {
            return Err(error(
                py,
                ErrorKind::MapperDeserialisation,
                format!(
                    "{}it was written by class_version {from_version} of its class, \
                     but this {} has class_version {}: run the newer code that \
                     wrote it (downgrading is not supported)",
                    context(),
                    cls.name()
                        .map_or_else(|_| "class".into(), |n| n.to_string()),
                    class.class_version
                ),
            ));
        }
        let upcast = from_version < class.class_version;
        while from_version < class.class_version {
            let name = format!("upcast_v{from_version}_v{}", from_version + 1);
            let upcaster = cls.getattr_opt(name.as_str())?.ok_or_else(|| {
                error(
                    py,
                    ErrorKind::MapperDeserialisation,
                    format!(
                        "{}it was written by class_version {from_version} and its \
                         class has class_version {}, but no {name}: add a static \
                         method {name}(state) that updates the stored state",
                        context(),
                        class.class_version
                    ),
                )
            })?;
            upcaster.call1((&state,)).map_err(|e| {
                with_cause(
                    py,
                    ErrorKind::MapperDeserialisation,
                    format!("{}{name} failed: {e}", context()),
                    e,
                )
            })?;
            from_version += 1;
        }
        let event = new_event(cls, &state)?;
        // The decoder says whether the values it made are all atomic; the
        // id and version set here are (the id is a str or an untracked
        // UUID); upcasters may have added anything, so then look.
        let atomic = if self.native && !upcast {
            // SAFETY: the id is alive.
            dec.atomic
                && unsafe { is_atomic(originator_id.as_ptr(), builtins(py)?.uuid_type.as_ptr()) }
        } else {
            all_atomic(py, &state)?
        };
        if class.frozen && atomic {
            untrack(&state, &event);
        }
        Ok(event)
    }
}

/// True if every value in `state` is atomic (see `is_atomic`).
fn all_atomic(py: Python<'_>, state: &Bound<'_, PyDict>) -> PyResult<bool> {
    let uuid_type = builtins(py)?.uuid_type.as_ptr();
    let mut pos: ffi::Py_ssize_t = 0;
    let mut key = std::ptr::null_mut();
    let mut value = std::ptr::null_mut();
    // SAFETY: the dict and its values are alive and no Python code runs.
    unsafe {
        while ffi::PyDict_Next(state.as_ptr(), &mut pos, &mut key, &mut value) != 0 {
            if !is_atomic(value, uuid_type) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Stops the cycle collector tracking an immutable event and its state of
/// atomic values: neither can then be part of a reference cycle, and
/// collections, which would otherwise traverse every decoded event again
/// and again, skip them. (CPython keeps such a dict tracked only because it
/// cannot tell a UUID from a container; a container put in it later tracks
/// it again.)
fn untrack(state: &Bound<'_, PyDict>, event: &Bound<'_, PyAny>) {
    // SAFETY: both objects are alive and hold atomic values only.
    unsafe {
        cpython::untrack(state.as_ptr());
        cpython::untrack(event.as_ptr());
    }
}

/// JSON of `obj` via a JSONTranscoder's registry (no compression or encryption).
fn encode_value<'py>(
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
