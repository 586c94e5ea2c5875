//! The one place where Rust errors become Python exceptions.
//!
//! The exception classes are defined in Python (`esox.persistence.errors`) so
//! that they can use multiple inheritance (`IntegrityError` is both a
//! `DatabaseError` and a `RecordConflictError`); Rust looks them up once and
//! raises them by kind.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The kinds of error that Rust code raises into Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Persistence,
    Interface,
    Data,
    Operational,
    Integrity,
    Internal,
    Programming,
    /// A table the statement needs does not exist: a ProgrammingError for
    /// esox, an OperationalError as sqlite3 (and eventsourcing) report it.
    MissingTable,
    NotSupported,
    WaitInterrupted,
    MapperDeserialisation,
    TranscodingNotRegistered,
    CipherKey,
}

impl ErrorKind {
    fn class_name(self) -> &'static str {
        match self {
            ErrorKind::Persistence => "PersistenceError",
            ErrorKind::Interface => "InterfaceError",
            ErrorKind::Data => "DataError",
            ErrorKind::Operational => "OperationalError",
            ErrorKind::Integrity => "IntegrityError",
            ErrorKind::Internal => "InternalError",
            ErrorKind::Programming => "ProgrammingError",
            ErrorKind::MissingTable => "MissingTableError",
            ErrorKind::NotSupported => "NotSupportedError",
            ErrorKind::WaitInterrupted => "WaitInterruptedError",
            ErrorKind::MapperDeserialisation => "MapperDeserialisationError",
            ErrorKind::TranscodingNotRegistered => "TranscodingNotRegisteredError",
            ErrorKind::CipherKey => "CipherKeyError",
        }
    }
}

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS_MODULE
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("esox.persistence.errors")?.unbind())
        })
        .map(|m| m.bind(py))
}

/// Builds a Python exception of the given kind with the given message.
pub fn error(py: Python<'_>, kind: ErrorKind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match errors_module(py).and_then(|m| m.getattr(kind.class_name())) {
        Ok(cls) => match cls.cast_into::<PyType>() {
            Ok(cls) => PyErr::from_type(cls, message),
            Err(e) => PyErr::from(e),
        },
        Err(e) => e,
    }
}

/// Shorthand: `Err(error(...))`.
pub fn fail<T>(py: Python<'_>, kind: ErrorKind, message: impl Into<String>) -> PyResult<T> {
    Err(error(py, kind, message))
}
