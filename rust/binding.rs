//! What esox's Python code hands the crate, once, at import: the crate
//! imports no esox module of its own.
//!
//! `esox.persistence.binding` calls `_core._bind(bindings)` with one dict of
//! exactly the keys read here (the exception classes, esox's transcodings,
//! compressors and cipher, the topic functions, and the replay contract of
//! `esox.domain.contract`). A key missing or unknown fails the bind, naming
//! it, so neither side can rename one alone. Until the bind, what needs it
//! raises a `RuntimeError` that says so.

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyType};

use crate::errors::ErrorKind;

/// The attribute names that replay reads (see `esox.domain.contract`).
pub struct ReplayNames {
    pub originator_id: Py<PyString>,
    pub originator_version: Py<PyString>,
    pub timestamp: Py<PyString>,
    pub originator_topic: Py<PyString>,
    pub mutate: Py<PyString>,
    pub apply: Py<PyString>,
    pub decorated_spec: Py<PyString>,
    pub spec_func: Py<PyString>,
    pub spec_names: Py<PyString>,
    pub as_dict: Py<PyString>,
    pub init_params: Py<PyString>,
    pub init_func: Py<PyString>,
    pub init_mentions_id: Py<PyString>,
    pub init_spec: Py<PyString>,
    pub spec_factories: Py<PyString>,
    pub base_init: Py<PyString>,
    pub id: Py<PyString>,
    pub version: Py<PyString>,
    pub modified_on: Py<PyString>,
}

/// The functions and classes of `esox.domain` that replay compares with,
/// re-implements or calls (see `esox.domain.contract`).
pub struct ReplayObjects {
    pub can_mutate_mutate: Py<PyAny>,
    pub created_mutate: Py<PyAny>,
    pub base_apply: Py<PyAny>,
    pub base_as_dict: Py<PyAny>,
    pub decorated_apply: Py<PyAny>,
    pub decorated_caller: Py<PyType>,
    pub snapshot: Py<PyType>,
    pub base_aggregate: Py<PyType>,
    pub id_error: Py<PyAny>,
    pub version_error: Py<PyAny>,
    pub not_an_aggregate_class: Py<PyAny>,
    pub missing_arguments_error: Py<PyAny>,
}

/// Everything the bind hands over.
pub struct Bindings {
    /// One class per `ErrorKind`, in `ErrorKind::ALL` order.
    pub errors: Vec<Py<PyType>>,
    pub get_topic: Py<PyAny>,
    pub resolve_topic: Py<PyAny>,
    pub domain_event: Py<PyType>,
    /// The base of esox.dcb's decisions (tagged events, not of an originator).
    pub abstract_decision: Py<PyType>,
    pub date_as_iso: Py<PyType>,
    pub bytes_as_base64: Py<PyType>,
    pub enum_as_topic_value: Py<PyType>,
    pub dataclass_as_topic_fields: Py<PyType>,
    pub zlib_compressor: Py<PyType>,
    pub zstd_compressor: Py<PyType>,
    pub aes_cipher: Py<PyType>,
    pub replay_names: ReplayNames,
    pub replay_objects: ReplayObjects,
}

static BINDINGS: PyOnceLock<Bindings> = PyOnceLock::new();

/// What was bound; a `RuntimeError` before `_bind` was called.
#[inline]
pub fn bindings(py: Python<'_>) -> PyResult<&'static Bindings> {
    match BINDINGS.get(py) {
        Some(bindings) => Ok(bindings),
        None => Err(not_bound()),
    }
}

#[cold]
fn not_bound() -> PyErr {
    PyRuntimeError::new_err(
        "esox._core is not bound yet: import esox.persistence (whose binding \
         module calls esox._core._bind) before using it",
    )
}

/// A dict's entries taken one by one; what is left over is an error.
struct Entries<'py> {
    what: &'static str,
    dict: Bound<'py, PyDict>,
}

impl<'py> Entries<'py> {
    fn of(what: &'static str, value: &Bound<'py, PyAny>) -> PyResult<Self> {
        let dict = value.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err(format!(
                "_bind: {what} must be a dict, not {}",
                value.get_type()
            ))
        })?;
        Ok(Entries {
            what,
            dict: dict.copy()?,
        })
    }

    fn take(&self, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let value = self
            .dict
            .get_item(key)?
            .ok_or_else(|| PyTypeError::new_err(format!("_bind: {} lacks '{key}'", self.what)))?;
        self.dict.del_item(key)?;
        Ok(value)
    }

    fn object(&self, key: &str) -> PyResult<Py<PyAny>> {
        Ok(self.take(key)?.unbind())
    }

    fn class(&self, key: &str) -> PyResult<Py<PyType>> {
        let value = self.take(key)?;
        match value.cast_into::<PyType>() {
            Ok(cls) => Ok(cls.unbind()),
            Err(e) => Err(PyTypeError::new_err(format!(
                "_bind: {}['{key}'] must be a class, not {}",
                self.what,
                e.into_inner().get_type()
            ))),
        }
    }

    /// An attribute name, interned (as `intern!` would).
    fn name(&self, key: &str) -> PyResult<Py<PyString>> {
        let value = self.take(key)?;
        let name = value.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!("_bind: {}['{key}'] must be a str", self.what))
        })?;
        Ok(PyString::intern(value.py(), name.to_str()?).unbind())
    }

    fn finish(self) -> PyResult<()> {
        if self.dict.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = self
            .dict
            .keys()
            .iter()
            .map(|k| k.repr().map(|r| r.to_string()))
            .collect::<PyResult<_>>()?;
        Err(PyTypeError::new_err(format!(
            "_bind: {} has unknown keys: {}",
            self.what,
            keys.join(", ")
        )))
    }
}

fn replay_names(value: &Bound<'_, PyAny>) -> PyResult<ReplayNames> {
    let e = Entries::of("replay_names", value)?;
    let names = ReplayNames {
        originator_id: e.name("originator_id")?,
        originator_version: e.name("originator_version")?,
        timestamp: e.name("timestamp")?,
        originator_topic: e.name("originator_topic")?,
        mutate: e.name("mutate")?,
        apply: e.name("apply")?,
        decorated_spec: e.name("decorated_spec")?,
        spec_func: e.name("spec_func")?,
        spec_names: e.name("spec_names")?,
        as_dict: e.name("as_dict")?,
        init_params: e.name("init_params")?,
        init_func: e.name("init_func")?,
        init_mentions_id: e.name("init_mentions_id")?,
        init_spec: e.name("init_spec")?,
        spec_factories: e.name("spec_factories")?,
        base_init: e.name("base_init")?,
        id: e.name("id")?,
        version: e.name("version")?,
        modified_on: e.name("modified_on")?,
    };
    e.finish()?;
    Ok(names)
}

fn replay_objects(value: &Bound<'_, PyAny>) -> PyResult<ReplayObjects> {
    let e = Entries::of("replay_objects", value)?;
    let objects = ReplayObjects {
        can_mutate_mutate: e.object("can_mutate_mutate")?,
        created_mutate: e.object("created_mutate")?,
        base_apply: e.object("base_apply")?,
        base_as_dict: e.object("base_as_dict")?,
        decorated_apply: e.object("decorated_apply")?,
        decorated_caller: e.class("decorated_caller")?,
        snapshot: e.class("snapshot")?,
        base_aggregate: e.class("base_aggregate")?,
        id_error: e.object("id_error")?,
        version_error: e.object("version_error")?,
        not_an_aggregate_class: e.object("not_an_aggregate_class")?,
        missing_arguments_error: e.object("missing_arguments_error")?,
    };
    e.finish()?;
    Ok(objects)
}

fn read(bindings: &Bound<'_, PyAny>) -> PyResult<Bindings> {
    let e = Entries::of("bindings", bindings)?;
    let errors = Entries::of("errors", &e.take("errors")?)?;
    let error_classes = ErrorKind::ALL
        .iter()
        .map(|kind| errors.class(kind.class_name()))
        .collect::<PyResult<_>>()?;
    errors.finish()?;
    let bound = Bindings {
        errors: error_classes,
        get_topic: e.object("get_topic")?,
        resolve_topic: e.object("resolve_topic")?,
        domain_event: e.class("DomainEvent")?,
        abstract_decision: e.class("AbstractDecision")?,
        date_as_iso: e.class("DateAsISO")?,
        bytes_as_base64: e.class("BytesAsBase64")?,
        enum_as_topic_value: e.class("EnumAsTopicValue")?,
        dataclass_as_topic_fields: e.class("DataclassAsTopicFields")?,
        zlib_compressor: e.class("ZlibCompressor")?,
        zstd_compressor: e.class("ZstdCompressor")?,
        aes_cipher: e.class("AESCipher")?,
        replay_names: replay_names(&e.take("replay_names")?)?,
        replay_objects: replay_objects(&e.take("replay_objects")?)?,
    };
    e.finish()?;
    Ok(bound)
}

/// Hands the crate what it needs of esox's Python code (once: a second
/// call is refused, since what was cached from the first would stay).
#[pyfunction]
pub fn _bind(py: Python<'_>, bindings: &Bound<'_, PyAny>) -> PyResult<()> {
    let read = read(bindings)?;
    let mut fresh = false;
    BINDINGS.get_or_init(py, || {
        fresh = true;
        read
    });
    if fresh {
        Ok(())
    } else {
        Err(PyRuntimeError::new_err("esox._core is already bound"))
    }
}

/// Whether `_bind` has been called.
#[pyfunction]
pub fn _is_bound(py: Python<'_>) -> bool {
    BINDINGS.get(py).is_some()
}
