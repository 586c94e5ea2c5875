//! The one place where Rust errors become Python exceptions.
//!
//! The exception classes are defined in Python (`esox.persistence.errors`) so
//! that they can use multiple inheritance (`IntegrityError` is both a
//! `DatabaseError` and a `RecordConflictError`); Python hands them over in
//! the bind (`crate::binding`) and Rust raises them by kind.

use pyo3::prelude::*;

use crate::binding::bindings;

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
    /// Every kind, in the order of the classes the bind holds.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::Persistence,
        ErrorKind::Interface,
        ErrorKind::Data,
        ErrorKind::Operational,
        ErrorKind::Integrity,
        ErrorKind::Internal,
        ErrorKind::Programming,
        ErrorKind::MissingTable,
        ErrorKind::NotSupported,
        ErrorKind::WaitInterrupted,
        ErrorKind::MapperDeserialisation,
        ErrorKind::TranscodingNotRegistered,
        ErrorKind::CipherKey,
    ];

    /// The name of its class in `esox.persistence.errors` (a key of the bind).
    pub fn class_name(self) -> &'static str {
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

/// Builds a Python exception of the given kind with the given message.
pub fn error(py: Python<'_>, kind: ErrorKind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match bindings(py) {
        Ok(bound) => PyErr::from_type(bound.errors[kind as usize].bind(py).clone(), message),
        // Unbound: still say what failed.
        Err(e) => pyo3::exceptions::PyRuntimeError::new_err(format!(
            "{}: {message} ({e})",
            kind.class_name()
        )),
    }
}

/// Shorthand: `Err(error(...))`.
pub fn fail<T>(py: Python<'_>, kind: ErrorKind, message: impl Into<String>) -> PyResult<T> {
    Err(error(py, kind, message))
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn kinds_index_the_bound_classes_in_order() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "{kind:?}");
        }
    }
}
