//! Enum members and frozen dataclass instances, stored by the topic of their
//! class, so that any of them round-trips without a transcoding per class:
//!
//! - `{"_type_": "enum", "_data_": {"topic": T, "value": V}}`, read back as
//!   `cls(V)` (lists in V retried as tuples, for tuple-valued members);
//! - `{"_type_": "dataclass", "_data_": {"topic": T, "fields": {...}}}`, read
//!   back with `object.__new__(cls)` and each field set directly, without
//!   calling `__init__` or `__post_init__` (as events are built); fields
//!   missing from stored data take their defaults.
//!
//! Only frozen dataclasses are stored this way: values in events should be
//! immutable. What is known about each class is cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use super::Builtins;
use crate::binding::bindings;

/// Caches hold at most this many classes; past it they start again.
const MAX_CACHED: usize = 4096;

static FIELDS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static MISSING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// What encoding needs to know about a class that has no transcoding.
pub enum TypeKind {
    Enum,
    /// A frozen dataclass, with its field names in order.
    Dataclass(Vec<Py<PyString>>),
    /// A dataclass that is not frozen (refused, with a hint).
    MutableDataclass,
    Other,
}

pub struct TypeFacts {
    pub topic: Option<Py<PyString>>,
    pub kind: TypeKind,
}

type TypeCache = HashMap<usize, (Py<PyType>, Arc<TypeFacts>)>;
static TYPES: Mutex<Option<TypeCache>> = Mutex::new(None);

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn get_topic<'py>(cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyString>> {
    let py = cls.py();
    let topic = bindings(py)?
        .get_topic
        .bind(py)
        .call1((cls,))?
        .cast_into::<PyString>()?;
    Ok(PyString::intern(py, topic.to_str()?))
}

fn dataclass_fields<'py>(cls: &Bound<'py, PyType>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let py = cls.py();
    FIELDS
        .import(py, "dataclasses", "fields")?
        .call1((cls,))?
        .try_iter()?
        .collect()
}

/// Whether `cls` is an Enum or a (frozen) dataclass, and its topic; cached.
pub fn type_facts(cls: &Bound<'_, PyType>, b: &Builtins) -> PyResult<Arc<TypeFacts>> {
    let py = cls.py();
    let key = cls.as_ptr() as usize;
    if let Some((_, facts)) = locked(&TYPES).as_ref().and_then(|m| m.get(&key)) {
        return Ok(facts.clone());
    }
    let kind = if cls.is_subclass(b.enum_type.bind(py))? {
        TypeKind::Enum
    } else if let Some(params) = cls.getattr_opt(intern!(py, "__dataclass_params__"))? {
        if params.getattr(intern!(py, "frozen"))?.is_truthy()? {
            let names = dataclass_fields(cls)?
                .iter()
                .map(|f| {
                    let name = f.getattr(intern!(py, "name"))?.cast_into::<PyString>()?;
                    Ok(PyString::intern(py, name.to_str()?).unbind())
                })
                .collect::<PyResult<_>>()?;
            TypeKind::Dataclass(names)
        } else {
            TypeKind::MutableDataclass
        }
    } else {
        TypeKind::Other
    };
    let topic = match kind {
        TypeKind::Enum | TypeKind::Dataclass(_) => Some(get_topic(cls)?.unbind()),
        _ => None,
    };
    let facts = Arc::new(TypeFacts { topic, kind });
    let unused = {
        let mut cache = locked(&TYPES);
        let map = cache.get_or_insert_with(HashMap::new);
        let old = (map.len() >= MAX_CACHED).then(|| std::mem::take(map));
        let replaced = map.insert(key, (cls.clone().unbind(), facts.clone()));
        (old, replaced)
    };
    // Python objects are released after the lock (dropping may run Python).
    drop(unused);
    Ok(facts)
}

/// A dataclass field as decoding needs it.
struct Field {
    name: Py<PyString>,
    default: Option<Py<PyAny>>,
    factory: Option<Py<PyAny>>,
}

/// What decoding needs to know about the class a stored topic names.
enum TopicFacts {
    Enum(Py<PyType>),
    Dataclass { cls: Py<PyType>, fields: Vec<Field> },
}

type TopicCache = HashMap<(bool, Box<str>), Arc<TopicFacts>>;
static TOPICS: Mutex<Option<TopicCache>> = Mutex::new(None);

fn topic_facts(py: Python<'_>, topic: &str, want_enum: bool) -> PyResult<Arc<TopicFacts>> {
    let key = (want_enum, Box::<str>::from(topic));
    if let Some(facts) = locked(&TOPICS).as_ref().and_then(|m| m.get(&key)) {
        return Ok(facts.clone());
    }
    let resolved = bindings(py)?
        .resolve_topic
        .bind(py)
        .call1((topic,))
        .map_err(|e| {
            let err = PyValueError::new_err(format!("could not resolve topic '{topic}': {e}"));
            err.set_cause(py, Some(e));
            err
        })?;
    let cls = resolved
        .cast_into::<PyType>()
        .map_err(|_| PyTypeError::new_err(format!("topic '{topic}' does not name a class")))?;
    let facts = if want_enum {
        let b = super::builtins(py)?;
        if !cls.is_subclass(b.enum_type.bind(py))? {
            return Err(PyTypeError::new_err(format!(
                "topic '{topic}' does not name an Enum class"
            )));
        }
        TopicFacts::Enum(cls.unbind())
    } else {
        let frozen = match cls.getattr_opt(intern!(py, "__dataclass_params__"))? {
            Some(params) => params.getattr(intern!(py, "frozen"))?.is_truthy()?,
            None => false,
        };
        if !frozen {
            return Err(PyTypeError::new_err(format!(
                "topic '{topic}' does not name a frozen dataclass"
            )));
        }
        // Once per class, as for events: object.__new__(cls) must be allowed.
        py.get_type::<PyAny>()
            .call_method1(intern!(py, "__new__"), (&cls,))?;
        let missing = MISSING.import(py, "dataclasses", "MISSING")?;
        let fields = dataclass_fields(&cls)?
            .iter()
            .map(|f| {
                let name = f.getattr(intern!(py, "name"))?.cast_into::<PyString>()?;
                let present =
                    |value: Bound<'_, PyAny>| (!value.is(missing)).then(|| value.unbind());
                Ok(Field {
                    name: PyString::intern(py, name.to_str()?).unbind(),
                    default: present(f.getattr(intern!(py, "default"))?),
                    factory: present(f.getattr(intern!(py, "default_factory"))?),
                })
            })
            .collect::<PyResult<_>>()?;
        TopicFacts::Dataclass {
            cls: cls.unbind(),
            fields,
        }
    };
    let facts = Arc::new(facts);
    let unused = {
        let mut cache = locked(&TOPICS);
        let map = cache.get_or_insert_with(HashMap::new);
        let old = (map.len() >= MAX_CACHED).then(|| std::mem::take(map));
        let replaced = map.insert(key, facts.clone());
        (old, replaced)
    };
    drop(unused);
    Ok(facts)
}

/// `data["topic"]` as text, and `data[field]`.
fn topic_and<'py>(
    data: &Bound<'py, PyAny>,
    field: &Bound<'py, PyString>,
) -> PyResult<(String, Bound<'py, PyAny>)> {
    let py = data.py();
    let bad = || {
        PyValueError::new_err(format!(
            "expected an object with \"topic\" and \"{field}\", found {}",
            data.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    };
    let dict = data.cast::<PyDict>().map_err(|_| bad())?;
    let topic = dict
        .get_item(intern!(py, "topic"))?
        .ok_or_else(bad)?
        .cast_into::<PyString>()
        .map_err(|_| bad())?
        .to_str()?
        .to_owned();
    let value = dict.get_item(field)?.ok_or_else(bad)?;
    Ok((topic, value))
}

/// Lists (at any depth) as tuples, for enum values that are tuples.
fn lists_as_tuples<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match value.cast::<PyList>() {
        Ok(list) => {
            let items = list
                .iter()
                .map(|item| lists_as_tuples(&item))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyTuple::new(value.py(), items)?.into_any())
        }
        Err(_) => Ok(value.clone()),
    }
}

/// The enum member that `{"topic": T, "value": V}` stands for.
pub fn decode_enum<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let (topic, value) = topic_and(data, intern!(py, "value"))?;
    let TopicFacts::Enum(cls) = &*topic_facts(py, &topic, true)? else {
        return Err(PyTypeError::new_err("not an Enum class"));
    };
    let cls = cls.bind(py);
    match cls.call1((&value,)) {
        Ok(member) => Ok(member),
        Err(e) if value.is_instance_of::<PyList>() => {
            cls.call1((lists_as_tuples(&value)?,)).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

/// The frozen dataclass instance that `{"topic": T, "fields": {...}}`
/// stands for, built without calling `__init__`.
pub fn decode_dataclass<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let (topic, stored) = topic_and(data, intern!(py, "fields"))?;
    let stored = stored
        .cast_into::<PyDict>()
        .map_err(|_| PyValueError::new_err("\"fields\" must be an object"))?;
    let facts = topic_facts(py, &topic, false)?;
    let TopicFacts::Dataclass { cls, fields } = &*facts else {
        return Err(PyTypeError::new_err("not a dataclass"));
    };
    let cls = cls.bind(py);
    // SAFETY: object.__new__(cls) was checked to be allowed (`topic_facts`);
    // allocating is what it does. Fields are set as object.__setattr__ does.
    let obj =
        unsafe { Bound::from_owned_ptr_or_err(py, crate::cpython::alloc(cls.as_type_ptr()))? };
    let mut used = 0;
    for field in fields {
        let name = field.name.bind(py);
        let value = match stored.get_item(name)? {
            Some(value) => {
                used += 1;
                value
            }
            None => match (&field.default, &field.factory) {
                (Some(default), _) => default.bind(py).clone(),
                (None, Some(factory)) => factory.bind(py).call0()?,
                (None, None) => {
                    return Err(PyValueError::new_err(format!(
                        "stored {topic} has no field '{name}', which has no default"
                    )))
                }
            },
        };
        // SAFETY: `obj`, `name` and `value` are alive.
        if unsafe { ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) } != 0
        {
            return Err(PyErr::fetch(py));
        }
    }
    if used != stored.len() {
        let known: Vec<Bound<'_, PyString>> =
            fields.iter().map(|f| f.name.bind(py).clone()).collect();
        for key in stored.keys() {
            if !known.iter().any(|k| k.as_any().eq(&key).unwrap_or(false)) {
                return Err(PyValueError::new_err(format!(
                    "stored {topic} has field {}, which the class does not have",
                    key.repr()?
                )));
            }
        }
    }
    Ok(obj)
}
