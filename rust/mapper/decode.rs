//! Stored events to domain events: the batch unsealed (decrypted and
//! decompressed), then each state decoded, its originator id and version
//! set, upcast, and its event built without `__init__`.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyType};

use super::classes::{DecodeClass, Memo};
use super::diagnose::{associated_data, decode_hint, unseal_hint};
use super::seal::{Cause, UnsealError};
use super::{for_each, to_bytes, Mapper};
use crate::codec::builtins;
use crate::codec::decode::{is_atomic, set_item, Decoder};
use crate::codec::native::new_uuid;
use crate::codec::text::parse_uuid_hex;
use crate::cpython;
use crate::errors::{error, ErrorKind};
use crate::records::StoredEvent;

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

impl Mapper {
    /// Stored events to domain events: the batch decrypted and decompressed
    /// (GIL released if large), then each state decoded and its event built.
    pub(super) fn domain_events<'py>(
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
