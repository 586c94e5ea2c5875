//! One SQLite database shared by recorders: a writer connection behind a
//! mutex, a small pool of reader connections, and the one function that turns
//! SQLite errors into esox errors.
//!
//! Nothing here touches Python: every function runs with the GIL released.
//! Errors are `DbError`s (a kind and a message) that the caller raises once
//! it holds the GIL again.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{ArcMutexGuard, Condvar, Mutex, RawMutex};
use pyo3::prelude::*;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::files::{FileId, Opening, Registration};
use crate::errors::{error, ErrorKind};

/// Idle reader connections kept open; more are opened when needed.
const READER_POOL_SIZE: usize = 8;
/// Prepared statements cached per connection (select statements vary with
/// the number of topics).
const STATEMENT_CACHE_CAPACITY: usize = 64;
/// Longest pause between two polls while waiting for another process.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// An error to raise as the esox persistence exception of its kind.
#[derive(Debug)]
pub struct DbError {
    pub kind: ErrorKind,
    pub message: String,
}

impl DbError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        DbError {
            kind,
            message: message.into(),
        }
    }

    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        error(py, self.kind, self.message)
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// Turns a rusqlite error into an esox error whose message says what failed
/// (`context`, e.g. "inserting stored events into stored_events of app.db").
pub fn sqlite_error(e: rusqlite::Error, context: impl Display) -> DbError {
    use rusqlite::Error as E;
    let kind = match &e {
        E::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::ConstraintViolation => ErrorKind::Integrity,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => ErrorKind::Data,
            ErrorCode::TooBig | ErrorCode::TypeMismatch => ErrorKind::Data,
            // SQLITE_ERROR: bad SQL, usually a missing or differently shaped table.
            ErrorCode::Unknown | ErrorCode::AuthorizationForStatementDenied => {
                ErrorKind::Programming
            }
            ErrorCode::ApiMisuse | ErrorCode::ParameterOutOfRange => ErrorKind::Interface,
            ErrorCode::InternalMalfunction | ErrorCode::NotFound => ErrorKind::Internal,
            // Busy, locked, read-only, disk full, I/O error, cannot open, ...
            _ => ErrorKind::Operational,
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..)
        | E::InvalidColumnType(..) => ErrorKind::Data,
        E::NulError(..) | E::InvalidPath(..) => ErrorKind::Interface,
        _ => ErrorKind::Programming,
    };
    // "no such table" is SQLITE_ERROR, from a statement or from preparing it.
    let kind = if kind == ErrorKind::Programming && e.to_string().contains("no such table") {
        ErrorKind::MissingTable
    } else {
        kind
    };
    let detail = match &e {
        E::SqliteFailure(failure, Some(message)) => {
            format!("{message} ({})", code_name(failure.extended_code))
        }
        E::SqliteFailure(failure, None) => format!(
            "{} ({})",
            rusqlite::ffi::code_to_str(failure.extended_code),
            code_name(failure.extended_code)
        ),
        other => other.to_string(),
    };
    DbError::new(kind, format!("SQLite failed {context}: {detail}"))
}

fn code_name(extended_code: i32) -> String {
    use rusqlite::ffi;
    let name = match extended_code & 0xff {
        ffi::SQLITE_ERROR => "SQLITE_ERROR",
        ffi::SQLITE_INTERNAL => "SQLITE_INTERNAL",
        ffi::SQLITE_PERM => "SQLITE_PERM",
        ffi::SQLITE_ABORT => "SQLITE_ABORT",
        ffi::SQLITE_BUSY => "SQLITE_BUSY",
        ffi::SQLITE_LOCKED => "SQLITE_LOCKED",
        ffi::SQLITE_NOMEM => "SQLITE_NOMEM",
        ffi::SQLITE_READONLY => "SQLITE_READONLY",
        ffi::SQLITE_INTERRUPT => "SQLITE_INTERRUPT",
        ffi::SQLITE_IOERR => "SQLITE_IOERR",
        ffi::SQLITE_CORRUPT => "SQLITE_CORRUPT",
        ffi::SQLITE_FULL => "SQLITE_FULL",
        ffi::SQLITE_CANTOPEN => "SQLITE_CANTOPEN",
        ffi::SQLITE_PROTOCOL => "SQLITE_PROTOCOL",
        ffi::SQLITE_SCHEMA => "SQLITE_SCHEMA",
        ffi::SQLITE_TOOBIG => "SQLITE_TOOBIG",
        ffi::SQLITE_CONSTRAINT => "SQLITE_CONSTRAINT",
        ffi::SQLITE_MISMATCH => "SQLITE_MISMATCH",
        ffi::SQLITE_MISUSE => "SQLITE_MISUSE",
        ffi::SQLITE_NOLFS => "SQLITE_NOLFS",
        ffi::SQLITE_AUTH => "SQLITE_AUTH",
        ffi::SQLITE_RANGE => "SQLITE_RANGE",
        ffi::SQLITE_NOTADB => "SQLITE_NOTADB",
        _ => return format!("SQLite error code {extended_code}"),
    };
    if extended_code > 0xff {
        format!("{name}, extended code {extended_code}")
    } else {
        name.to_owned()
    }
}

/// `PRAGMA synchronous` for every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Full,
    Normal,
}

impl Synchronous {
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_uppercase().as_str() {
            "FULL" => Some(Synchronous::Full),
            "NORMAL" => Some(Synchronous::Normal),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Whether a database name denotes an in-memory database (as eventsourcing
/// decides it): such a database lives in exactly one connection.
pub fn is_memory_name(path: &str) -> bool {
    path.contains(":memory:") || path.contains("mode=memory")
}

/// The writer connection held across Python calls (by an SQL cursor's
/// transaction); `None` inside once the database is closed.
pub type HeldWriter = ArcMutexGuard<RawMutex, Option<Connection>>;

/// A database file (or in-memory database) and its connections.
pub struct Database {
    pub path: String,
    pub memory: bool,
    pub lock_timeout: Duration,
    pub synchronous: Synchronous,
    /// Whether the file is in WAL mode, and whether opening it switched it.
    pub journal_mode_wal: bool,
    pub journal_mode_was_changed_to_wal: bool,
    /// The one connection that writes (and, in memory, also reads);
    /// `None` once closed. In an `Arc` so that a cursor can hold its lock.
    writer: Arc<Mutex<Option<Connection>>>,
    readers: Mutex<Vec<Connection>>,
    closed: AtomicBool,
    /// Commits made through this database, to wake local waiters at once.
    commits: Mutex<u64>,
    committed: Condvar,
    /// The file in the registry of files esox has open (last: dropped
    /// after the connections).
    file: Registration,
}

impl Database {
    /// Opens the database (creating a file if need be) in WAL mode; with a
    /// warning if this process seems to have the file open otherwise.
    pub fn open(
        path: &str,
        lock_timeout: Duration,
        synchronous: Synchronous,
    ) -> DbResult<(Self, Option<String>)> {
        let memory = is_memory_name(path);
        let opening = (!memory).then(Opening::begin);
        let warning = opening.as_ref().and_then(|opening| opening.check(path));
        let writer = connect(path, lock_timeout, synchronous)?;
        let file = opening.map_or_else(Registration::none, |o| o.register(path));
        let (mut journal_mode_wal, mut journal_mode_was_changed_to_wal) = (false, false);
        if !memory {
            let context = || format!("setting WAL journal mode on {path}");
            let mode: String = writer
                .query_row("PRAGMA journal_mode", [], |row| row.get(0))
                .map_err(|e| sqlite_error(e, context()))?;
            journal_mode_wal = mode.eq_ignore_ascii_case("wal");
            if !journal_mode_wal {
                let switched =
                    writer.query_row("PRAGMA journal_mode=WAL", [], |row| row.get::<_, String>(0));
                match switched {
                    Ok(mode) => {
                        journal_mode_wal = mode.eq_ignore_ascii_case("wal");
                        journal_mode_was_changed_to_wal = journal_mode_wal;
                    }
                    // A read-only file stays as it is; it can still be read.
                    Err(e) if e.sqlite_error_code() == Some(ErrorCode::ReadOnly) => {}
                    Err(e) => return Err(sqlite_error(e, context())),
                }
            }
        }
        let database = Database {
            path: path.to_owned(),
            memory,
            lock_timeout,
            synchronous,
            journal_mode_wal,
            journal_mode_was_changed_to_wal,
            writer: Arc::new(Mutex::new(Some(writer))),
            readers: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            commits: Mutex::new(0),
            committed: Condvar::new(),
            file,
        };
        Ok((database, warning))
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn closed_error(&self) -> DbError {
        DbError::new(
            ErrorKind::Interface,
            format!("SQLite database {} is closed", self.path),
        )
    }

    /// Runs `f` on the writer connection, waiting up to the lock timeout for
    /// other threads' writes to finish. Local waiters are woken afterwards.
    pub fn write<T>(&self, f: impl FnOnce(&mut Connection) -> DbResult<T>) -> DbResult<T> {
        let outcome = {
            let mut guard = self.lock_writer()?;
            let conn = guard.as_mut().ok_or_else(|| self.closed_error())?;
            f(conn)
        };
        if outcome.is_ok() {
            *self.commits.lock() += 1;
            self.committed.notify_all();
        }
        outcome
    }

    /// Runs `f` on a reader connection (the writer, for in-memory databases).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> DbResult<T>) -> DbResult<T> {
        if self.memory {
            let guard = self.lock_writer()?;
            let conn = guard.as_ref().ok_or_else(|| self.closed_error())?;
            return f(conn);
        }
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let pooled = self.readers.lock().pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => connect(&self.path, self.lock_timeout, self.synchronous)?,
        };
        let outcome = f(&conn);
        // A failed read may leave nothing wrong with the connection, but a
        // fresh one costs little and rules out a stuck statement.
        if outcome.is_ok() && !self.is_closed() {
            let mut readers = self.readers.lock();
            if readers.len() < READER_POOL_SIZE {
                readers.push(conn);
            }
        }
        outcome
    }

    fn lock_writer(&self) -> DbResult<parking_lot::MutexGuard<'_, Option<Connection>>> {
        self.writer
            .try_lock_for(self.lock_timeout)
            .ok_or_else(|| self.locked_error())
    }

    fn locked_error(&self) -> DbError {
        DbError::new(
            ErrorKind::Operational,
            format!(
                "SQLite database {} is locked: another thread held its connection \
                 for longer than the lock timeout ({:?})",
                self.path, self.lock_timeout
            ),
        )
    }

    /// The writer connection's lock, to hold across calls (an SQL cursor's
    /// transaction); waits up to the lock timeout, as writes do.
    pub fn hold_writer(&self) -> DbResult<HeldWriter> {
        let held = self
            .writer
            .try_lock_arc_for(self.lock_timeout)
            .ok_or_else(|| self.locked_error())?;
        if held.is_none() {
            return Err(self.closed_error());
        }
        Ok(held)
    }

    /// A reader connection of its own (file databases only), to give back
    /// with `give_back_reader`.
    pub fn take_reader(&self) -> DbResult<Connection> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let pooled = self.readers.lock().pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => connect(&self.path, self.lock_timeout, self.synchronous),
        }
    }

    pub fn give_back_reader(&self, conn: Connection) {
        if !self.is_closed() {
            let mut readers = self.readers.lock();
            if readers.len() < READER_POOL_SIZE {
                readers.push(conn);
            }
        }
    }

    /// Waits until `holds` returns true or `until` passes, polling the
    /// database (other processes may write it) at growing intervals and
    /// waking at once when this process commits. `poll` carries the interval
    /// between calls.
    pub fn wait_until(
        &self,
        until: Instant,
        poll: &mut Duration,
        holds: impl Fn(&Connection) -> DbResult<bool>,
    ) -> DbResult<bool> {
        loop {
            let seen = *self.commits.lock();
            if self.read(&holds)? {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(false);
            }
            let mut commits = self.commits.lock();
            if *commits == seen {
                self.committed
                    .wait_for(&mut commits, (*poll).min(until - now));
            }
            *poll = (*poll * 2).min(MAX_POLL_INTERVAL);
        }
    }

    /// Wakes this process's waiters (`wait_until`) to check their condition
    /// now, as a commit does.
    pub fn wake_waiters(&self) {
        *self.commits.lock() += 1;
        self.committed.notify_all();
    }

    /// Closes every connection; later calls raise InterfaceError.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.readers.lock().clear();
        // Waits for a write in progress to finish before closing.
        let connection = self.writer.lock().take();
        drop(connection);
        self.file.release();
        self.committed.notify_all();
    }

    /// The (device, inode) of the database file, while open (None in memory).
    pub fn file_id(&self) -> Option<FileId> {
        self.file.file_id()
    }
}

/// Opens one connection with the busy timeout and durability settings.
fn connect(path: &str, lock_timeout: Duration, synchronous: Synchronous) -> DbResult<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::default())
        .map_err(|e| sqlite_error(e, format!("opening database {path}")))?;
    let context = || format!("configuring connection to {path}");
    conn.busy_timeout(lock_timeout)
        .map_err(|e| sqlite_error(e, context()))?;
    conn.pragma_update(None, "synchronous", synchronous.as_str())
        .map_err(|e| sqlite_error(e, context()))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(conn: &Connection, sql: &str) -> DbError {
        let e = conn.execute_batch(sql).expect_err("statement should fail");
        sqlite_error(e, "in a test")
    }

    #[test]
    fn constraint_violation_is_an_integrity_error() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a PRIMARY KEY); INSERT INTO t VALUES (1);")
            .unwrap();
        let e = failing(&conn, "INSERT INTO t VALUES (1)");
        assert_eq!(e.kind, ErrorKind::Integrity);
        assert!(
            e.message.contains("UNIQUE constraint failed"),
            "{}",
            e.message
        );
        assert!(e.message.contains("in a test"), "{}", e.message);
    }

    #[test]
    fn full_database_is_an_operational_error() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (b BLOB); PRAGMA max_page_count = 3;")
            .unwrap();
        let e = failing(&conn, "INSERT INTO t VALUES (zeroblob(100000))");
        assert_eq!(e.kind, ErrorKind::Operational);
        assert!(e.message.contains("SQLITE_FULL"), "{}", e.message);
    }

    #[test]
    fn missing_table_is_a_missing_table_error() {
        let conn = Connection::open_in_memory().unwrap();
        let e = failing(&conn, "SELECT * FROM nowhere");
        assert_eq!(e.kind, ErrorKind::MissingTable);
        assert!(
            e.message.contains("no such table: nowhere"),
            "{}",
            e.message
        );
    }

    #[test]
    fn read_only_database_is_an_operational_error() {
        let path = std::env::temp_dir().join(format!("esox-ro-{}.db", std::process::id()));
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (a)")
            .unwrap();
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let e = failing(&conn, "INSERT INTO t VALUES (1)");
        drop(conn);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(e.kind, ErrorKind::Operational);
        assert!(e.message.contains("SQLITE_READONLY"), "{}", e.message);
    }
}
