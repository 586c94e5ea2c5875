//! Between Python objects and the SQLite recorders' rows: originator ids and
//! stored events in, StoredEvent and Notification objects out (built after
//! the I/O, with the GIL held, one object per row and nothing else).

use std::borrow::Cow;
use std::collections::HashMap;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyString, PyType};

use super::store::{parse_uuid, IdType, NewEvent, RawId, Rows};
use crate::errors::{error, ErrorKind};
use crate::records::{Notification, StoredEvent};

static UUID_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SAFE_UUID_UNKNOWN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static OBJECT_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static OBJECT_SETATTR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn uuid_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    UUID_TYPE.import(py, "uuid", "UUID")
}

/// An originator id as stored: a UUID as 32 lower-case hex digits (in either
/// mode, as eventsourcing stores it); a str as it is in "text" mode, or, in
/// "uuid" mode, parsed as a UUID.
pub fn stored_originator_id<'a>(
    obj: &'a Bound<'_, PyAny>,
    id_type: IdType,
) -> PyResult<Cow<'a, str>> {
    if let Ok(s) = obj.cast::<PyString>() {
        let text = s.to_str()?;
        return match id_type {
            IdType::Text => Ok(Cow::Borrowed(text)),
            IdType::Uuid => match parse_uuid(text.as_bytes()) {
                Some(_) if text.len() == 32 && !text.bytes().any(|b| b.is_ascii_uppercase()) => {
                    Ok(Cow::Borrowed(text))
                }
                Some(u) => Ok(Cow::Owned(format!("{u:032x}"))),
                None => Err(error(
                    s.py(),
                    ErrorKind::Data,
                    format!(
                        "originator_id {text:?} is not a UUID, but this recorder's \
                         originator ids are UUIDs (ORIGINATOR_ID_TYPE=text stores any string)"
                    ),
                )),
            },
        };
    }
    let py = obj.py();
    if obj.is_instance(uuid_type(py)?)? {
        let value: u128 = obj.getattr(intern!(py, "int"))?.extract()?;
        return Ok(Cow::Owned(format!("{value:032x}")));
    }
    Err(PyTypeError::new_err(format!(
        "originator_id must be a UUID or a str, not {}",
        obj.get_type().qualname()?
    )))
}

/// The stored events of a Python sequence as rows to insert (borrowing their
/// topics and states), passed to `f`.
pub(super) fn with_new_events<'py, R>(
    py: Python<'py>,
    stored_events: &Bound<'py, PyAny>,
    id_type: IdType,
    f: impl FnOnce(&[NewEvent<'_>]) -> PyResult<R>,
) -> PyResult<R> {
    let items = stored_events
        .try_iter()
        .map_err(|_| {
            PyTypeError::new_err("stored_events must be a sequence of StoredEvent objects")
        })?
        .map(|item| {
            item?.cast_into::<StoredEvent>().map_err(|e| {
                PyTypeError::new_err(format!(
                    "stored_events must contain StoredEvent objects, not {}",
                    e.into_inner()
                        .get_type()
                        .qualname()
                        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
                ))
            })
        })
        .collect::<PyResult<Vec<Bound<'py, StoredEvent>>>>()?;
    let originator_ids: Vec<Bound<'py, PyAny>> = items
        .iter()
        .map(|item| item.get().originator_id.bind(py).clone())
        .collect();
    let mut events = Vec::with_capacity(items.len());
    for (item, originator_id) in items.iter().zip(&originator_ids) {
        let event = item.get();
        events.push(NewEvent {
            originator_id: stored_originator_id(originator_id, id_type)?,
            version: event.originator_version,
            topic: event.topic.bind(py).to_str()?,
            state: event.state.bind(py).as_bytes(),
        });
    }
    f(&events)
}

/// Builds `uuid.UUID` objects without running `UUID.__init__` (a third of
/// the cost): `object.__new__(UUID)`, then its two slots set directly.
struct UuidMaker<'py> {
    cls: &'py Bound<'py, PyType>,
    new: &'py Bound<'py, PyAny>,
    setattr: &'py Bound<'py, PyAny>,
    unknown: &'py Bound<'py, PyAny>,
    int_name: &'py Bound<'py, PyString>,
    is_safe_name: &'py Bound<'py, PyString>,
}

impl<'py> UuidMaker<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let object = |name: &'static str| {
            move || -> PyResult<Py<PyAny>> {
                Ok(py
                    .import("builtins")?
                    .getattr("object")?
                    .getattr(name)?
                    .unbind())
            }
        };
        Ok(UuidMaker {
            cls: uuid_type(py)?,
            new: OBJECT_NEW.get_or_try_init(py, object("__new__"))?.bind(py),
            setattr: OBJECT_SETATTR
                .get_or_try_init(py, object("__setattr__"))?
                .bind(py),
            unknown: SAFE_UUID_UNKNOWN
                .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
                    Ok(py
                        .import("uuid")?
                        .getattr("SafeUUID")?
                        .getattr("unknown")?
                        .unbind())
                })?
                .bind(py),
            int_name: intern!(py, "int"),
            is_safe_name: intern!(py, "is_safe"),
        })
    }

    fn make(&self, value: u128) -> PyResult<Bound<'py, PyAny>> {
        let uuid = self.new.call1((self.cls,))?;
        self.setattr.call1((&uuid, self.int_name, value))?;
        self.setattr
            .call1((&uuid, self.is_safe_name, self.unknown))?;
        Ok(uuid)
    }
}

/// The originator id to put in the selected events of `originator_id`: the
/// caller's object when it already is what the stored id reads back as.
pub fn selected_originator_id<'py>(
    originator_id: &Bound<'py, PyAny>,
    stored: &str,
    id_type: IdType,
) -> PyResult<Bound<'py, PyAny>> {
    let py = originator_id.py();
    match id_type {
        IdType::Uuid if originator_id.is_instance(uuid_type(py)?)? => Ok(originator_id.clone()),
        IdType::Text if originator_id.is_instance_of::<PyString>() => Ok(originator_id.clone()),
        IdType::Uuid => match parse_uuid(stored.as_bytes()) {
            Some(value) => UuidMaker::new(py)?.make(value),
            None => Err(PyValueError::new_err(format!("{stored:?} is not a UUID"))),
        },
        IdType::Text => Ok(PyString::new(py, stored).into_any()),
    }
}

fn text<'a>(py: Python<'_>, bytes: &'a [u8], what: impl FnOnce() -> String) -> PyResult<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        error(
            py,
            ErrorKind::Data,
            format!("{} is not valid UTF-8: {e}", what()),
        )
    })
}

/// Topics repeat: one str object per distinct topic in a result.
struct Topics<'r, 'py> {
    py: Python<'py>,
    seen: HashMap<&'r [u8], Bound<'py, PyString>>,
}

impl<'r, 'py> Topics<'r, 'py> {
    fn get(&mut self, bytes: &'r [u8], what: impl FnOnce() -> String) -> PyResult<Py<PyString>> {
        if let Some(topic) = self.seen.get(bytes) {
            return Ok(topic.clone().unbind());
        }
        let topic = PyString::new(self.py, text(self.py, bytes, what)?);
        self.seen.insert(bytes, topic.clone());
        Ok(topic.unbind())
    }
}

/// Selected events of one originator as a list of StoredEvent.
pub fn stored_events<'py>(
    py: Python<'py>,
    rows: &Rows,
    originator_id: &Bound<'py, PyAny>,
    table: &str,
) -> PyResult<Bound<'py, PyList>> {
    let mut topics = Topics {
        py,
        seen: HashMap::new(),
    };
    let mut events = Vec::with_capacity(rows.rows.len());
    for row in &rows.rows {
        let topic = topics.get(rows.slice(&row.topic), || {
            format!("topic of version {} in {table}", row.version)
        })?;
        let state = PyBytes::new(py, rows.slice(&row.state)).unbind();
        events.push(StoredEvent::create(
            py,
            originator_id.clone().unbind(),
            row.version,
            topic,
            state,
        )?);
    }
    PyList::new(py, events)
}

/// Selected notifications as a list of Notification.
pub fn notifications<'py>(
    py: Python<'py>,
    rows: &Rows,
    table: &str,
) -> PyResult<Bound<'py, PyList>> {
    let mut topics = Topics {
        py,
        seen: HashMap::new(),
    };
    let mut maker = None;
    let mut uuids: HashMap<u128, Bound<'py, PyAny>> = HashMap::new();
    let mut texts: HashMap<&[u8], Bound<'py, PyAny>> = HashMap::new();
    let mut out = Vec::with_capacity(rows.rows.len());
    for row in &rows.rows {
        let originator_id = match &row.originator_id {
            Some(RawId::Uuid(value)) => match uuids.get(value) {
                Some(u) => u.clone(),
                None => {
                    let maker = match &maker {
                        Some(m) => m,
                        None => maker.insert(UuidMaker::new(py)?),
                    };
                    let u = maker.make(*value)?;
                    uuids.insert(*value, u.clone());
                    u
                }
            },
            Some(RawId::Text(range)) => {
                let bytes = rows.slice(range);
                match texts.get(bytes) {
                    Some(s) => s.clone(),
                    None => {
                        let s = text(py, bytes, || {
                            format!("originator_id of notification {} in {table}", row.id)
                        })?;
                        let s = PyString::new(py, s).into_any();
                        texts.insert(bytes, s.clone());
                        s
                    }
                }
            }
            None => {
                return Err(error(
                    py,
                    ErrorKind::Internal,
                    format!(
                        "notification {} in {table} was read without its originator_id",
                        row.id
                    ),
                ))
            }
        };
        let topic = topics.get(rows.slice(&row.topic), || {
            format!("topic of notification {} in {table}", row.id)
        })?;
        let state = PyBytes::new(py, rows.slice(&row.state)).unbind();
        out.push(Notification::create(
            py,
            row.id,
            originator_id.unbind(),
            row.version,
            topic,
            state,
        )?);
    }
    PyList::new(py, out)
}
