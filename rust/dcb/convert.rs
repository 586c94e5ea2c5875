//! Between Python and the DCB recorders: reading queries, conditions and
//! events from Python objects (by attribute, so eventsourcing's objects do
//! too) into owned Rust values, and building sequenced events back.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple, PyType};

use super::index::{Found, Item, NewEvent};
use crate::errors::{error, fail, ErrorKind};

static OBJECT_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .qualname()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

pub fn programming<T>(py: Python<'_>, message: impl Into<String>) -> PyResult<T> {
    fail(py, ErrorKind::Programming, message)
}

/// An attribute that a DCB object must have, or a clear error naming it.
fn attribute<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    what: &str,
    expected: &str,
) -> PyResult<Bound<'py, PyAny>> {
    obj.getattr(name).or_else(|_| {
        programming(
            obj.py(),
            format!(
                "{what} must be a {expected} (with a .{name} attribute), not {}",
                type_name(obj)
            ),
        )
    })
}

/// A list (or tuple) of str as owned strings.
fn strings(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    let py = obj.py();
    elements(obj, what, "a list of str")?
        .iter()
        .enumerate()
        .map(|(i, item)| match item.cast::<PyString>() {
            Ok(s) => Ok(s.to_str()?.to_owned()),
            Err(_) => programming(
                py,
                format!("{what}[{i}] must be a str, not {}", type_name(item)),
            ),
        })
        .collect()
}

/// The items of a `DCBQuery` (none for `None`: every event matches).
pub fn query_items(query: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Vec<Item>> {
    let Some(query) = query.filter(|q| !q.is_none()) else {
        return Ok(Vec::new());
    };
    let py = query.py();
    let items = attribute(query, intern!(py, "items"), what, "DCBQuery")?;
    let items = elements(&items, &format!("{what}.items"), "a list of DCBQueryItem")?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let what = format!("{what}.items[{i}]");
            Ok(Item {
                types: strings(
                    &attribute(item, intern!(py, "types"), &what, "DCBQueryItem")?,
                    &format!("{what}.types"),
                )?,
                tags: strings(
                    &attribute(item, intern!(py, "tags"), &what, "DCBQueryItem")?,
                    &format!("{what}.tags"),
                )?,
            })
        })
        .collect()
}

/// The elements of a list or tuple.
fn elements<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    expected: &str,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if let Ok(list) = obj.cast::<PyList>() {
        Ok(list.iter().collect())
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        Ok(tuple.iter().collect())
    } else {
        programming(
            obj.py(),
            format!("{what} must be {expected}, not {}", type_name(obj)),
        )
    }
}

/// A position argument: None, or an int that is not negative.
pub fn position(py: Python<'_>, value: Option<i64>, what: &str) -> PyResult<Option<u64>> {
    match value {
        Some(v) if v < 0 => programming(py, format!("{what} must not be negative, got {v}")),
        Some(v) => Ok(Some(v as u64)),
        None => Ok(None),
    }
}

/// The events of an append, read from Python.
pub fn new_events(events: &Bound<'_, PyAny>) -> PyResult<Vec<NewEvent>> {
    let py = events.py();
    let items = elements(events, "events", "a list of DCBEvent")?;
    if items.is_empty() {
        return programming(
            py,
            "events must contain at least one event: there is nothing to append",
        );
    }
    items
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let what = format!("events[{i}]");
            let type_ = attribute(event, intern!(py, "type"), &what, "DCBEvent")?;
            let Ok(type_) = type_.cast::<PyString>() else {
                return programming(
                    py,
                    format!("{what}.type must be a str, not {}", type_name(&type_)),
                );
            };
            let data = attribute(event, intern!(py, "data"), &what, "DCBEvent")?;
            let Ok(data) = data.cast::<PyBytes>() else {
                return programming(
                    py,
                    format!("{what}.data must be bytes, not {}", type_name(&data)),
                );
            };
            let tags = attribute(event, intern!(py, "tags"), &what, "DCBEvent")?;
            Ok(NewEvent {
                type_: type_.to_str()?.to_owned(),
                tags: strings(&tags, &format!("{what}.tags"))?,
                data: data.as_bytes().to_vec(),
            })
        })
        .collect()
}

/// A class that events are built as, without calling `__init__`.
struct Class {
    cls: Py<PyType>,
    /// Not abstract: `object.__new__(cls)` is just an allocation.
    plain: bool,
}

impl Class {
    fn new(py: Python<'_>, cls: Bound<'_, PyType>) -> PyResult<Self> {
        // The events are built with their __dict__ set in one go.
        if cls
            .getattr(intern!(py, "__dictoffset__"))?
            .extract::<isize>()?
            == 0
        {
            return programming(
                py,
                format!(
                    "{} has no __dict__ (slots?): DCB event classes must be plain dataclasses",
                    cls.qualname()?
                ),
            );
        }
        // object.__new__(cls) refuses abstract classes, then allocates.
        let plain = match cls.getattr_opt(intern!(py, "__abstractmethods__"))? {
            Some(methods) => methods.is_empty()?,
            None => true,
        };
        // Once, before `build` allocates instances itself: object.__new__
        // must accept the class, or its instances have another type's
        // layout (an Exception's, a pyclass's), whose fields only that
        // type's __new__ sets. (Abstract classes go through it each time.)
        if plain {
            if let Err(e) = object_new(py)?.call1((&cls,)) {
                return programming(
                    py,
                    format!(
                        "{} cannot be made by object.__new__ ({e}): DCB event classes \
                         must be plain dataclasses",
                        cls.qualname()?
                    ),
                );
            }
        }
        Ok(Class {
            cls: cls.unbind(),
            plain,
        })
    }

    /// `object.__new__(cls)` with the given attributes set as
    /// `object.__setattr__` sets them (into the class's shared-key dict).
    fn build<'py>(
        &self,
        py: Python<'py>,
        fields: &[(&Bound<'py, PyString>, Bound<'py, PyAny>)],
    ) -> PyResult<Bound<'py, PyAny>> {
        let cls = self.cls.bind(py);
        let obj = if self.plain {
            // SAFETY: the class is not abstract (checked in `new`), so
            // allocating it is what object.__new__(cls) does.
            unsafe { Bound::from_owned_ptr_or_err(py, crate::cpython::alloc(cls.as_type_ptr()))? }
        } else {
            object_new(py)?.call1((cls,))?
        };
        for (name, value) in fields {
            // SAFETY: `obj`, `name` and `value` are alive; the class has a
            // __dict__ (checked in `new`).
            if unsafe { ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) }
                != 0
            {
                return Err(PyErr::fetch(py));
            }
        }
        Ok(obj)
    }
}

fn object_new(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    OBJECT_NEW
        .get_or_try_init(py, || {
            py.get_type::<PyAny>()
                .getattr(intern!(py, "__new__"))
                .map(Bound::unbind)
        })
        .map(|new| new.bind(py))
}

/// The classes a recorder builds its events with: `esox.dcb.api`'s unless
/// others (eventsourcing's, for the drop-in) were given.
pub struct Classes {
    event: Class,
    sequenced_event: Class,
}

impl Classes {
    pub fn new(
        py: Python<'_>,
        event: Option<Bound<'_, PyType>>,
        sequenced_event: Option<Bound<'_, PyType>>,
    ) -> PyResult<Self> {
        // esox.dcb's recorders pass esox.dcb.api's classes: the crate
        // imports no esox module.
        let (Some(event), Some(sequenced_event)) = (event, sequenced_event) else {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "a DCB recorder needs event_class and sequenced_event_class \
                 (esox.dcb.memory and esox.dcb.sqlite pass esox.dcb.api's)",
            ));
        };
        Ok(Classes {
            event: Class::new(py, event)?,
            sequenced_event: Class::new(py, sequenced_event)?,
        })
    }
}

/// Sequenced event objects for events copied out of the store. A type or
/// tag that recurs becomes one shared str.
pub fn sequenced_events<'py>(
    py: Python<'py>,
    classes: &Classes,
    found: Vec<Found>,
) -> PyResult<Bound<'py, PyList>> {
    let mut names: HashMap<Arc<str>, Bound<'_, PyString>> = HashMap::new();
    let mut name = |s: &Arc<str>| {
        names
            .entry(s.clone())
            .or_insert_with(|| PyString::new(py, s))
            .clone()
    };
    let out = PyList::empty(py);
    let (type_, data, tags_name) = (
        intern!(py, "type"),
        intern!(py, "data"),
        intern!(py, "tags"),
    );
    let (event_name, position) = (intern!(py, "event"), intern!(py, "position"));
    for f in found {
        let tags = PyList::empty(py);
        for tag in &f.tags {
            tags.append(name(tag))?;
        }
        let event = classes.event.build(
            py,
            &[
                (type_, name(&f.type_).into_any()),
                (data, PyBytes::new(py, &f.data).into_any()),
                (tags_name, tags.into_any()),
            ],
        )?;
        let sequenced = classes.sequenced_event.build(
            py,
            &[
                (event_name, event),
                (position, f.position.into_pyobject(py)?.into_any()),
            ],
        )?;
        out.append(sequenced)?;
    }
    Ok(out)
}

/// An append condition: its query's items and its position (0 if None).
pub fn append_condition(
    condition: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<(Vec<Item>, u64)>> {
    let Some(c) = condition.filter(|c| !c.is_none()) else {
        return Ok(None);
    };
    let py = c.py();
    let what = "condition";
    let query = attribute(
        c,
        intern!(py, "fail_if_events_match"),
        what,
        "DCBAppendCondition",
    )?;
    let after = attribute(c, intern!(py, "after"), what, "DCBAppendCondition")?;
    let after: Option<i64> = after.extract().or_else(|_| {
        programming(
            py,
            format!(
                "condition.after must be an int or None, not {}",
                type_name(&after)
            ),
        )
    })?;
    Ok(Some((
        query_items(Some(&query), "condition.fail_if_events_match")?,
        position(py, after, "condition.after")?.unwrap_or(0),
    )))
}

/// Why an append was refused; raised once the lock is released.
pub enum Refusal {
    Matched { after: u64, position: u64 },
    BeyondHead { after: u64, head: u64 },
}

impl Refusal {
    pub fn into_err(self, py: Python<'_>) -> PyErr {
        match self {
            Refusal::Matched { after, position } => error(
                py,
                ErrorKind::Integrity,
                format!(
                    "append condition failed: the event at position {position} matches \
                     fail_if_events_match and was recorded after position {after}; \
                     read again and decide again"
                ),
            ),
            Refusal::BeyondHead { after, head } => error(
                py,
                ErrorKind::Programming,
                format!(
                    "condition.after is {after}, beyond the last recorded position {head}: \
                     use the head of a read from this recorder"
                ),
            ),
        }
    }
}
