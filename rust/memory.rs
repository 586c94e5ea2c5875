//! The in-memory recorder: application, tracking and process recorder in one.
//!
//! Thread safety: all state sits behind one `Mutex`. A critical section never
//! runs Python code, never allocates Python objects and never drops a Python
//! reference (a decref could run a finaliser that re-enters the recorder), so
//! the holder of the mutex never needs anything from the interpreter and
//! threads may take the lock while attached. If the lock is contended we
//! detach before blocking on it (`lock_py_attached`). Waiters block on a
//! `Condvar` with the GIL released.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::{MutexExt, PyOnceLock};
use pyo3::types::{PyDict, PyList, PyString, PyType};

use crate::errors::{error, ErrorKind};
use crate::records::topics_arg;
use crate::records::{Notification, StoredEvent, Tracking};

/// How often a blocked waiter wakes to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// An originator id as a key: a UUID by its 128-bit value, or a string.
/// A UUID and a string with the same text are different originators.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum OriginatorKey<'a> {
    Uuid(u128),
    Str(&'a str),
}

impl OriginatorKey<'_> {
    fn describe(&self) -> String {
        match *self {
            OriginatorKey::Uuid(u) => format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                u >> 96,
                (u >> 80) & 0xffff,
                (u >> 64) & 0xffff,
                (u >> 48) & 0xffff,
                u & 0xffff_ffff_ffff
            ),
            OriginatorKey::Str(s) => format!("{s:?}"),
        }
    }
}

static UUID_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Reads an originator id (`uuid.UUID` or `str`) as a key borrowing its text.
fn originator_key<'a>(obj: &'a Bound<'_, PyAny>, argument: &str) -> PyResult<OriginatorKey<'a>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(OriginatorKey::Str(s.to_str()?));
    }
    let py = obj.py();
    let uuid_type = UUID_TYPE.import(py, "uuid", "UUID")?;
    if obj.get_type().is(uuid_type) || obj.is_instance(uuid_type)? {
        return Ok(OriginatorKey::Uuid(
            obj.getattr(intern!(py, "int"))?.extract()?,
        ));
    }
    Err(PyTypeError::new_err(format!(
        "{argument} must be a UUID or a str, not {}",
        obj.get_type().qualname()?
    )))
}

fn non_negative(value: Option<i64>, argument: &str) -> PyResult<Option<usize>> {
    match value {
        Some(v) if v < 0 => Err(PyValueError::new_err(format!(
            "{argument} must not be negative, got {v}"
        ))),
        Some(v) => Ok(Some(usize::try_from(v).unwrap_or(usize::MAX))),
        None => Ok(None),
    }
}

/// A stream's events: (originator version, position in `State::events`),
/// sorted by version.
type Stream = Vec<(i64, usize)>;

#[derive(Default)]
struct State {
    /// Every stored event in notification order: notification id = index + 1.
    events: Vec<Py<StoredEvent>>,
    uuid_streams: HashMap<u128, Stream>,
    str_streams: HashMap<Box<str>, Stream>,
    /// Topic → index into `topic_positions`.
    topic_ids: HashMap<Box<str>, usize>,
    /// For each topic, the positions of its events, ascending.
    topic_positions: Vec<Vec<usize>>,
    /// Application name → largest tracked notification id.
    tracking: HashMap<Box<str>, i64>,
}

impl State {
    fn stream(&self, key: OriginatorKey<'_>) -> Option<&Stream> {
        match key {
            OriginatorKey::Uuid(u) => self.uuid_streams.get(&u),
            OriginatorKey::Str(s) => self.str_streams.get(s),
        }
    }

    fn stream_mut(&mut self, key: OriginatorKey<'_>) -> &mut Stream {
        match key {
            OriginatorKey::Uuid(u) => self.uuid_streams.entry(u).or_default(),
            OriginatorKey::Str(s) => {
                if !self.str_streams.contains_key(s) {
                    self.str_streams.insert(s.into(), Stream::new());
                }
                self.str_streams
                    .get_mut(s)
                    .expect("stream was just inserted")
            }
        }
    }

    fn has_version(&self, key: OriginatorKey<'_>, version: i64) -> bool {
        self.stream(key)
            .is_some_and(|rows| rows.binary_search_by_key(&version, |r| r.0).is_ok())
    }

    fn max_tracking_id(&self, application_name: &str) -> Option<i64> {
        self.tracking.get(application_name).copied()
    }

    fn check_tracking(&self, tracking: &Tracking) -> Result<(), Conflict> {
        match self.max_tracking_id(&tracking.application_name) {
            Some(max) if max >= tracking.notification_id => Err(Conflict::Tracking {
                application_name: tracking.application_name.clone(),
                notification_id: tracking.notification_id,
                max,
            }),
            _ => Ok(()),
        }
    }

    fn record_tracking(&mut self, tracking: &Tracking) {
        let name = tracking.application_name.as_str();
        match self.tracking.get_mut(name) {
            Some(max) => *max = tracking.notification_id,
            None => {
                self.tracking.insert(name.into(), tracking.notification_id);
            }
        }
    }

    fn topic_id(&mut self, topic: &str) -> usize {
        if let Some(&id) = self.topic_ids.get(topic) {
            return id;
        }
        let id = self.topic_positions.len();
        self.topic_positions.push(Vec::new());
        self.topic_ids.insert(topic.into(), id);
        id
    }

    /// Positions in `lo..hi` of events with any of the given topics, ascending.
    fn positions_with_topics(
        &self,
        topics: &[&str],
        lo: usize,
        hi: usize,
        limit: usize,
    ) -> Vec<usize> {
        let mut ids: Vec<usize> = topics
            .iter()
            .filter_map(|t| self.topic_ids.get(*t).copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        // Merge the topics' position lists, each cut to the wanted range.
        let mut lists: Vec<&[usize]> = ids
            .iter()
            .map(|&id| {
                let all = &self.topic_positions[id];
                let start = all.partition_point(|&p| p < lo);
                let end = all.partition_point(|&p| p < hi);
                &all[start..end.max(start)]
            })
            .filter(|list| !list.is_empty())
            .collect();
        let mut out = Vec::new();
        while out.len() < limit {
            let Some((i, &p)) = lists
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.first().map(|p| (i, p)))
                .min_by_key(|&(_, p)| *p)
            else {
                break;
            };
            out.push(p);
            lists[i] = &lists[i][1..];
        }
        out
    }
}

/// Why a write was refused; turned into an `IntegrityError` once the lock is
/// released (building a Python exception must not happen under the lock).
enum Conflict {
    Event {
        originator: String,
        version: i64,
    },
    Tracking {
        application_name: String,
        notification_id: i64,
        max: i64,
    },
}

impl Conflict {
    fn into_err(self, py: Python<'_>) -> PyErr {
        let message = match self {
            Conflict::Event {
                originator,
                version,
            } => format!(
                "stored event already recorded: originator_id {originator} version {version}"
            ),
            Conflict::Tracking {
                application_name,
                notification_id,
                max,
            } => format!(
                "tracking already recorded: application {application_name:?} \
                 notification_id {notification_id} is not greater than {max}"
            ),
        };
        error(py, ErrorKind::Integrity, message)
    }
}

/// In-memory application, tracking and process recorder; thread-safe.
#[pyclass(module = "esox._core", frozen, subclass)]
pub struct MemoryRecorder {
    state: Mutex<State>,
    /// Notified whenever events or tracking records are added.
    changed: Condvar,
}

impl MemoryRecorder {
    /// Locks the state from an attached thread without risking a deadlock.
    fn lock(&self, py: Python<'_>) -> MutexGuard<'_, State> {
        self.state
            .lock_py_attached(py)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks, detached, until `holds(state)` or the timeout passes; returns
    /// whether it holds. Wakes now and then to let Python handle signals.
    fn wait_until(
        &self,
        py: Python<'_>,
        timeout: f64,
        holds: impl Fn(&State) -> bool + Sync,
    ) -> PyResult<bool> {
        if timeout.is_nan() {
            return Err(PyValueError::new_err("timeout must be a number, not NaN"));
        }
        // An infinite (or absurdly long) timeout waits for ever.
        let deadline = Duration::try_from_secs_f64(timeout.max(0.0))
            .ok()
            .and_then(|d| Instant::now().checked_add(d));
        loop {
            let held = py.detach(|| {
                let slice_end = Instant::now() + SIGNAL_CHECK_INTERVAL;
                let until = deadline.map_or(slice_end, |d| d.min(slice_end));
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if holds(&state) {
                        return true;
                    }
                    let now = Instant::now();
                    if now >= until {
                        return false;
                    }
                    state = self
                        .changed
                        .wait_timeout(state, until - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            });
            if held {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            py.check_signals()?;
        }
    }
}

#[pymethods]
impl MemoryRecorder {
    #[new]
    fn new() -> Self {
        MemoryRecorder {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    /// Records a batch of stored events (and optionally a tracking record)
    /// atomically; returns their notification ids.
    #[pyo3(signature = (stored_events, *, tracking=None, **kwargs))]
    fn insert_events<'py>(
        &self,
        py: Python<'py>,
        stored_events: &Bound<'py, PyAny>,
        tracking: Option<Bound<'py, Tracking>>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyList>> {
        // Other recorders take extra keyword arguments; this one has no use for them.
        let _ = kwargs;
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

        // Read everything needed from Python before taking the lock.
        let mut rows = Vec::with_capacity(items.len());
        for item in &items {
            let event = item.get();
            let key = originator_key(event.originator_id.bind(py), "originator_id")?;
            let topic = event.topic.bind(py).to_str()?;
            rows.push((key, event.originator_version, topic));
        }
        if rows.len() > 1 {
            let mut seen = HashSet::with_capacity(rows.len());
            for &(key, version, _) in &rows {
                if !seen.insert((key, version)) {
                    return Err(error(
                        py,
                        ErrorKind::Integrity,
                        format!(
                            "stored events are not unique: originator_id {} version {version} \
                             appears more than once in the batch",
                            key.describe()
                        ),
                    ));
                }
            }
        }
        let tracking = tracking.as_ref().map(|t| t.get());

        let outcome = {
            let mut state = self.lock(py);
            let conflict = match rows.iter().find(|&&(k, v, _)| state.has_version(k, v)) {
                Some(&(key, version, _)) => Some(Conflict::Event {
                    originator: key.describe(),
                    version,
                }),
                None => tracking.and_then(|t| state.check_tracking(t).err()),
            };
            match conflict {
                Some(conflict) => Err(conflict),
                None => {
                    let first = state.events.len();
                    for (position, (item, &(key, version, topic))) in
                        (first..).zip(items.iter().zip(&rows))
                    {
                        state.events.push(item.clone().unbind());
                        let stream = state.stream_mut(key);
                        match stream.last() {
                            // Versions usually arrive in order; keep the stream sorted if not.
                            Some(&(last, _)) if last > version => {
                                let at = stream.partition_point(|r| r.0 < version);
                                stream.insert(at, (version, position));
                            }
                            _ => stream.push((version, position)),
                        }
                        let topic_id = state.topic_id(topic);
                        state.topic_positions[topic_id].push(position);
                    }
                    if let Some(t) = tracking {
                        state.record_tracking(t);
                    }
                    if !rows.is_empty() || tracking.is_some() {
                        self.changed.notify_all();
                    }
                    Ok(first)
                }
            }
        };
        match outcome {
            Ok(first) => {
                let first = first as i64 + 1;
                PyList::new(py, first..first + rows.len() as i64)
            }
            Err(conflict) => Err(conflict.into_err(py)),
        }
    }

    /// The stored events of one originator with versions in (gt, lte],
    /// ascending (or descending), at most `limit` of them.
    #[pyo3(signature = (originator_id, *, gt=None, lte=None, desc=false, limit=None))]
    fn select_events<'py>(
        &self,
        py: Python<'py>,
        originator_id: &Bound<'py, PyAny>,
        gt: Option<i64>,
        lte: Option<i64>,
        desc: bool,
        limit: Option<i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let key = originator_key(originator_id, "originator_id")?;
        let limit = non_negative(limit, "limit")?;
        let selected: Vec<Py<StoredEvent>> = {
            let state = self.lock(py);
            match state.stream(key) {
                None => Vec::new(),
                Some(rows) => {
                    let lo = gt.map_or(0, |gt| rows.partition_point(|r| r.0 <= gt));
                    let hi = lte.map_or(rows.len(), |lte| rows.partition_point(|r| r.0 <= lte));
                    let rows = &rows[lo..hi.max(lo)];
                    let n = limit.map_or(rows.len(), |l| l.min(rows.len()));
                    let event = |&(_, p): &(i64, usize)| state.events[p].clone_ref(py);
                    if desc {
                        rows.iter().rev().take(n).map(event).collect()
                    } else {
                        rows[..n].iter().map(event).collect()
                    }
                }
            }
        };
        PyList::new(py, selected)
    }

    /// Notifications with ids from `start` (or after it) up to `stop`,
    /// optionally only of the given topics, at most `limit`, ascending.
    #[pyo3(signature = (start, limit, stop=None, topics=None, *, inclusive_of_start=true))]
    fn select_notifications<'py>(
        &self,
        py: Python<'py>,
        start: Option<i64>,
        limit: i64,
        stop: Option<i64>,
        topics: Option<&Bound<'py, PyAny>>,
        inclusive_of_start: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let limit = non_negative(Some(limit), "limit")?.unwrap_or(0);
        let topics = topics_arg(topics)?;
        let topics = topics
            .iter()
            .map(|t| t.to_str())
            .collect::<PyResult<Vec<&str>>>()?;
        // Lowest wanted id, as a position (id - 1); ids start at 1.
        let first_id = match start {
            None => 1,
            Some(s) if inclusive_of_start => s,
            Some(s) => s.saturating_add(1),
        };
        let lo = usize::try_from(first_id.max(1) - 1).unwrap_or(usize::MAX);
        let selected: Vec<(usize, Py<StoredEvent>)> = {
            let state = self.lock(py);
            let len = state.events.len();
            let hi = match stop {
                Some(stop) => usize::try_from(stop.max(0)).map_or(len, |s| s.min(len)),
                None => len,
            };
            let positions = if topics.is_empty() {
                (lo..hi.max(lo)).take(limit).collect()
            } else {
                state.positions_with_topics(&topics, lo, hi, limit)
            };
            positions
                .into_iter()
                .map(|p| (p, state.events[p].clone_ref(py)))
                .collect()
        };
        let notifications = selected
            .into_iter()
            .map(|(p, event)| {
                let e = event.get();
                Notification::create(
                    py,
                    p as i64 + 1,
                    e.originator_id.clone_ref(py),
                    e.originator_version,
                    e.topic.clone_ref(py),
                    e.state.clone_ref(py),
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, notifications)
    }

    /// The largest notification id, or None if nothing is recorded.
    fn max_notification_id(&self, py: Python<'_>) -> Option<i64> {
        let len = self.lock(py).events.len();
        (len > 0).then_some(len as i64)
    }

    /// Records a tracking record; IntegrityError if it is not beyond the
    /// application's largest tracked notification id.
    fn insert_tracking(&self, py: Python<'_>, tracking: Bound<'_, Tracking>) -> PyResult<()> {
        let tracking = tracking.get();
        let outcome = {
            let mut state = self.lock(py);
            let outcome = state.check_tracking(tracking);
            if outcome.is_ok() {
                state.record_tracking(tracking);
                self.changed.notify_all();
            }
            outcome
        };
        outcome.map_err(|c| c.into_err(py))
    }

    /// The largest tracked notification id of an application, or None.
    fn max_tracking_id(&self, py: Python<'_>, application_name: &str) -> Option<i64> {
        self.lock(py).max_tracking_id(application_name)
    }

    /// Whether the application's notification `notification_id` (or a later
    /// one) has been tracked; True when `notification_id` is None.
    fn has_tracking_id(
        &self,
        py: Python<'_>,
        application_name: &str,
        notification_id: Option<i64>,
    ) -> bool {
        match notification_id {
            None => true,
            Some(id) => self
                .lock(py)
                .max_tracking_id(application_name)
                .is_some_and(|max| max >= id),
        }
    }

    /// Block (GIL released) until max_notification_id() > gt or timeout.
    fn wait_for_notification(&self, py: Python<'_>, gt: i64, timeout: f64) -> PyResult<bool> {
        self.wait_until(py, timeout, |state| state.events.len() as i64 > gt)
    }

    /// Block (GIL released) until that tracking id is recorded or timeout.
    fn wait_for_tracking(
        &self,
        py: Python<'_>,
        application_name: &str,
        notification_id: i64,
        timeout: f64,
    ) -> PyResult<bool> {
        self.wait_until(py, timeout, |state| {
            state
                .max_tracking_id(application_name)
                .is_some_and(|max| max >= notification_id)
        })
    }
}
