//! `SqliteRecorder`: an aggregate, application, tracking or process recorder
//! over one `SqliteDatabase`, its SQL run with the GIL released.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::convert::{self, with_new_events};
use super::cursor::SqliteCursor;
use super::database::{Database, DbResult};
use super::store::{self, IdType, Schema};
use super::{SqliteDatabase, DEFAULT_LOCK_TIMEOUT, FIRST_POLL_INTERVAL};
use crate::errors::{error, ErrorKind};
use crate::records::{topics_arg, Tracking};

/// How often a blocked waiter wakes to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// An SQLite recorder of stored events (with notification ids or without),
/// tracking records, or both; thread-safe, and safe for several processes
/// sharing one file.
#[pyclass(module = "esox._core", frozen, subclass)]
pub struct SqliteRecorder {
    /// Set on construction, or by `_configure` when a Python subclass's
    /// `__init__` decides the database and table (eventsourcing's way).
    inner: OnceLock<Inner>,
    closed: AtomicBool,
}

struct Inner {
    database: Py<SqliteDatabase>,
    db: Arc<Database>,
    schema: Schema,
    id_type: IdType,
    /// Whether `close()` closes the database (it was opened for this recorder).
    owns_database: bool,
}

impl Inner {
    fn keeps_notifications(&self) -> bool {
        self.schema.events_table.is_some() && self.schema.notifications
    }
}

impl SqliteRecorder {
    fn inner(&self, py: Python<'_>) -> PyResult<&Inner> {
        self.inner.get().ok_or_else(|| {
            error(
                py,
                ErrorKind::Programming,
                "this SQLite recorder has no database yet: a subclass's __init__ \
                 must call super().__init__(datastore, ...)",
            )
        })
    }

    /// Runs `f` with the GIL released; raises its error as an esox exception.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Database, &Schema) -> DbResult<T> + Send,
    ) -> PyResult<T> {
        let inner = self.inner(py)?;
        if self.closed.load(Ordering::Acquire) {
            return Err(error(
                py,
                ErrorKind::Interface,
                format!("SQLite recorder of {} is closed", inner.db.path),
            ));
        }
        let (db, schema) = (&*inner.db, &inner.schema);
        py.detach(|| f(db, schema)).map_err(|e| e.into_pyerr(py))
    }

    /// The cursor, checked to be on this recorder's database.
    fn same_database<'a>(
        &self,
        inner: &Inner,
        cursor: &'a Bound<'_, SqliteCursor>,
    ) -> PyResult<&'a SqliteCursor> {
        let py = cursor.py();
        let cursor = cursor.get();
        if !Arc::ptr_eq(&cursor.db, &inner.db) {
            return Err(error(
                py,
                ErrorKind::Programming,
                format!(
                    "the cursor is on database {}, not this recorder's {}",
                    cursor.db.path, inner.db.path
                ),
            ));
        }
        Ok(cursor)
    }

    /// Blocks, detached, until `holds` or the timeout passes; returns whether
    /// it holds. Wakes now and then to let Python handle signals.
    fn wait_until(
        &self,
        py: Python<'_>,
        timeout: f64,
        holds: impl Fn(&Schema, &rusqlite::Connection) -> DbResult<bool> + Sync,
    ) -> PyResult<bool> {
        if timeout.is_nan() {
            return Err(PyValueError::new_err("timeout must be a number, not NaN"));
        }
        // An infinite (or absurdly long) timeout waits for ever.
        let deadline = Duration::try_from_secs_f64(timeout.max(0.0))
            .ok()
            .and_then(|d| Instant::now().checked_add(d));
        let mut poll = FIRST_POLL_INTERVAL;
        loop {
            let until = Instant::now() + SIGNAL_CHECK_INTERVAL;
            let until = deadline.map_or(until, |d| d.min(until));
            let held = self.run(py, |db, schema| {
                db.wait_until(until, &mut poll, |conn| holds(schema, conn))
            })?;
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
impl SqliteRecorder {
    #[new]
    #[pyo3(signature = (
        database=None,
        events_table=Some("stored_events".to_owned()),
        *,
        notifications=true,
        tracking=false,
        originator_id_type="uuid",
        lock_timeout=None,
        synchronous=None,
        create_table=true,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        database: Option<&Bound<'_, PyAny>>,
        events_table: Option<String>,
        notifications: bool,
        tracking: bool,
        originator_id_type: &str,
        lock_timeout: Option<f64>,
        synchronous: Option<&str>,
        create_table: bool,
    ) -> PyResult<Self> {
        let recorder = SqliteRecorder {
            inner: OnceLock::new(),
            closed: AtomicBool::new(false),
        };
        if let Some(database) = database {
            // Only a Python subclass (eventsourcing's SQLiteRecorder) keeps no
            // tables of its own.
            if events_table.is_none() && !tracking {
                return Err(PyValueError::new_err(
                    "a recorder with no events table must have tracking=True",
                ));
            }
            recorder.configure(
                py,
                database,
                events_table,
                notifications,
                tracking,
                originator_id_type,
                lock_timeout,
                synchronous,
                create_table,
            )?;
        }
        Ok(recorder)
    }

    /// Set the database and tables of a recorder made without them (by a
    /// Python subclass's `__init__`); once only.
    #[pyo3(name = "_configure", signature = (
        database,
        events_table,
        *,
        notifications=true,
        tracking=false,
        originator_id_type="uuid",
        lock_timeout=None,
        synchronous=None,
        create_table=true,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn configure(
        &self,
        py: Python<'_>,
        database: &Bound<'_, PyAny>,
        events_table: Option<String>,
        notifications: bool,
        tracking: bool,
        originator_id_type: &str,
        lock_timeout: Option<f64>,
        synchronous: Option<&str>,
        create_table: bool,
    ) -> PyResult<()> {
        let id_type = match originator_id_type.to_ascii_lowercase().as_str() {
            "uuid" => IdType::Uuid,
            "text" => IdType::Text,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "originator_id_type must be \"uuid\" or \"text\", got {originator_id_type:?}"
                )))
            }
        };
        if let Some(name) = &events_table {
            if !store::is_valid_table_name(name) {
                return Err(PyValueError::new_err(format!(
                    "events_table {name:?} is not a valid table name \
                     (letters, digits and underscores, not starting with a digit)"
                )));
            }
        }
        let (database, owns_database) = if let Ok(shared) = database.cast::<SqliteDatabase>() {
            if lock_timeout.is_some() || synchronous.is_some() {
                return Err(PyTypeError::new_err(
                    "lock_timeout and synchronous belong to the shared SqliteDatabase; \
                     pass them when opening it",
                ));
            }
            (shared.clone().unbind(), false)
        } else if let Ok(path) = database.cast::<PyString>() {
            let opened = SqliteDatabase::open(
                py,
                path.to_str()?,
                lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
                synchronous.unwrap_or("FULL"),
            )?;
            (Py::new(py, opened)?, true)
        } else {
            return Err(PyTypeError::new_err(format!(
                "database must be a path (str) or an SqliteDatabase, not {}",
                database.get_type().qualname()?
            )));
        };
        let db = database.get().db.clone();
        let schema = Schema::new(&db.path, events_table, notifications, tracking);
        let inner = Inner {
            database,
            db,
            schema,
            id_type,
            owns_database,
        };
        if self.inner.set(inner).is_err() {
            return Err(error(
                py,
                ErrorKind::Programming,
                "this SQLite recorder already has its database",
            ));
        }
        if create_table {
            self.create_table(py)?;
        }
        Ok(())
    }

    /// The database this recorder reads and writes.
    #[getter]
    fn database(&self, py: Python<'_>) -> PyResult<Py<SqliteDatabase>> {
        Ok(self.inner(py)?.database.clone_ref(py))
    }

    #[getter]
    fn events_table(&self, py: Python<'_>) -> PyResult<Option<&str>> {
        Ok(self.inner(py)?.schema.events_table.as_deref())
    }

    #[getter]
    fn keeps_notifications(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.inner(py)?.keeps_notifications())
    }

    #[getter]
    fn has_tracking(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.inner(py)?.schema.tracking)
    }

    #[getter]
    fn originator_id_type(&self, py: Python<'_>) -> PyResult<&'static str> {
        Ok(match self.inner(py)?.id_type {
            IdType::Uuid => "uuid",
            IdType::Text => "text",
        })
    }

    /// The statements that create this recorder's tables (as `create_table`
    /// creates them; an older tracking table is migrated first).
    #[getter]
    fn native_create_table_statements(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self.inner(py)?.schema.create_table_statements())
    }

    /// Create this recorder's tables if they do not exist (done on
    /// construction unless create_table=False).
    fn create_table(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |db, schema| {
            if db.read(|conn| schema.tables_missing(conn))? {
                db.write(|conn| schema.create_missing_tables(conn))?;
            }
            Ok(())
        })
    }

    /// Create this recorder's tables (migrating an older tracking table) in
    /// the cursor's write transaction.
    fn _create_tables_in(&self, cursor: &Bound<'_, SqliteCursor>) -> PyResult<()> {
        let py = cursor.py();
        let inner = self.inner(py)?;
        let schema = &inner.schema;
        self.same_database(inner, cursor)?
            .in_write_transaction(py, |conn| schema.create_tables_in(conn))
    }

    /// Records a batch of stored events (and optionally a tracking record)
    /// atomically; returns their notification ids (None without notifications).
    #[pyo3(signature = (stored_events, *, tracking=None, **kwargs))]
    fn insert_events<'py>(
        &self,
        py: Python<'py>,
        stored_events: &Bound<'py, PyAny>,
        tracking: Option<Bound<'py, Tracking>>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        // Other recorders take extra keyword arguments; this one has no use for them.
        let _ = kwargs;
        let inner = self.inner(py)?;
        with_new_events(py, stored_events, inner.id_type, |events| {
            let tracking = tracking.as_ref().map(|t| {
                let t = t.get();
                (t.application_name.as_str(), t.notification_id)
            });
            if events.is_empty() && tracking.is_none() {
                // Nothing to insert, but a missing table is refused as a
                // statement would refuse it.
                self.run(py, |db, schema| {
                    db.read(|conn| schema.check_insertable(conn))
                })?;
                return Ok(inner.keeps_notifications().then(|| PyList::empty(py)));
            }
            let ids = self.run(py, |db, schema| {
                db.write(|conn| schema.insert_events(conn, events, tracking))
            })?;
            if inner.keeps_notifications() {
                Ok(Some(PyList::new(py, ids)?))
            } else {
                Ok(None)
            }
        })
    }

    /// Inserts a batch of stored events (and optionally a tracking record)
    /// in the cursor's write transaction; returns their notification ids
    /// (None without notifications). What `_insert_events` calls.
    #[pyo3(signature = (cursor, stored_events, *, tracking=None))]
    fn _insert_events_in<'py>(
        &self,
        cursor: &Bound<'py, SqliteCursor>,
        stored_events: &Bound<'py, PyAny>,
        tracking: Option<Bound<'py, Tracking>>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let py = cursor.py();
        let inner = self.inner(py)?;
        let cursor = self.same_database(inner, cursor)?;
        with_new_events(py, stored_events, inner.id_type, |events| {
            let tracking = tracking.as_ref().map(|t| {
                let t = t.get();
                (t.application_name.as_str(), t.notification_id)
            });
            let schema = &inner.schema;
            let ids = cursor
                .in_write_transaction(py, |conn| schema.insert_events_in(conn, events, tracking))?;
            if inner.keeps_notifications() {
                Ok(Some(PyList::new(py, ids)?))
            } else {
                Ok(None)
            }
        })
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
        if let Some(limit) = limit.filter(|&l| l < 0) {
            return Err(PyValueError::new_err(format!(
                "limit must not be negative, got {limit}"
            )));
        }
        let id_type = self.inner(py)?.id_type;
        let stored = convert::stored_originator_id(originator_id, id_type)?;
        let rows = self.run(py, |db, schema| {
            db.read(|conn| {
                schema.select_events(
                    conn,
                    &stored,
                    gt.unwrap_or(i64::MIN),
                    lte.unwrap_or(i64::MAX),
                    desc,
                    limit.unwrap_or(-1),
                )
            })
        })?;
        let table = self
            .inner(py)?
            .schema
            .events_table
            .as_deref()
            .unwrap_or_default();
        if rows.rows.is_empty() {
            return Ok(PyList::empty(py));
        }
        let originator_id = convert::selected_originator_id(originator_id, &stored, id_type)?;
        convert::stored_events(py, &rows, &originator_id, table)
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
        if limit < 0 {
            return Err(PyValueError::new_err(format!(
                "limit must not be negative, got {limit}"
            )));
        }
        let topics = topics_arg(topics)?;
        let topics = topics
            .iter()
            .map(|t| t.to_str())
            .collect::<PyResult<Vec<&str>>>()?;
        let first = match start {
            None => i64::MIN,
            Some(s) if inclusive_of_start => s,
            Some(s) => s.saturating_add(1),
        };
        let last = stop.unwrap_or(i64::MAX);
        let id_type = self.inner(py)?.id_type;
        let rows = self.run(py, |db, schema| {
            db.read(|conn| schema.select_notifications(conn, first, last, &topics, limit, id_type))
        })?;
        let table = self
            .inner(py)?
            .schema
            .events_table
            .as_deref()
            .unwrap_or_default();
        convert::notifications(py, &rows, table)
    }

    /// The largest notification id, or None if nothing is recorded.
    fn max_notification_id(&self, py: Python<'_>) -> PyResult<Option<i64>> {
        self.run(py, |db, schema| {
            db.read(|conn| schema.max_notification_id(conn))
        })
    }

    /// Records a tracking record; IntegrityError if it is not beyond the
    /// application's largest tracked notification id.
    fn insert_tracking(&self, py: Python<'_>, tracking: Bound<'_, Tracking>) -> PyResult<()> {
        let tracking = tracking.get();
        let (name, id) = (tracking.application_name.as_str(), tracking.notification_id);
        self.run(py, |db, schema| {
            db.write(|conn| schema.insert_tracking(conn, name, id))
        })
    }

    /// The largest tracked notification id of an application, or None.
    fn max_tracking_id(&self, py: Python<'_>, application_name: &str) -> PyResult<Option<i64>> {
        self.run(py, |db, schema| {
            db.read(|conn| schema.max_tracking_id(conn, application_name))
        })
    }

    /// Whether the application's notification `notification_id` (or a later
    /// one) has been tracked; True when `notification_id` is None.
    fn has_tracking_id(
        &self,
        py: Python<'_>,
        application_name: &str,
        notification_id: Option<i64>,
    ) -> PyResult<bool> {
        let Some(id) = notification_id else {
            return Ok(true);
        };
        Ok(self
            .max_tracking_id(py, application_name)?
            .is_some_and(|max| max >= id))
    }

    /// Block (GIL released) until max_notification_id() > gt or timeout.
    fn wait_for_notification(&self, py: Python<'_>, gt: i64, timeout: f64) -> PyResult<bool> {
        self.wait_until(py, timeout, |schema, conn| {
            Ok(schema
                .max_notification_id(conn)?
                .is_some_and(|max| max > gt))
        })
    }

    /// Block (GIL released) until that tracking id is recorded or timeout.
    fn wait_for_tracking(
        &self,
        py: Python<'_>,
        application_name: &str,
        notification_id: i64,
        timeout: f64,
    ) -> PyResult<bool> {
        self.wait_until(py, timeout, |schema, conn| {
            Ok(schema
                .max_tracking_id(conn, application_name)?
                .is_some_and(|max| max >= notification_id))
        })
    }

    /// Stop using the recorder; closes the database if the recorder opened it
    /// (a shared SqliteDatabase is closed by its owner).
    fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Release);
        if let Some(inner) = self.inner.get().filter(|inner| inner.owns_database) {
            py.detach(|| inner.db.close());
        }
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let Some(inner) = slf.get().inner.get() else {
            return Ok(format!("{}(<no database>)", slf.get_type().qualname()?));
        };
        Ok(format!(
            "{}({:?}, {:?})",
            slf.get_type().qualname()?,
            inner.db.path,
            inner.schema.events_table.as_deref().unwrap_or("tracking"),
        ))
    }
}
