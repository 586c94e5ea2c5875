//! The SQLite DCB recorder, on esox's SQLite database layer.
//!
//! Two tables: `<prefix>_events (position INTEGER PRIMARY KEY, type, data,
//! tags)`, indexed by type, and `<prefix>_tags (tag, position)`, a WITHOUT
//! ROWID table whose primary key is the tag index. A query item becomes one
//! SELECT (a tag's positions joined with the item's other tags and types),
//! the items a UNION, so reads look up positions instead of scanning. An
//! append checks its condition and inserts in one `BEGIN IMMEDIATE`
//! transaction: writers of every thread and process take turns, and
//! positions have no gaps. All SQLite work runs with the GIL released.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyType};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use super::convert::{
    append_condition, new_events, position, query_items, sequenced_events, Classes, Refusal,
};
use super::index::{Found, Item, NewEvent};
use super::SUBSCRIPTION_BATCH;
use crate::errors::ErrorKind;
use crate::sqlite::database::{sqlite_error, Database, DbError, DbResult};
use crate::sqlite::store::is_valid_table_name;
use crate::sqlite::{SqliteDatabase, DEFAULT_LOCK_TIMEOUT, FIRST_POLL_INTERVAL};

/// How often a blocked subscriber wakes to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The DCB tables of one recorder and the SQL over them.
pub struct Tables {
    events: String,
    tags: String,
    path: String,
}

/// Tags stored in an event's row, in order: each as its length (u32, little
/// endian) and its UTF-8 bytes (tags may hold any character, NUL too).
fn encode_tags(tags: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tags.iter().map(|t| t.len() + 4).sum());
    for tag in tags {
        out.extend_from_slice(&(tag.len() as u32).to_le_bytes());
        out.extend_from_slice(tag.as_bytes());
    }
    out
}

fn decode_tags(mut bytes: &[u8]) -> Option<Vec<Arc<str>>> {
    let mut tags = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let tag = rest.get(..len)?;
        tags.push(std::str::from_utf8(tag).ok()?.into());
        bytes = &rest[len..];
    }
    Some(tags)
}

impl Tables {
    fn new(prefix: &str, path: &str) -> Self {
        Tables {
            events: format!("{prefix}_events"),
            tags: format!("{prefix}_tags"),
            path: path.to_owned(),
        }
    }

    fn create(&self, conn: &mut Connection) -> DbResult<()> {
        let (e, t) = (&self.events, &self.tags);
        let context = || format!("creating tables {e} and {t} in {}", self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|err| sqlite_error(err, context()))?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {e} (\
                 position INTEGER PRIMARY KEY, \
                 type TEXT NOT NULL, \
                 data BLOB NOT NULL, \
                 tags BLOB NOT NULL);\
             CREATE INDEX IF NOT EXISTS {e}_type ON {e} (type);\
             CREATE TABLE IF NOT EXISTS {t} (\
                 tag TEXT NOT NULL, \
                 position INTEGER NOT NULL, \
                 PRIMARY KEY (tag, position)) WITHOUT ROWID;"
        ))
        .map_err(|err| sqlite_error(err, context()))?;
        tx.commit().map_err(|err| sqlite_error(err, context()))
    }

    fn head(&self, conn: &Connection) -> DbResult<u64> {
        conn.prepare_cached(&format!(
            "SELECT coalesce(max(position), 0) FROM {}",
            self.events
        ))
        .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(0)))
        .map(|h| h as u64)
        .map_err(|err| {
            sqlite_error(
                err,
                format!("reading the head of {} in {}", self.events, self.path),
            )
        })
    }

    /// A SELECT of the positions (or, with `rows`, the rows) after `?1`
    /// matching `query`, ascending, at most `?2`; and its other parameters.
    fn select_sql(&self, query: &[Item], rows: bool) -> (String, Vec<Value>) {
        let (e, t) = (&self.events, &self.tags);
        let columns = if rows {
            "e.position, e.type, e.data, e.tags"
        } else {
            "e.position"
        };
        let mut params: Vec<Value> = Vec::new();
        let mut param = |value: &str| {
            params.push(Value::Text(value.to_owned()));
            format!("?{}", params.len() + 2)
        };
        let everything = query.is_empty()
            || query
                .iter()
                .any(|i| i.types.is_empty() && i.tags.is_empty());
        if everything {
            let sql = format!(
                "SELECT {columns} FROM {e} AS e WHERE e.position > ?1 ORDER BY e.position LIMIT ?2"
            );
            return (sql, params);
        }
        let mut selects = Vec::with_capacity(query.len());
        for item in query {
            let mut types: Vec<&str> = item.types.iter().map(String::as_str).collect();
            types.sort_unstable();
            types.dedup();
            let mut tags: Vec<&str> = item.tags.iter().map(String::as_str).collect();
            tags.sort_unstable();
            tags.dedup();
            let type_in = (!types.is_empty()).then(|| {
                let list: Vec<String> = types.iter().map(|ty| param(ty)).collect();
                format!("IN ({})", list.join(", "))
            });
            let select = match (tags.split_first(), type_in) {
                (None, Some(type_in)) => {
                    format!("SELECT position FROM {e} WHERE type {type_in} AND position > ?1")
                }
                (None, None) => unreachable!("an empty item selects everything"),
                (Some((first, others)), type_in) => {
                    let mut sql = format!("SELECT t0.position FROM {t} AS t0");
                    for (k, tag) in others.iter().enumerate() {
                        let k = k + 1;
                        sql.push_str(&format!(
                            " JOIN {t} AS t{k} ON t{k}.tag = {} AND t{k}.position = t0.position",
                            param(tag)
                        ));
                    }
                    if let Some(type_in) = type_in {
                        sql.push_str(&format!(
                            " JOIN {e} AS x ON x.position = t0.position AND x.type {type_in}"
                        ));
                    }
                    sql.push_str(&format!(
                        " WHERE t0.tag = {} AND t0.position > ?1",
                        param(first)
                    ));
                    sql
                }
            };
            selects.push(select);
        }
        let union = selects.join(" UNION ");
        let sql = if rows {
            format!(
                "SELECT {columns} FROM ({union}) AS m JOIN {e} AS e ON e.position = m.position \
                 ORDER BY m.position LIMIT ?2"
            )
        } else {
            format!("SELECT m.position FROM ({union}) AS m ORDER BY m.position LIMIT ?2")
        };
        (sql, params)
    }

    fn context(&self, doing: &str) -> String {
        format!("{doing} {} of {}", self.events, self.path)
    }

    /// The events after `after` matching `query`, at most `limit`, and the
    /// head, from one snapshot of the database.
    fn select(
        &self,
        conn: &Connection,
        query: &[Item],
        after: u64,
        limit: Option<u64>,
    ) -> DbResult<(Vec<Found>, u64)> {
        let context = || self.context("reading DCB events from");
        let tx = conn
            .unchecked_transaction()
            .map_err(|err| sqlite_error(err, context()))?;
        let head = self.head(&tx)?;
        let (sql, params) = self.select_sql(query, true);
        let mut values = vec![
            Value::Integer(after as i64),
            Value::Integer(limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64)),
        ];
        values.extend(params);
        let mut statement = tx
            .prepare_cached(&sql)
            .map_err(|err| sqlite_error(err, context()))?;
        let rows = statement
            .query_map(params_from_iter(values.iter()), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                ))
            })
            .map_err(|err| sqlite_error(err, context()))?;
        let mut found = Vec::new();
        for row in rows {
            let (position, type_, data, tags) = row.map_err(|err| sqlite_error(err, context()))?;
            let tags = decode_tags(&tags).ok_or_else(|| {
                DbError::new(
                    ErrorKind::Data,
                    format!(
                        "the tags of the DCB event at position {position} in {} are corrupt",
                        context()
                    ),
                )
            })?;
            found.push(Found {
                position: position as u64,
                type_: type_.into(),
                tags,
                data: data.into(),
            });
        }
        Ok((found, head))
    }

    /// Checks the condition and appends the events in one write transaction;
    /// the last position, or why the append was refused.
    fn append(
        &self,
        conn: &mut Connection,
        events: &[NewEvent],
        condition: Option<&(Vec<Item>, u64)>,
    ) -> DbResult<Result<u64, Refusal>> {
        let context = || self.context("appending DCB events to");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|err| sqlite_error(err, context()))?;
        if let Some((query, after)) = condition {
            let after = *after;
            let head = self.head(&tx)?;
            if after > head {
                return Ok(Err(Refusal::BeyondHead { after, head }));
            }
            let (sql, params) = self.select_sql(query, false);
            let mut values = vec![Value::Integer(after as i64), Value::Integer(1)];
            values.extend(params);
            let matched = tx
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params_from_iter(values.iter()), |row| row.get::<_, i64>(0))
                        .optional()
                })
                .map_err(|err| sqlite_error(err, context()))?;
            if let Some(position) = matched {
                return Ok(Err(Refusal::Matched {
                    after,
                    position: position as u64,
                }));
            }
        }
        let mut last = 0;
        {
            let mut insert_event = tx
                .prepare_cached(&format!(
                    "INSERT INTO {} (type, data, tags) VALUES (?1, ?2, ?3)",
                    self.events
                ))
                .map_err(|err| sqlite_error(err, context()))?;
            let mut insert_tag = tx
                .prepare_cached(&format!(
                    "INSERT OR IGNORE INTO {} (tag, position) VALUES (?1, ?2)",
                    self.tags
                ))
                .map_err(|err| sqlite_error(err, context()))?;
            for event in events {
                insert_event
                    .execute((&event.type_, &event.data, encode_tags(&event.tags)))
                    .map_err(|err| sqlite_error(err, context()))?;
                last = tx.last_insert_rowid();
                for tag in &event.tags {
                    insert_tag
                        .execute((tag, last))
                        .map_err(|err| sqlite_error(err, context()))?;
                }
            }
        }
        tx.commit().map_err(|err| sqlite_error(err, context()))?;
        Ok(Ok(last as u64))
    }
}

/// A DCB recorder on an SQLite database; thread-safe, and safe for several
/// processes sharing one file.
#[pyclass(module = "esox._core", frozen, subclass)]
pub struct DCBSqliteRecorder {
    database: Py<SqliteDatabase>,
    db: Arc<Database>,
    tables: Arc<Tables>,
    classes: Arc<Classes>,
}

impl DCBSqliteRecorder {
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Database, &Tables) -> DbResult<T> + Send,
    ) -> PyResult<T> {
        let (db, tables) = (&*self.db, &*self.tables);
        py.detach(|| f(db, tables)).map_err(|e| e.into_pyerr(py))
    }
}

#[pymethods]
impl DCBSqliteRecorder {
    #[new]
    #[pyo3(signature = (
        database,
        *,
        table_prefix="dcb",
        create_table=true,
        lock_timeout=None,
        synchronous=None,
        event_class=None,
        sequenced_event_class=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        database: &Bound<'_, PyAny>,
        table_prefix: &str,
        create_table: bool,
        lock_timeout: Option<f64>,
        synchronous: Option<&str>,
        event_class: Option<Bound<'_, PyType>>,
        sequenced_event_class: Option<Bound<'_, PyType>>,
    ) -> PyResult<Self> {
        if !is_valid_table_name(table_prefix) || table_prefix.len() > 100 {
            return Err(PyValueError::new_err(format!(
                "table_prefix {table_prefix:?} is not a valid table name \
                 (letters, digits and underscores, not starting with a digit)"
            )));
        }
        let database = if let Ok(shared) = database.cast::<SqliteDatabase>() {
            if lock_timeout.is_some() || synchronous.is_some() {
                return Err(PyTypeError::new_err(
                    "lock_timeout and synchronous belong to the shared SqliteDatabase; \
                     pass them when opening it",
                ));
            }
            shared.clone().unbind()
        } else if let Ok(path) = database.cast::<PyString>() {
            let opened = SqliteDatabase::open(
                py,
                path.to_str()?,
                lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
                synchronous.unwrap_or("FULL"),
            )?;
            Py::new(py, opened)?
        } else {
            return Err(PyTypeError::new_err(format!(
                "database must be a path (str) or an SqliteDatabase, not {}",
                database.get_type().qualname()?
            )));
        };
        let db = database.get().db.clone();
        let recorder = DCBSqliteRecorder {
            tables: Arc::new(Tables::new(table_prefix, &db.path)),
            database,
            db,
            classes: Arc::new(Classes::new(py, event_class, sequenced_event_class)?),
        };
        if create_table {
            recorder.create_table(py)?;
        }
        Ok(recorder)
    }

    /// The database the recorder writes.
    #[getter]
    fn database(&self, py: Python<'_>) -> Py<SqliteDatabase> {
        self.database.clone_ref(py)
    }

    /// Creates the events and tags tables and the type index, if missing.
    fn create_table(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |db, tables| db.write(|conn| tables.create(conn)))
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
        let (found, head) = self.run(py, |db, tables| {
            db.read(|conn| tables.select(conn, &items, after, limit))
        })?;
        let head = match limit {
            None => Some(head).filter(|&h| h > 0),
            Some(_) => found.last().map(|f| f.position),
        };
        Ok((sequenced_events(py, &self.classes, found)?, head))
    }

    /// Appends events unless the condition fails (an event matching its
    /// query was recorded after its position); returns the last position.
    /// The check and the append are one write transaction.
    #[pyo3(signature = (events, condition=None))]
    fn append(
        &self,
        py: Python<'_>,
        events: &Bound<'_, PyAny>,
        condition: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let events = new_events(events)?;
        let condition = append_condition(condition)?;
        self.run(py, |db, tables| {
            db.write(|conn| tables.append(conn, &events, condition.as_ref()))
        })?
        .map_err(|refusal| refusal.into_err(py))
    }

    /// A cursor over the events after `after` matching `query` that waits
    /// for new ones (the engine of a subscription).
    #[pyo3(signature = (query=None, *, after=None))]
    fn cursor(
        &self,
        py: Python<'_>,
        query: Option<&Bound<'_, PyAny>>,
        after: Option<i64>,
    ) -> PyResult<DCBSqliteCursor> {
        Ok(DCBSqliteCursor {
            db: self.db.clone(),
            tables: self.tables.clone(),
            classes: self.classes.clone(),
            query: query_items(query, "query")?,
            position: AtomicU64::new(position(py, after, "after")?.unwrap_or(0)),
            stopped: AtomicBool::new(false),
        })
    }

    /// The last position recorded (0 when empty).
    #[getter]
    fn max_position(&self, py: Python<'_>) -> PyResult<u64> {
        self.run(py, |db, tables| db.read(|conn| tables.head(conn)))
    }

    /// The query plan SQLite uses for a read of `query` (to show it looks
    /// positions up instead of scanning).
    #[pyo3(signature = (query=None))]
    fn explain_read(
        &self,
        py: Python<'_>,
        query: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<String>> {
        let items = query_items(query, "query")?;
        let (sql, params) = self.tables.select_sql(&items, true);
        let mut values = vec![Value::Integer(0), Value::Integer(-1)];
        values.extend(params);
        self.run(py, |db, tables| {
            db.read(|conn| {
                let context = || tables.context("explaining a read of");
                let mut statement = conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .map_err(|err| sqlite_error(err, context()))?;
                let rows = statement
                    .query_map(params_from_iter(values.iter()), |row| {
                        row.get::<_, String>(3)
                    })
                    .map_err(|err| sqlite_error(err, context()))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(|err| sqlite_error(err, context()))
            })
        })
    }
}

/// Events after a position matching a query, taken in batches; a batch
/// waits (GIL released) until there is at least one event or the cursor is
/// stopped, woken at once by this process's commits and polling for other
/// processes' at growing intervals (up to 50 ms).
#[pyclass(module = "esox._core", frozen)]
pub struct DCBSqliteCursor {
    db: Arc<Database>,
    tables: Arc<Tables>,
    classes: Arc<Classes>,
    query: Vec<Item>,
    position: AtomicU64,
    stopped: AtomicBool,
}

#[pymethods]
impl DCBSqliteCursor {
    /// The next events (at most `limit`), waiting for one if there are none
    /// yet; an empty list once the cursor has been stopped.
    #[pyo3(signature = (limit=SUBSCRIPTION_BATCH))]
    fn next_batch<'py>(&self, py: Python<'py>, limit: usize) -> PyResult<Bound<'py, PyList>> {
        let limit = limit.max(1) as u64;
        let mut poll = FIRST_POLL_INTERVAL;
        loop {
            let outcome = py.detach(|| -> DbResult<Option<Vec<Found>>> {
                let until = Instant::now() + SIGNAL_CHECK_INTERVAL;
                loop {
                    if self.stopped.load(Ordering::SeqCst) {
                        return Ok(Some(Vec::new()));
                    }
                    let after = self.position.load(Ordering::SeqCst);
                    let (found, head) = self
                        .db
                        .read(|conn| self.tables.select(conn, &self.query, after, Some(limit)))?;
                    if let Some(last) = found.last() {
                        self.position.store(last.position, Ordering::SeqCst);
                        return Ok(Some(found));
                    }
                    if Instant::now() >= until {
                        return Ok(None);
                    }
                    self.db.wait_until(until, &mut poll, |conn| {
                        Ok(self.stopped.load(Ordering::SeqCst) || self.tables.head(conn)? > head)
                    })?;
                }
            });
            match outcome.map_err(|e| e.into_pyerr(py))? {
                Some(found) => return sequenced_events(py, &self.classes, found),
                None => py.check_signals()?,
            }
        }
    }

    /// Stops the cursor: a waiting `next_batch` returns an empty list.
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.db.wake_waiters();
    }

    /// The position of the last event taken (or the `after` it started from).
    #[getter]
    fn position(&self) -> u64 {
        self.position.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_with_any_characters() {
        let tags: Vec<String> = vec!["".into(), "a\0b".into(), "ü".into()];
        let decoded = decode_tags(&encode_tags(&tags)).unwrap();
        let decoded: Vec<&str> = decoded.iter().map(|t| &**t).collect();
        assert_eq!(decoded, ["", "a\0b", "ü"]);
        assert!(decode_tags(&[3, 0, 0, 0, b'a']).is_none());
    }
}
