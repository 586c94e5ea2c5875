//! The codec's errors, and the messages they become in Python: encoding
//! errors name the path to the bad value, decoding errors the byte offset.

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::MAX_DEPTH;
use crate::errors::{error, ErrorKind};

/// One step from a container to a value in it, for error messages.
pub enum Step {
    Key(String),
    Index(usize),
}

/// Why a value could not be encoded. The path is collected while the error
/// unwinds (innermost step first), so the happy path pays nothing for it.
/// Boxed, so that results are one word on the hot path.
pub struct EncodeError(Box<Problem>);

pub enum Problem {
    Unserializable {
        type_repr: String,
        hint: &'static str,
        path: Vec<Step>,
    },
    BadKey {
        type_name: String,
        path: Vec<Step>,
    },
    TooDeep {
        path: Vec<Step>,
    },
    /// A str with a lone surrogate, which UTF-8 cannot hold.
    Surrogate {
        path: Vec<Step>,
    },
    /// A dict changed (by a transcoding, or another thread) while it was
    /// being encoded: what was written may have missed or kept a key.
    Mutated {
        path: Vec<Step>,
    },
    Python(PyErr),
}

impl From<PyErr> for EncodeError {
    #[cold]
    fn from(err: PyErr) -> Self {
        EncodeError(Box::new(Problem::Python(err)))
    }
}

impl From<Problem> for EncodeError {
    #[cold]
    fn from(problem: Problem) -> Self {
        EncodeError(Box::new(problem))
    }
}

#[cold]
pub(super) fn too_deep() -> EncodeError {
    Problem::TooDeep { path: Vec::new() }.into()
}

#[cold]
pub(super) fn mutated() -> EncodeError {
    Problem::Mutated { path: Vec::new() }.into()
}

/// The error of a str that could not be read as UTF-8: a lone surrogate
/// (the only way a str can fail), or whatever else Python raised.
#[cold]
pub(super) fn bad_text(py: Python<'_>, err: PyErr) -> EncodeError {
    if err.is_instance_of::<pyo3::exceptions::PyUnicodeEncodeError>(py) {
        Problem::Surrogate { path: Vec::new() }.into()
    } else {
        err.into()
    }
}

impl EncodeError {
    fn path_mut(&mut self) -> Option<&mut Vec<Step>> {
        match &mut *self.0 {
            Problem::Unserializable { path, .. }
            | Problem::BadKey { path, .. }
            | Problem::TooDeep { path }
            | Problem::Surrogate { path }
            | Problem::Mutated { path } => Some(path),
            Problem::Python(_) => None,
        }
    }

    #[cold]
    pub(super) fn at(mut self, step: impl FnOnce() -> Step) -> Self {
        if let Some(path) = self.path_mut() {
            path.push(step());
        }
        self
    }

    /// The Python exception, its message naming the path to the bad value:
    /// `"{subject} 'owner.address[2]': ..."`, then `context` (no path if
    /// `subject` is empty).
    pub fn into_pyerr(self, py: Python<'_>, subject: &str, context: &str) -> PyErr {
        let (kind, path, problem) = match *self.0 {
            Problem::Python(err) => return err,
            Problem::Unserializable {
                type_repr,
                hint,
                path,
            } => (
                ErrorKind::TranscodingNotRegistered,
                path,
                // eventsourcing's words, which its users' tests compare.
                format!(
                    "Object of type {type_repr} is not serializable. Please define \
                     and register a custom transcoding for this type{hint}."
                ),
            ),
            Problem::BadKey { type_name, path } => (
                ErrorKind::TranscodingNotRegistered,
                path,
                format!("dict keys must be str, int, float, bool or None, not {type_name}"),
            ),
            Problem::TooDeep { path } => (
                ErrorKind::Persistence,
                path,
                format!(
                    "nested more than {MAX_DEPTH} levels deep (is there a circular reference?)"
                ),
            ),
            Problem::Surrogate { path } => (
                ErrorKind::Persistence,
                path,
                "the str holds a lone surrogate (such as '\\ud800'), which UTF-8 \
                 cannot store: remove it (text decoded with errors='surrogateescape' \
                 or 'surrogatepass' can carry one), or store the data as bytes"
                    .to_owned(),
            ),
            Problem::Mutated { path } => (
                ErrorKind::Persistence,
                path,
                "the dict was changed while it was being encoded (by a transcoding, \
                 or by another thread), so what was written could have missed or \
                 kept a key: do not change an event's values while it is saved"
                    .to_owned(),
            ),
        };
        let message = if path.is_empty() || subject.is_empty() {
            format!("{problem}{context}")
        } else {
            format!("{subject} '{}': {problem}{context}", format_path(&path))
        };
        error(py, kind, message)
    }
}

/// `owner.address[2]` from steps collected innermost first; long paths are
/// shortened in the middle.
fn format_path(innermost_first: &[Step]) -> String {
    let steps: Vec<&Step> = innermost_first.iter().rev().collect();
    let shown: Vec<Option<&Step>> = if steps.len() > 16 {
        let mut shown: Vec<Option<&Step>> = steps[..8].iter().copied().map(Some).collect();
        shown.push(None);
        shown.extend(steps[steps.len() - 4..].iter().copied().map(Some));
        shown
    } else {
        steps.into_iter().map(Some).collect()
    };
    let mut out = String::new();
    for (i, step) in shown.into_iter().enumerate() {
        match step {
            Some(Step::Key(key)) if i == 0 => out.push_str(key),
            Some(Step::Key(key)) => {
                out.push('.');
                out.push_str(key);
            }
            Some(Step::Index(index)) => {
                let _ = write!(out, "[{index}]");
            }
            None => out.push_str("..."),
        }
    }
    out
}

pub(super) fn key_step(key: &Bound<'_, PyAny>) -> Step {
    let text = match key.cast::<PyString>() {
        Ok(s) => s.to_string(),
        Err(_) => key.repr().map(|r| r.to_string()).unwrap_or_default(),
    };
    Step::Key(text)
}

/// Why bytes could not be decoded.
pub enum DecodeError {
    Syntax { at: usize, problem: &'static str },
    Utf8 { at: usize },
    TooDeep { at: usize },
    Unregistered { name: String },
    Transcoding { name: String, err: PyErr },
    Python(PyErr),
}

impl From<PyErr> for DecodeError {
    fn from(err: PyErr) -> Self {
        DecodeError::Python(err)
    }
}

impl DecodeError {
    /// The Python exception; `context` (e.g. naming the stored event) starts
    /// the message.
    pub fn into_pyerr(self, py: Python<'_>, context: &str) -> PyErr {
        let (kind, problem, cause) = match self {
            DecodeError::Syntax { at, problem } => (
                ErrorKind::MapperDeserialisation,
                format!("invalid JSON at byte {at}: {problem}"),
                None,
            ),
            DecodeError::Utf8 { at } => (
                ErrorKind::MapperDeserialisation,
                format!("invalid UTF-8 at byte {at}"),
                None,
            ),
            DecodeError::TooDeep { at } => (
                ErrorKind::MapperDeserialisation,
                format!("JSON nested more than {MAX_DEPTH} levels deep at byte {at}"),
                None,
            ),
            DecodeError::Unregistered { name } => (
                ErrorKind::TranscodingNotRegistered,
                // eventsourcing's words, which its users' tests compare.
                format!(
                    "Data serialized with name '{name}' is not deserializable. \
                     Please register a custom transcoding for this type."
                ),
                None,
            ),
            DecodeError::Transcoding { name, err } => (
                ErrorKind::MapperDeserialisation,
                format!("transcoding '{name}' could not decode its data: {err}"),
                Some(err),
            ),
            DecodeError::Python(err) => {
                (ErrorKind::MapperDeserialisation, err.to_string(), Some(err))
            }
        };
        let err = error(py, kind, format!("{context}{problem}"));
        if cause.is_some() {
            err.set_cause(py, cause);
        }
        err
    }
}
