//! SQL of the user's own on an `SqliteDatabase`'s connections: `SqliteCursor`
//! runs statements inside a transaction that holds the writer connection
//! (`BEGIN IMMEDIATE`, or any transaction in memory) or a reader connection
//! of its own, so recorder subclasses extend esox's tables and inserts in the
//! same transaction as the native insert, on `:memory:` databases too.
//!
//! Parameters follow Python's sqlite3: None, int, float, str, bytes, and
//! whatever an adapter registered with `sqlite3.register_adapter` turns into
//! one of those. Rows come back as `SqliteRow`s (by position or by column
//! name). Statements run with the GIL released.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::{PyIndexError, PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple, PyType,
};
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode};

use super::database::{sqlite_error, Database, DbError, DbResult, HeldWriter};
use crate::errors::{error, ErrorKind};

static ADAPTERS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static PREPARE_PROTOCOL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// What a cursor holds while its transaction lasts.
enum Hold {
    /// The writer connection's lock, in a transaction.
    Writer(HeldWriter),
    /// A reader connection of its own, in a read transaction.
    Reader(Connection),
    /// No transaction: each statement takes the writer connection.
    Autocommit,
    Finished,
}

/// Parameters converted (with the GIL) before the statement runs (without).
enum Params {
    Positional(Vec<Value>),
    Named(Vec<(String, Value)>),
}

struct State {
    hold: Hold,
    columns: Vec<String>,
    rows: VecDeque<Vec<Value>>,
    /// The column names as a Python tuple, made on the first fetch.
    names: Option<Py<PyTuple>>,
    lastrowid: i64,
    rowcount: i64,
}

/// A cursor on an SqliteDatabase, in a transaction (from
/// `SqliteDatabase.begin`) or in autocommit mode (`SqliteDatabase.cursor`).
#[pyclass(module = "esox._core", frozen, subclass)]
pub struct SqliteCursor {
    pub(crate) db: Arc<Database>,
    state: Mutex<State>,
}

impl SqliteCursor {
    pub(crate) fn begin(db: &Arc<Database>, write: bool) -> DbResult<SqliteCursor> {
        let hold = if write || db.memory {
            let held = db.hold_writer()?;
            let begin = if write { "BEGIN IMMEDIATE" } else { "BEGIN" };
            held.as_ref()
                .expect("hold_writer checks the database is open")
                .execute_batch(begin)
                .map_err(|e| sqlite_error(e, format!("beginning a transaction on {}", db.path)))?;
            Hold::Writer(held)
        } else {
            let conn = db.take_reader()?;
            conn.execute_batch("BEGIN")
                .map_err(|e| sqlite_error(e, format!("beginning a transaction on {}", db.path)))?;
            Hold::Reader(conn)
        };
        Ok(Self::holding(db, hold))
    }

    pub(crate) fn autocommit(db: &Arc<Database>) -> SqliteCursor {
        Self::holding(db, Hold::Autocommit)
    }

    fn holding(db: &Arc<Database>, hold: Hold) -> SqliteCursor {
        SqliteCursor {
            db: db.clone(),
            state: Mutex::new(State {
                hold,
                columns: Vec::new(),
                rows: VecDeque::new(),
                names: None,
                lastrowid: 0,
                rowcount: -1,
            }),
        }
    }

    /// Runs `f` on the connection of this cursor's write transaction (with
    /// the GIL released): how recorders insert within the user's transaction.
    pub(crate) fn in_write_transaction<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Connection) -> DbResult<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let state = self.state.lock();
            match &state.hold {
                Hold::Writer(held) => match held.as_ref() {
                    Some(conn) if !conn.is_autocommit() => f(conn),
                    _ => Err(self.finished_error()),
                },
                Hold::Finished => Err(self.finished_error()),
                Hold::Reader(_) | Hold::Autocommit => Err(DbError::new(
                    ErrorKind::Programming,
                    "this cursor's transaction does not write: recorders insert in a \
                     transaction(commit=True)",
                )),
            }
        })
        .map_err(|e| e.into_pyerr(py))
    }

    fn finished_error(&self) -> DbError {
        DbError::new(
            ErrorKind::Programming,
            format!("this cursor's transaction on {} has ended", self.db.path),
        )
    }

    /// Runs one statement once per parameter set; keeps the rows of the last.
    fn run(&self, sql: &str, param_sets: &[Params]) -> DbResult<()> {
        let mut state = self.state.lock();
        let state = &mut *state;
        let mut autocommit_writer = None;
        let conn: &Connection = match &state.hold {
            Hold::Writer(held) => held.as_ref().ok_or_else(|| self.finished_error())?,
            Hold::Reader(conn) => conn,
            Hold::Autocommit => {
                let held = autocommit_writer.insert(self.db.hold_writer()?);
                held.as_ref().ok_or_else(|| self.finished_error())?
            }
            Hold::Finished => return Err(self.finished_error()),
        };
        let mut stmt = conn.prepare_cached(sql).map_err(|e| sql_error(e, sql))?;
        state.columns = stmt.column_names().map(str::to_owned).collect();
        state.names = None;
        state.rows.clear();
        let mut changes = 0;
        for params in param_sets {
            bind(&mut stmt, params, sql)?;
            state.rows.clear();
            let width = stmt.column_count();
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(|e| sql_error(e, sql))? {
                let values = (0..width)
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<rusqlite::Result<Vec<Value>>>()
                    .map_err(|e| sql_error(e, sql))?;
                state.rows.push_back(values);
            }
            drop(rows);
            if !stmt.readonly() {
                changes += conn.changes() as i64;
            }
        }
        state.rowcount = if stmt.readonly() { -1 } else { changes };
        state.lastrowid = conn.last_insert_rowid();
        drop(stmt);
        if autocommit_writer.is_some() && !stmt_is_read_only(sql) {
            self.db.wake_waiters();
        }
        Ok(())
    }

    fn rows_to_python<'py>(
        &self,
        py: Python<'py>,
        limit: Option<usize>,
    ) -> PyResult<Vec<Bound<'py, SqliteRow>>> {
        let mut state = self.state.lock();
        let names = match &state.names {
            Some(names) => names.clone_ref(py),
            None => {
                let names = PyTuple::new(py, &state.columns)?.unbind();
                state.names = Some(names.clone_ref(py));
                names
            }
        };
        let count = limit.map_or(state.rows.len(), |l| l.min(state.rows.len()));
        let mut out = Vec::with_capacity(count);
        for values in state.rows.drain(..count) {
            let values = values
                .into_iter()
                .map(|v| value_to_python(py, v))
                .collect::<PyResult<Vec<Bound<'py, PyAny>>>>()?;
            let row = SqliteRow {
                names: names.clone_ref(py),
                values: PyTuple::new(py, values)?.unbind(),
            };
            out.push(Bound::new(py, row)?);
        }
        Ok(out)
    }

    /// Commits (or rolls back) and lets go of the connection.
    fn finish(&self, commit: bool) -> DbResult<()> {
        let hold = std::mem::replace(&mut self.state.lock().hold, Hold::Finished);
        match hold {
            Hold::Writer(held) => {
                let Some(conn) = held.as_ref() else {
                    return Ok(());
                };
                if conn.is_autocommit() {
                    return Ok(());
                }
                let context = || format!("ending a transaction on {}", self.db.path);
                if commit {
                    if let Err(e) = conn.execute_batch("COMMIT") {
                        let _ = conn.execute_batch("ROLLBACK");
                        return Err(sqlite_error(e, context()));
                    }
                    drop(held);
                    self.db.wake_waiters();
                    Ok(())
                } else {
                    conn.execute_batch("ROLLBACK")
                        .map_err(|e| sqlite_error(e, context()))
                }
            }
            Hold::Reader(conn) => {
                let outcome = if conn.is_autocommit() {
                    Ok(())
                } else {
                    conn.execute_batch("ROLLBACK").map_err(|e| {
                        sqlite_error(e, format!("ending a transaction on {}", self.db.path))
                    })
                };
                if outcome.is_ok() {
                    self.db.give_back_reader(conn);
                }
                outcome
            }
            Hold::Autocommit | Hold::Finished => Ok(()),
        }
    }
}

impl Drop for SqliteCursor {
    fn drop(&mut self) {
        // A cursor dropped in its transaction rolls it back, so that the
        // writer connection is never left inside a transaction.
        let _ = self.finish(false);
    }
}

fn stmt_is_read_only(sql: &str) -> bool {
    let head = sql.trim_start().get(..6).unwrap_or_default();
    head.eq_ignore_ascii_case("select")
}

/// As Python's sqlite3 reports them: a failing statement (bad SQL, a missing
/// table) is an OperationalError; misuse of parameters a ProgrammingError.
fn sql_error(e: rusqlite::Error, sql: &str) -> DbError {
    use rusqlite::Error as E;
    let kind = match &e {
        _ if e.sqlite_error_code() == Some(ErrorCode::Unknown) => Some(ErrorKind::Operational),
        E::SqlInputError { error, .. } if error.code == ErrorCode::Unknown => {
            Some(ErrorKind::Operational)
        }
        E::MultipleStatement | E::InvalidParameterCount(..) | E::InvalidParameterName(..) => {
            Some(ErrorKind::Programming)
        }
        _ => None,
    };
    let mut err = sqlite_error(e, format!("executing {sql:?}"));
    if let Some(kind) = kind.filter(|_| err.kind != ErrorKind::MissingTable) {
        err.kind = kind;
    }
    err
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, params: &Params, sql: &str) -> DbResult<()> {
    let wanted = stmt.parameter_count();
    match params {
        Params::Positional(values) => {
            if values.len() != wanted {
                return Err(DbError::new(
                    ErrorKind::Programming,
                    format!(
                        "Incorrect number of bindings supplied. The current statement \
                         uses {wanted}, and there are {} supplied ({sql:?}).",
                        values.len()
                    ),
                ));
            }
            for (i, value) in values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, value)
                    .map_err(|e| sql_error(e, sql))?;
            }
        }
        Params::Named(values) => {
            for i in 1..=wanted {
                let name = stmt.parameter_name(i).map(|n| n[1..].to_owned());
                let value = name
                    .as_deref()
                    .and_then(|name| values.iter().find(|(k, _)| k == name).map(|(_, v)| v));
                let Some(value) = value else {
                    return Err(DbError::new(
                        ErrorKind::Programming,
                        format!(
                            "You did not supply a value for binding parameter {} ({sql:?}).",
                            name.map_or_else(|| format!("#{i}"), |n| format!(":{n}"))
                        ),
                    ));
                };
                stmt.raw_bind_parameter(i, value)
                    .map_err(|e| sql_error(e, sql))?;
            }
        }
    }
    Ok(())
}

fn value_to_python(py: Python<'_>, value: Value) -> PyResult<Bound<'_, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Integer(i) => i.into_pyobject(py)?.into_any(),
        Value::Real(f) => PyFloat::new(py, f).into_any(),
        Value::Text(s) => PyString::new(py, &s).into_any(),
        Value::Blob(b) => PyBytes::new(py, &b).into_any(),
    })
}

/// One parameter as SQLite stores it, through a registered sqlite3 adapter
/// if its type is not one SQLite knows.
fn python_to_value(obj: &Bound<'_, PyAny>, index: usize) -> PyResult<Value> {
    if let Some(value) = plain_value(obj)? {
        return Ok(value);
    }
    let py = obj.py();
    let adapters = ADAPTERS.get_or_try_init(py, || -> PyResult<Py<PyDict>> {
        Ok(py
            .import("sqlite3")?
            .getattr("adapters")?
            .cast_into::<PyDict>()?
            .unbind())
    })?;
    let protocol = PREPARE_PROTOCOL.import(py, "sqlite3", "PrepareProtocol")?;
    let key = (obj.get_type(), protocol);
    if let Some(adapter) = adapters.bind(py).get_item(key)? {
        let adapted = adapter.call1((obj,))?;
        if let Some(value) = plain_value(&adapted)? {
            return Ok(value);
        }
    }
    Err(error(
        py,
        ErrorKind::Programming,
        format!(
            "Error binding parameter {index}: type '{}' is not supported",
            obj.get_type().qualname()?
        ),
    ))
}

fn plain_value(obj: &Bound<'_, PyAny>) -> PyResult<Option<Value>> {
    Ok(Some(if obj.is_none() {
        Value::Null
    } else if obj.is_instance_of::<PyInt>() {
        Value::Integer(obj.extract::<i64>().map_err(|_| {
            PyOverflowError::new_err("Python int too large to convert to SQLite INTEGER")
        })?)
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        Value::Real(f.value())
    } else if let Ok(s) = obj.cast::<PyString>() {
        Value::Text(s.to_str()?.to_owned())
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        Value::Blob(b.as_bytes().to_vec())
    } else if let Ok(b) = obj.cast::<PyByteArray>() {
        Value::Blob(b.to_vec())
    } else {
        return Ok(None);
    }))
}

fn convert_params(params: Option<&Bound<'_, PyAny>>) -> PyResult<Params> {
    let Some(params) = params.filter(|p| !p.is_none()) else {
        return Ok(Params::Positional(Vec::new()));
    };
    if params.is_instance_of::<PyDict>() || params.cast::<PyMapping>().is_ok() {
        let mapping = params.cast::<PyMapping>()?;
        let mut named = Vec::new();
        for item in mapping.items()?.iter() {
            let (key, value): (String, Bound<'_, PyAny>) = item.extract()?;
            let value = python_to_value(&value, named.len() + 1)?;
            named.push((key, value));
        }
        return Ok(Params::Named(named));
    }
    if params.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "parameters must be a sequence or a mapping, not str",
        ));
    }
    let mut values = Vec::new();
    for (i, item) in params
        .try_iter()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "parameters must be a sequence or a mapping, not {}",
                params
                    .get_type()
                    .qualname()
                    .map_or_else(|_| "?".to_owned(), |n| n.to_string())
            ))
        })?
        .enumerate()
    {
        values.push(python_to_value(&item?, i + 1)?);
    }
    Ok(Params::Positional(values))
}

fn statement_text(statement: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = statement.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    if let Ok(b) = statement.cast::<PyBytes>() {
        return String::from_utf8(b.as_bytes().to_vec())
            .map_err(|_| PyTypeError::new_err("statement bytes must be UTF-8"));
    }
    Err(PyTypeError::new_err(format!(
        "statement must be a str, not {}",
        statement.get_type().qualname()?
    )))
}

#[pymethods]
impl SqliteCursor {
    /// Execute one statement with positional (sequence) or named (mapping)
    /// parameters.
    #[pyo3(signature = (statement, params=None))]
    fn execute(
        slf: &Bound<'_, Self>,
        statement: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let sql = statement_text(statement)?;
        let params = [convert_params(params)?];
        let this = slf.get();
        py.detach(|| this.run(&sql, &params))
            .map_err(|e| e.into_pyerr(py))
    }

    /// Execute one statement once for each set of parameters.
    fn executemany(
        slf: &Bound<'_, Self>,
        statement: &Bound<'_, PyAny>,
        seq_of_params: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let sql = statement_text(statement)?;
        let param_sets = seq_of_params
            .try_iter()?
            .map(|p| convert_params(Some(&p?)))
            .collect::<PyResult<Vec<Params>>>()?;
        let this = slf.get();
        py.detach(|| this.run(&sql, &param_sets))
            .map_err(|e| e.into_pyerr(py))
    }

    /// The remaining rows of the last statement.
    fn fetchall<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.rows_to_python(py, None)?)
    }

    /// The next row of the last statement, or None.
    fn fetchone<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, SqliteRow>>> {
        Ok(self.rows_to_python(py, Some(1))?.pop())
    }

    /// Up to `size` of the remaining rows.
    #[pyo3(signature = (size=1))]
    fn fetchmany<'py>(&self, py: Python<'py>, size: usize) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.rows_to_python(py, Some(size))?)
    }

    /// The rowid of the last inserted row.
    #[getter]
    fn lastrowid(&self) -> i64 {
        self.state.lock().lastrowid
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE (-1 after a SELECT).
    #[getter]
    fn rowcount(&self) -> i64 {
        self.state.lock().rowcount
    }

    /// Whether the cursor's transaction (if any) has ended.
    #[getter]
    fn finished(&self) -> bool {
        matches!(self.state.lock().hold, Hold::Finished)
    }

    /// Commit (commit=True) or roll back the transaction and let go of the
    /// connection.
    #[pyo3(signature = (*, commit))]
    fn end(&self, py: Python<'_>, commit: bool) -> PyResult<()> {
        py.detach(|| self.finish(commit))
            .map_err(|e| e.into_pyerr(py))
    }

    /// Roll back whatever is not committed and let go of the connection.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, false)
    }
}

/// A row of an SqliteCursor's result: indexable by position and by column
/// name (case-insensitively), like sqlite3.Row.
#[pyclass(module = "esox._core", frozen, sequence)]
pub struct SqliteRow {
    names: Py<PyTuple>,
    values: Py<PyTuple>,
}

#[pymethods]
impl SqliteRow {
    fn __len__(&self, py: Python<'_>) -> usize {
        self.values.bind(py).len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(name) = key.cast::<PyString>() {
            let name = name.to_str()?;
            for (i, column) in self.names.bind(py).iter().enumerate() {
                if column
                    .cast::<PyString>()?
                    .to_str()?
                    .eq_ignore_ascii_case(name)
                {
                    return self.values.bind(py).get_item(i);
                }
            }
            return Err(PyIndexError::new_err(format!(
                "No item with that key: {name:?}"
            )));
        }
        self.values.bind(py).as_any().get_item(key)
    }

    /// The column names.
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.names.bind(py).iter())
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.values.bind(py).as_any().try_iter()?.into_any())
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Ok(other) = other.cast::<SqliteRow>() else {
            return Ok(py.NotImplemented());
        };
        let other = other.get();
        let same = self.names.bind(py).eq(other.names.bind(py))?
            && self.values.bind(py).eq(other.values.bind(py))?;
        Ok(same.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        PyTuple::new(
            py,
            [self.names.bind(py).as_any(), self.values.bind(py).as_any()],
        )?
        .hash()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let pairs = self
            .names
            .bind(py)
            .iter()
            .zip(self.values.bind(py).iter())
            .map(|(k, v)| Ok(format!("{}={}", k.str()?, v.repr()?)))
            .collect::<PyResult<Vec<String>>>()?;
        Ok(format!("<SqliteRow {}>", pairs.join(", ")))
    }
}
