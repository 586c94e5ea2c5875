//! The records that cross the boundary: StoredEvent, Notification, Tracking,
//! and the Recording of a saved event.
//!
//! Frozen Python classes built in Rust, so that the mapper and the recorders
//! create them without calling into Python.

use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple, PyType};
use pyo3::PyTraverseError;

/// Stops the cycle collector tracking a record just made. StoredEvent and
/// Notification have no `__traverse__` and hold only ids, ints, str and
/// bytes (no cycle can pass through one), so tracked they only lengthen
/// every collection: by a third of a batch save's time, measured, when a
/// process holds many of them.
fn untracked<T>(obj: Py<T>) -> Py<T> {
    // SAFETY: `obj` is alive and holds no container.
    unsafe { crate::cpython::untrack(obj.as_ptr()) };
    obj
}

/// An event as stored: originator id and version, topic, state bytes.
#[pyclass(module = "esox._core", frozen, subclass)]
pub struct StoredEvent {
    /// A `uuid.UUID` or a `str`.
    pub originator_id: Py<PyAny>,
    pub originator_version: i64,
    pub topic: Py<PyString>,
    pub state: Py<PyBytes>,
}

impl StoredEvent {
    pub fn create(
        py: Python<'_>,
        originator_id: Py<PyAny>,
        originator_version: i64,
        topic: Py<PyString>,
        state: Py<PyBytes>,
    ) -> PyResult<Py<StoredEvent>> {
        Py::new(
            py,
            StoredEvent {
                originator_id,
                originator_version,
                topic,
                state,
            },
        )
        .map(untracked)
    }

    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            [
                self.originator_id.bind(py).clone(),
                self.originator_version.into_pyobject(py)?.into_any(),
                self.topic.bind(py).clone().into_any(),
                self.state.bind(py).clone().into_any(),
            ],
        )
    }

    fn field_reprs(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "originator_id={}, originator_version={}, topic={}, state={}",
            self.originator_id.bind(py).repr()?,
            self.originator_version,
            self.topic.bind(py).repr()?,
            self.state.bind(py).repr()?,
        ))
    }
}

#[pymethods]
impl StoredEvent {
    #[new]
    fn new(
        originator_id: Py<PyAny>,
        originator_version: i64,
        topic: Py<PyString>,
        state: Py<PyBytes>,
    ) -> Self {
        StoredEvent {
            originator_id,
            originator_version,
            topic,
            state,
        }
    }

    #[getter]
    fn originator_id(&self, py: Python<'_>) -> Py<PyAny> {
        self.originator_id.clone_ref(py)
    }

    #[getter]
    fn originator_version(&self) -> i64 {
        self.originator_version
    }

    #[getter]
    fn topic(&self, py: Python<'_>) -> Py<PyString> {
        self.topic.clone_ref(py)
    }

    #[getter]
    fn state(&self, py: Python<'_>) -> Py<PyBytes> {
        self.state.clone_ref(py)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let name = slf.get_type().qualname()?;
        Ok(format!("{}({})", name, slf.get().field_reprs(slf.py())?))
    }

    fn __richcmp__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let equal = match op {
            CompareOp::Eq | CompareOp::Ne => {
                if !slf.get_type().is(other.get_type()) {
                    false
                } else {
                    let other = other.cast::<StoredEvent>()?;
                    slf.get().fields(py)?.eq(other.get().fields(py)?)?
                }
            }
            _ => return Ok(py.NotImplemented()),
        };
        let result = if matches!(op, CompareOp::Eq) {
            equal
        } else {
            !equal
        };
        Ok(result.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.fields(py)?.hash()
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        Ok((slf.get_type(), slf.get().fields(slf.py())?))
    }
}

/// A stored event with its position (`id`) in the application sequence.
#[pyclass(module = "esox._core", frozen, extends = StoredEvent)]
pub struct Notification {
    pub id: i64,
}

impl Notification {
    pub fn create(
        py: Python<'_>,
        id: i64,
        originator_id: Py<PyAny>,
        originator_version: i64,
        topic: Py<PyString>,
        state: Py<PyBytes>,
    ) -> PyResult<Py<Notification>> {
        let init = PyClassInitializer::from(StoredEvent {
            originator_id,
            originator_version,
            topic,
            state,
        })
        .add_subclass(Notification { id });
        Py::new(py, init).map(untracked)
    }
}

#[pymethods]
impl Notification {
    #[new]
    fn new(
        originator_id: Py<PyAny>,
        originator_version: i64,
        topic: Py<PyString>,
        state: Py<PyBytes>,
        id: i64,
    ) -> PyClassInitializer<Self> {
        PyClassInitializer::from(StoredEvent {
            originator_id,
            originator_version,
            topic,
            state,
        })
        .add_subclass(Notification { id })
    }

    #[getter]
    fn id(&self) -> i64 {
        self.id
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let base = slf.as_super().get();
        Ok(format!(
            "Notification({}, id={})",
            base.field_reprs(slf.py())?,
            slf.get().id
        ))
    }

    fn __richcmp__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let equal = match op {
            CompareOp::Eq | CompareOp::Ne => {
                if !slf.get_type().is(other.get_type()) {
                    false
                } else {
                    let other = other.cast::<Notification>()?;
                    slf.get().id == other.get().id
                        && slf
                            .as_super()
                            .get()
                            .fields(py)?
                            .eq(other.as_super().get().fields(py)?)?
                }
            }
            _ => return Ok(py.NotImplemented()),
        };
        let result = if matches!(op, CompareOp::Eq) {
            equal
        } else {
            !equal
        };
        Ok(result.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    fn __hash__(slf: &Bound<'_, Self>) -> PyResult<isize> {
        let py = slf.py();
        let fields = slf.as_super().get().fields(py)?;
        (fields, slf.get().id).into_pyobject(py)?.hash()
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let base = slf.as_super().get();
        let args = PyTuple::new(
            py,
            [
                base.originator_id.bind(py).clone(),
                base.originator_version.into_pyobject(py)?.into_any(),
                base.topic.bind(py).clone().into_any(),
                base.state.bind(py).clone().into_any(),
                slf.get().id.into_pyobject(py)?.into_any(),
            ],
        )?;
        Ok((slf.get_type(), args))
    }
}

/// What `Recording.__reduce__` returns: the class and its two fields.
type Reduced<'py> = (Bound<'py, PyType>, (Py<PyAny>, Py<Notification>));

/// A domain event and the notification it was recorded as (what
/// `Application.save` returns, one per event). As eventsourcing's frozen
/// dataclass: compared and hashed by its two fields, matched by position.
/// Visible to the cycle collector (an event may refer to its recording).
#[pyclass(module = "esox._core", frozen, generic, subclass)]
pub struct Recording {
    pub domain_event: Py<PyAny>,
    pub notification: Py<Notification>,
}

#[pymethods]
impl Recording {
    #[new]
    fn new(domain_event: Py<PyAny>, notification: Py<Notification>) -> Self {
        Recording {
            domain_event,
            notification,
        }
    }

    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("domain_event", "notification")
    }

    #[getter]
    fn domain_event(&self, py: Python<'_>) -> Py<PyAny> {
        self.domain_event.clone_ref(py)
    }

    #[getter]
    fn notification(&self, py: Python<'_>) -> Py<Notification> {
        self.notification.clone_ref(py)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.domain_event)?;
        visit.call(&self.notification)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Recording(domain_event={}, notification={})",
            self.domain_event.bind(py).repr()?,
            self.notification.bind(py).repr()?
        ))
    }

    /// As a dataclass's `__eq__`: the fields compared as tuples (so an
    /// object is equal to itself), `NotImplemented` for other classes.
    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if !other.get_type().is(slf.get_type()) {
            return Ok(py.NotImplemented());
        }
        let other = other.cast::<Recording>()?.get();
        let mine = slf.get();
        let equal = (mine.domain_event.bind(py), mine.notification.bind(py))
            .into_pyobject(py)?
            .eq((other.domain_event.bind(py), other.notification.bind(py)))?;
        Ok(equal.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        (self.domain_event.bind(py), self.notification.bind(py))
            .into_pyobject(py)?
            .hash()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        let py = slf.py();
        let r = slf.get();
        Ok((
            slf.get_type(),
            (r.domain_event.clone_ref(py), r.notification.clone_ref(py)),
        ))
    }
}

/// The recordings of a batch just inserted: each domain event with the
/// notification its stored event became (`notification_ids` in the same
/// order), built in one call instead of two objects a Python loop makes.
#[pyfunction]
pub fn recordings<'py>(
    py: Python<'py>,
    domain_events: &Bound<'py, PyAny>,
    stored_events: &Bound<'py, PyAny>,
    notification_ids: Vec<i64>,
) -> PyResult<Bound<'py, PyList>> {
    let events = domain_events.try_iter()?.collect::<PyResult<Vec<_>>>()?;
    let stored = stored_events.try_iter()?.collect::<PyResult<Vec<_>>>()?;
    if events.len() != stored.len() || stored.len() != notification_ids.len() {
        return Err(PyValueError::new_err(format!(
            "{} domain events, {} stored events and {} notification ids do not pair up",
            events.len(),
            stored.len(),
            notification_ids.len()
        )));
    }
    let out = PyList::empty(py);
    for ((event, s), id) in events.into_iter().zip(stored).zip(notification_ids) {
        let notification = match s.cast::<StoredEvent>() {
            Ok(s) => {
                let s = s.get();
                Notification::create(
                    py,
                    id,
                    s.originator_id.clone_ref(py),
                    s.originator_version,
                    s.topic.clone_ref(py),
                    s.state.clone_ref(py),
                )?
            }
            Err(_) => Notification::create(
                py,
                id,
                s.getattr(intern!(py, "originator_id"))?.unbind(),
                s.getattr(intern!(py, "originator_version"))?.extract()?,
                s.getattr(intern!(py, "topic"))?.extract()?,
                s.getattr(intern!(py, "state"))?.extract()?,
            )?,
        };
        let recording = Recording {
            domain_event: event.unbind(),
            notification,
        };
        out.append(Py::new(py, recording)?)?;
    }
    Ok(out)
}

/// The position of a processed notification in an upstream application.
#[pyclass(module = "esox._core", frozen)]
pub struct Tracking {
    pub application_name: String,
    pub notification_id: i64,
}

#[pymethods]
impl Tracking {
    #[new]
    fn new(application_name: String, notification_id: i64) -> Self {
        Tracking {
            application_name,
            notification_id,
        }
    }

    #[getter]
    fn application_name(&self) -> &str {
        &self.application_name
    }

    #[getter]
    fn notification_id(&self) -> i64 {
        self.notification_id
    }

    fn __repr__(&self) -> String {
        format!(
            "Tracking(application_name={:?}, notification_id={})",
            self.application_name, self.notification_id
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<Tracking>() {
            Ok(other) => {
                let other = other.get();
                self.application_name == other.application_name
                    && self.notification_id == other.notification_id
            }
            Err(_) => false,
        }
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        (self.application_name.as_str(), self.notification_id)
            .into_pyobject(py)?
            .hash()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyType>, (String, i64))> {
        let t = slf.get();
        Ok((
            slf.get_type(),
            (t.application_name.clone(), t.notification_id),
        ))
    }
}

/// The `topics` argument of `select_notifications`: a sequence of str (a bare
/// str is refused, not matched character by character); `None` means all.
pub fn topics_arg<'py>(topics: Option<&Bound<'py, PyAny>>) -> PyResult<Vec<Bound<'py, PyString>>> {
    match topics {
        None => Ok(Vec::new()),
        Some(t) if t.is_instance_of::<PyString>() => Err(PyTypeError::new_err(
            "topics must be a sequence of str, not a str",
        )),
        Some(t) => t
            .try_iter()
            .map_err(|_| PyTypeError::new_err("topics must be a sequence of str"))?
            .map(|item| {
                item?
                    .cast_into::<PyString>()
                    .map_err(|_| PyTypeError::new_err("topics must contain only str"))
            })
            .collect(),
    }
}
