//! The in-memory DCB recorder: the store of `index.rs` behind one mutex.
//!
//! Python objects are read before the lock is taken; the query, the
//! condition's check and the append run with the GIL released under the
//! lock; events read are copied out and built as Python objects after it.
//! Subscribers wait on a condition variable that appends notify.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyList, PyType};

use super::convert::{
    append_condition, new_events, position, query_items, sequenced_events, Classes, Refusal,
};
use super::index::{Item, Store};
use super::SUBSCRIPTION_BATCH;

/// How often a blocked subscriber wakes to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

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
        let condition = append_condition(condition)?;
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
        outcome.map_err(|refusal| refusal.into_err(py))
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
