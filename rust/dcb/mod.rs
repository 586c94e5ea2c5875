//! Dynamic consistency boundaries: the in-memory DCB recorder.
//!
//! Python objects are read once, before the lock is taken, into owned Rust
//! values; the query, the append condition's check and the append then run
//! with the GIL released under one lock; the events read are copied out and
//! turned into `esox.dcb.api` objects after the lock is released. Queries,
//! conditions and events are read by attribute, so eventsourcing's own
//! `DCBQuery`, `DCBAppendCondition` and `DCBEvent` objects are accepted too.

mod index;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::{MutexExt, PyOnceLock};
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use crate::errors::{error, fail, ErrorKind};
use index::{Found, Item, NewEvent, Store};

/// How often a blocked subscriber wakes to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// How many events a subscription takes from the store at a time.
const SUBSCRIPTION_BATCH: usize = 500;

static DCB_EVENT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DCB_SEQUENCED_EVENT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static OBJECT_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The store and the condition variable that appends notify.
#[derive(Default)]
struct Shared {
    store: Mutex<Store>,
    appended: Condvar,
}

impl Shared {
    /// Locks the store from an attached thread without risking a deadlock
    /// (no holder of the lock ever needs the interpreter).
    fn lock(&self, py: Python<'_>) -> MutexGuard<'_, Store> {
        self.store
            .lock_py_attached(py)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the store from a detached thread.
    fn lock_detached(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .qualname()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

fn programming<T>(py: Python<'_>, message: impl Into<String>) -> PyResult<T> {
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
fn query_items(query: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Vec<Item>> {
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
fn position(py: Python<'_>, value: Option<i64>, what: &str) -> PyResult<Option<u64>> {
    match value {
        Some(v) if v < 0 => programming(py, format!("{what} must not be negative, got {v}")),
        Some(v) => Ok(Some(v as u64)),
        None => Ok(None),
    }
}

/// The events of an append, read from Python.
fn new_events(events: &Bound<'_, PyAny>) -> PyResult<Vec<NewEvent>> {
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

/// Builds `cls` without calling `__init__`: `object.__new__(cls)` and its
/// `__dict__` set in one go.
fn construct<'py>(
    py: Python<'py>,
    new: &Bound<'py, PyAny>,
    cls: &Bound<'py, PyType>,
    dict: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let obj = new.call1((cls,))?;
    obj.setattr(intern!(py, "__dict__"), dict)?;
    Ok(obj)
}

/// The classes a recorder builds its events with: `esox.dcb.api`'s unless
/// others (eventsourcing's, for the drop-in) were given.
#[derive(Default)]
struct Classes {
    event: Option<Py<PyType>>,
    sequenced_event: Option<Py<PyType>>,
}

impl Classes {
    fn new(
        py: Python<'_>,
        event: Option<Bound<'_, PyType>>,
        sequenced_event: Option<Bound<'_, PyType>>,
    ) -> PyResult<Self> {
        // The events are built with object.__new__ and their __dict__ set.
        for cls in event.iter().chain(&sequenced_event) {
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
        }
        Ok(Classes {
            event: event.map(Bound::unbind),
            sequenced_event: sequenced_event.map(Bound::unbind),
        })
    }

    fn event<'py>(&'py self, py: Python<'py>) -> PyResult<&'py Bound<'py, PyType>> {
        match &self.event {
            Some(cls) => Ok(cls.bind(py)),
            None => DCB_EVENT.import(py, "esox.dcb.api", "DCBEvent"),
        }
    }

    fn sequenced_event<'py>(&'py self, py: Python<'py>) -> PyResult<&'py Bound<'py, PyType>> {
        match &self.sequenced_event {
            Some(cls) => Ok(cls.bind(py)),
            None => DCB_SEQUENCED_EVENT.import(py, "esox.dcb.api", "DCBSequencedEvent"),
        }
    }
}

/// Sequenced event objects for events copied out of the store. A type or
/// tag that recurs becomes one shared str.
fn sequenced_events<'py>(
    py: Python<'py>,
    classes: &Classes,
    found: Vec<Found>,
) -> PyResult<Bound<'py, PyList>> {
    let event_cls = classes.event(py)?;
    let sequenced_cls = classes.sequenced_event(py)?;
    let new = OBJECT_NEW
        .get_or_try_init(py, || {
            py.get_type::<PyAny>()
                .getattr(intern!(py, "__new__"))
                .map(Bound::unbind)
        })?
        .bind(py);
    let mut names: HashMap<*const u8, Bound<'_, PyString>> = HashMap::new();
    let mut name = |s: &Arc<str>| {
        names
            .entry(s.as_ptr())
            .or_insert_with(|| PyString::new(py, s))
            .clone()
    };
    let out = PyList::empty(py);
    for f in found {
        let event = PyDict::new(py);
        event.set_item(intern!(py, "type"), name(&f.type_))?;
        event.set_item(intern!(py, "data"), PyBytes::new(py, &f.data))?;
        let tags = PyList::empty(py);
        for tag in &f.tags {
            tags.append(name(tag))?;
        }
        event.set_item(intern!(py, "tags"), tags)?;
        let sequenced = PyDict::new(py);
        sequenced.set_item(intern!(py, "event"), construct(py, new, event_cls, event)?)?;
        sequenced.set_item(intern!(py, "position"), f.position)?;
        out.append(construct(py, new, sequenced_cls, sequenced)?)?;
    }
    Ok(out)
}

/// Why an append was refused; becomes a Python exception once the lock is released.
enum Refusal {
    Matched { after: u64, position: u64 },
    BeyondHead { after: u64, head: u64 },
}

/// The in-memory DCB recorder: events with positions from 1, indexed by
/// type and by tag; thread-safe.
#[pyclass(module = "esox._core", frozen, subclass)]
pub struct DCBMemoryRecorder {
    shared: Arc<Shared>,
    classes: Arc<Classes>,
}

#[pymethods]
impl DCBMemoryRecorder {
    #[new]
    #[pyo3(signature = (*, event_class=None, sequenced_event_class=None))]
    fn new(
        py: Python<'_>,
        event_class: Option<Bound<'_, PyType>>,
        sequenced_event_class: Option<Bound<'_, PyType>>,
    ) -> PyResult<Self> {
        Ok(DCBMemoryRecorder {
            shared: Arc::default(),
            classes: Arc::new(Classes::new(py, event_class, sequenced_event_class)?),
        })
    }

    /// The events after `after` matching `query`, at most `limit`, and the
    /// head: the last position recorded, or (with a limit) the position of
    /// the last event returned.
    #[pyo3(signature = (query=None, *, after=None, limit=None))]
    fn read_events<'py>(
        &self,
        py: Python<'py>,
        query: Option<&Bound<'py, PyAny>>,
        after: Option<i64>,
        limit: Option<i64>,
    ) -> PyResult<(Bound<'py, PyList>, Option<u64>)> {
        let items = query_items(query, "query")?;
        let after = position(py, after, "after")?.unwrap_or(0);
        let limit = position(py, limit, "limit")?;
        let (found, head) = py.detach(|| {
            let mut store = self.shared.lock_detached();
            let positions = store.select(&items, after, limit.map_or(usize::MAX, |l| l as usize));
            let head = match limit {
                None => Some(store.head()).filter(|&h| h > 0),
                Some(_) => positions.last().copied(),
            };
            (store.found(&positions), head)
        });
        Ok((sequenced_events(py, &self.classes, found)?, head))
    }

    /// Appends events unless the condition fails (an event matching its
    /// query was recorded after its position); returns the last position.
    /// The check and the append are one step under one lock.
    #[pyo3(signature = (events, condition=None))]
    fn append(
        &self,
        py: Python<'_>,
        events: &Bound<'_, PyAny>,
        condition: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let events = new_events(events)?;
        let condition = match condition.filter(|c| !c.is_none()) {
            None => None,
            Some(c) => {
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
                Some((
                    query_items(Some(&query), "condition.fail_if_events_match")?,
                    position(py, after, "condition.after")?.unwrap_or(0),
                ))
            }
        };
        let outcome = py.detach(|| {
            let mut store = self.shared.lock_detached();
            if let Some((query, after)) = &condition {
                let head = store.head();
                if *after > head {
                    return Err(Refusal::BeyondHead {
                        after: *after,
                        head,
                    });
                }
                if let Some(&position) = store.select(query, *after, 1).first() {
                    return Err(Refusal::Matched {
                        after: *after,
                        position,
                    });
                }
            }
            let last = store.append(events);
            self.shared.appended.notify_all();
            Ok(last)
        });
        outcome.map_err(|refusal| match refusal {
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
        })
    }

    /// A cursor over the events after `after` matching `query` that waits
    /// for new ones (the engine of a subscription).
    #[pyo3(signature = (query=None, *, after=None))]
    fn cursor(
        &self,
        py: Python<'_>,
        query: Option<&Bound<'_, PyAny>>,
        after: Option<i64>,
    ) -> PyResult<DCBMemoryCursor> {
        Ok(DCBMemoryCursor {
            shared: self.shared.clone(),
            classes: self.classes.clone(),
            query: query_items(query, "query")?,
            position: AtomicU64::new(position(py, after, "after")?.unwrap_or(0)),
            stopped: AtomicBool::new(false),
        })
    }

    /// The last position recorded (0 when empty).
    #[getter]
    fn max_position(&self, py: Python<'_>) -> u64 {
        self.shared.lock(py).head()
    }

    /// How many positions queries have looked at so far: a read by tags
    /// looks at the positions of one of its tags, never at every event.
    #[getter]
    fn positions_visited(&self, py: Python<'_>) -> u64 {
        self.shared.lock(py).visited()
    }
}

/// Events after a position matching a query, taken in batches; a batch
/// waits (GIL released, woken by appends) until there is at least one
/// event or the cursor is stopped.
#[pyclass(module = "esox._core", frozen)]
pub struct DCBMemoryCursor {
    shared: Arc<Shared>,
    classes: Arc<Classes>,
    query: Vec<Item>,
    position: AtomicU64,
    stopped: AtomicBool,
}

#[pymethods]
impl DCBMemoryCursor {
    /// The next events (at most `limit`), waiting for one if there are none
    /// yet; an empty list once the cursor has been stopped.
    #[pyo3(signature = (limit=SUBSCRIPTION_BATCH))]
    fn next_batch<'py>(&self, py: Python<'py>, limit: usize) -> PyResult<Bound<'py, PyList>> {
        let limit = limit.max(1);
        loop {
            let found = py.detach(|| {
                let until = Instant::now() + SIGNAL_CHECK_INTERVAL;
                let mut store = self.shared.lock_detached();
                loop {
                    if self.stopped.load(Ordering::SeqCst) {
                        return Some(Vec::new());
                    }
                    let after = self.position.load(Ordering::SeqCst);
                    let positions = store.select(&self.query, after, limit);
                    if let Some(&last) = positions.last() {
                        self.position.store(last, Ordering::SeqCst);
                        return Some(store.found(&positions));
                    }
                    let now = Instant::now();
                    if now >= until {
                        return None;
                    }
                    store = self
                        .shared
                        .appended
                        .wait_timeout(store, until - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            });
            match found {
                Some(found) => return sequenced_events(py, &self.classes, found),
                None => py.check_signals()?,
            }
        }
    }

    /// Stops the cursor: a waiting `next_batch` returns an empty list.
    fn stop(&self, py: Python<'_>) {
        self.stopped.store(true, Ordering::SeqCst);
        // Under the lock, so that a waiter between its check and its wait
        // cannot miss the wake-up.
        let _store = self.shared.lock(py);
        self.shared.appended.notify_all();
    }

    /// The position of the last event taken (or the `after` it started from).
    #[getter]
    fn position(&self) -> u64 {
        self.position.load(Ordering::SeqCst)
    }
}
