//! The SQLite recorders: `SqliteDatabase` (a file or in-memory database and
//! its connections) and `SqliteRecorder` (aggregate, application, tracking or
//! process recorder over one database, chosen by its options).
//!
//! Every call does its SQLite I/O with the GIL released and builds Python
//! objects only afterwards. Writes take the database's writer connection and
//! run in `BEGIN IMMEDIATE` transactions, so threads and OS processes sharing
//! a file queue for the write lock instead of failing half way.

mod convert;
pub(crate) mod cursor;
pub(crate) mod database;
mod files;
mod recorder;
pub(crate) mod store;

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pub use cursor::{SqliteCursor, SqliteRow};
use database::{Database, Synchronous};
pub use recorder::SqliteRecorder;

/// First pause between polls of a waiter (doubling up to 50 ms).
pub(crate) const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(1);
pub(crate) const DEFAULT_LOCK_TIMEOUT: f64 = 5.0;

fn duration(seconds: f64, argument: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        PyValueError::new_err(format!(
            "{argument} must be a non-negative number of seconds, got {seconds}"
        ))
    })
}

/// An SQLite database (a file, ":memory:", or a "file:" URI) and its
/// connections, shared by the recorders built on it.
#[pyclass(module = "esox._core", frozen)]
pub struct SqliteDatabase {
    pub(crate) db: Arc<Database>,
}

impl SqliteDatabase {
    pub(crate) fn open(
        py: Python<'_>,
        path: &str,
        lock_timeout: f64,
        synchronous: &str,
    ) -> PyResult<SqliteDatabase> {
        let lock_timeout = duration(lock_timeout, "lock_timeout")?;
        let synchronous = Synchronous::parse(synchronous).ok_or_else(|| {
            PyValueError::new_err(format!(
                "synchronous must be \"FULL\" or \"NORMAL\", got {synchronous:?}"
            ))
        })?;
        let (db, warning) = py
            .detach(|| Database::open(path, lock_timeout, synchronous))
            .map_err(|e| e.into_pyerr(py))?;
        if let Some(warning) = warning {
            let message = std::ffi::CString::new(warning.replace('\0', ""))?;
            let category = py.get_type::<pyo3::exceptions::PyRuntimeWarning>();
            PyErr::warn(py, &category, &message, 1)?;
        }
        Ok(SqliteDatabase { db: Arc::new(db) })
    }
}

#[pymethods]
impl SqliteDatabase {
    #[new]
    #[pyo3(signature = (path, *, lock_timeout=DEFAULT_LOCK_TIMEOUT, synchronous="FULL"))]
    fn new(py: Python<'_>, path: &str, lock_timeout: f64, synchronous: &str) -> PyResult<Self> {
        SqliteDatabase::open(py, path, lock_timeout, synchronous)
    }

    #[getter]
    fn path(&self) -> &str {
        &self.db.path
    }

    #[getter]
    fn is_memory(&self) -> bool {
        self.db.memory
    }

    /// The database file's (device, inode), while open; None in memory.
    #[getter]
    fn file_id(&self) -> Option<(u64, u64)> {
        self.db.file_id()
    }

    #[getter]
    fn lock_timeout(&self) -> f64 {
        self.db.lock_timeout.as_secs_f64()
    }

    #[getter]
    fn synchronous(&self) -> &'static str {
        self.db.synchronous.as_str()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.db.is_closed()
    }

    /// Whether the file is in WAL mode (False in memory).
    #[getter]
    fn journal_mode_wal(&self) -> bool {
        self.db.journal_mode_wal
    }

    /// Whether opening the file switched it to WAL mode (it was new, or in
    /// another journal mode).
    #[getter]
    fn journal_mode_was_changed_to_wal(&self) -> bool {
        self.db.journal_mode_was_changed_to_wal
    }

    /// A cursor in a new transaction: with commit=True a write transaction
    /// (BEGIN IMMEDIATE) holding the writer connection; otherwise a read
    /// transaction (on the writer connection in memory). End it with
    /// `cursor.end(commit=...)`.
    #[pyo3(signature = (*, commit))]
    fn begin(&self, py: Python<'_>, commit: bool) -> PyResult<SqliteCursor> {
        let db = &self.db;
        py.detach(|| SqliteCursor::begin(db, commit))
            .map_err(|e| e.into_pyerr(py))
    }

    /// A cursor outside any transaction: each statement takes the writer
    /// connection and commits on its own.
    fn cursor(&self) -> SqliteCursor {
        SqliteCursor::autocommit(&self.db)
    }

    /// Close every connection (waiting for a write in progress to finish).
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.db.close());
    }

    fn __repr__(&self) -> String {
        format!("SqliteDatabase({:?})", self.db.path)
    }
}
