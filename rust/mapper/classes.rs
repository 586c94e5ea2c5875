//! What the mapper knows about event classes: each class's topic and class
//! version (for encoding), and each topic's class, class version and id type
//! (for decoding). Cached per mapper, looked up once per batch per class.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::exceptions::PyTypeError;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};
use pyo3::PyTraverseError;

use crate::binding::bindings;

/// What encoding needs to know about an event class.
pub struct EncodeClass {
    /// Keeps the type (and so its address, the map key) alive.
    cls: Py<PyType>,
    topic: Py<PyString>,
    class_version: i64,
}

/// What decoding needs to know about the class a topic resolves to.
pub struct DecodeClass {
    pub cls: Py<PyType>,
    pub class_version: i64,
    /// The stored id is a str but the class wants a `uuid.UUID`.
    pub id_is_uuid: bool,
    /// The class is a frozen dataclass (as esox's domain events are).
    pub frozen: bool,
}

/// Per-batch memory of the last class seen, so a batch of events of one
/// class takes no locks.
#[derive(Default)]
pub struct Memo<'py> {
    encode: Option<(usize, Bound<'py, PyString>, i64)>,
    decode: Option<(Bound<'py, PyString>, Arc<DecodeClass>)>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover if it ever did.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Caches `value` unless another thread got there first; a value not kept
/// is dropped after the lock is released (dropping may run Python code).
fn insert_new<K: std::hash::Hash + Eq, V>(mutex: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let unused = {
        let mut map = locked(mutex);
        match map.entry(key) {
            Entry::Occupied(_) => Some(value),
            Entry::Vacant(slot) => {
                slot.insert(value);
                None
            }
        }
    };
    drop(unused);
}

/// The caches, one pair per mapper.
#[derive(Default)]
pub struct EventClasses {
    encode: Mutex<HashMap<usize, EncodeClass>>,
    decode: Mutex<HashMap<Box<str>, Arc<DecodeClass>>>,
}

impl EventClasses {
    /// The topic and class version of an event class, cached.
    pub fn encoding<'py>(
        &self,
        cls: &Bound<'py, PyType>,
        memo: &mut Memo<'py>,
    ) -> PyResult<(Bound<'py, PyString>, i64)> {
        let py = cls.py();
        let key = cls.as_ptr() as usize;
        if let Some((last, topic, version)) = &memo.encode {
            if *last == key {
                return Ok((topic.clone(), *version));
            }
        }
        let cached = locked(&self.encode)
            .get(&key)
            .map(|c| (c.topic.bind(py).clone(), c.class_version));
        let (topic, class_version) = match cached {
            Some(found) => found,
            None => {
                let get_topic = bindings(py)?.get_topic.bind(py);
                let topic = get_topic.call1((cls,))?.cast_into::<PyString>()?;
                let topic = PyString::intern(py, topic.to_str()?);
                let class_version = class_version(cls)?;
                let class = EncodeClass {
                    cls: cls.clone().unbind(),
                    topic: topic.clone().unbind(),
                    class_version,
                };
                insert_new(&self.encode, key, class);
                (topic, class_version)
            }
        };
        memo.encode = Some((key, topic.clone(), class_version));
        Ok((topic, class_version))
    }

    /// The class a topic resolves to, with its class version, cached. The
    /// error says what was wrong with the topic or the class.
    pub fn decoding<'py>(
        &self,
        topic: &Bound<'py, PyString>,
        memo: &mut Memo<'py>,
    ) -> Result<Arc<DecodeClass>, (&'static str, PyErr)> {
        if let Some((last, class)) = &memo.decode {
            if last.is(topic) {
                return Ok(class.clone());
            }
        }
        let text = topic
            .to_str()
            .map_err(|e| ("its topic is not valid text", e))?;
        let cached = locked(&self.decode).get(text).cloned();
        let class = match cached {
            Some(class) => class,
            None => {
                let class = Arc::new(resolve_class(topic)?);
                insert_new(&self.decode, text.into(), class.clone());
                class
            }
        };
        memo.decode = Some((topic.clone(), class.clone()));
        Ok(class)
    }

    /// Empties both caches; what they held is dropped after the locks are
    /// released (dropping may run Python code).
    pub fn clear(&self) {
        let encode = std::mem::take(&mut *locked(&self.encode));
        let decode = std::mem::take(&mut *locked(&self.decode));
        drop((encode, decode));
    }

    /// Lets Python's cycle collector see the cached classes.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        // The locks are never held while Python runs, so never held here.
        if let Ok(classes) = self.encode.try_lock() {
            for class in classes.values() {
                visit.call(&class.cls)?;
            }
        }
        if let Ok(classes) = self.decode.try_lock() {
            for class in classes.values() {
                visit.call(&class.cls)?;
            }
        }
        Ok(())
    }
}

/// Resolves a topic to an event class and learns what decoding needs.
fn resolve_class(topic: &Bound<'_, PyString>) -> Result<DecodeClass, (&'static str, PyErr)> {
    let py = topic.py();
    let resolved = bindings(py)
        .and_then(|bound| bound.resolve_topic.bind(py).call1((topic,)))
        .map_err(|e| ("could not resolve its topic", e))?;
    let cls = resolved.cast_into::<PyType>().map_err(|e| {
        let found = e.into_inner().get_type();
        (
            "its topic does not name a class, so not a domain event class",
            PyTypeError::new_err(format!("found a {found}")),
        )
    })?;
    // Before anything is made of it: a stored topic may name only an event
    // class, never any class at all (a forged row naming one whose
    // finaliser closes a file descriptor, say).
    if !is_event_class(&cls).map_err(|e| ("its class could not be checked", e))? {
        return Err((
            "its topic names a class that is not a domain event class",
            PyTypeError::new_err(format!(
                "{} is neither a subclass of esox.domain.DomainEvent or AbstractDecision \
                 nor a class with an originator_id annotation (as eventsourcing's events have); \
                 the row is corrupt or forged",
                cls.repr().map_or_else(|_| "?".into(), |r| r.to_string())
            )),
        ));
    }
    // Once per class: Python checks that object.__new__(cls) is allowed
    // (not abstract, no incompatible base), so `new_event` can skip it.
    py.get_type::<PyAny>()
        .call_method1(intern!(py, "__new__"), (&cls,))
        .map_err(|e| ("its class cannot be created with object.__new__", e))?;
    let id_is_uuid = match cls.getattr_opt(intern!(py, "originator_id_type")) {
        Ok(Some(t)) => !t.is(py.get_type::<PyString>()),
        Ok(None) => true,
        Err(e) => return Err(("its class has no readable originator_id_type", e)),
    };
    let frozen = match cls.getattr_opt(intern!(py, "__dataclass_params__")) {
        Ok(Some(params)) => params
            .getattr(intern!(py, "frozen"))
            .and_then(|f| f.is_truthy())
            .unwrap_or(false),
        _ => false,
    };
    Ok(DecodeClass {
        class_version: class_version(&cls).map_err(|e| ("its class_version is not an int", e))?,
        cls: cls.unbind(),
        id_is_uuid,
        frozen,
    })
}

/// Whether the mapper may build instances of `cls`: esox's domain events
/// and snapshots, and, as eventsourcing decides, any class with an
/// `originator_id` annotation in its MRO or eventsourcing's
/// `HasOriginatorIDVersion` base (checked once per class: the result is
/// cached with the topic).
fn is_event_class(cls: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = cls.py();
    let domain_event = bindings(py)?.domain_event.bind(py);
    if cls.is_subclass(domain_event)? {
        return Ok(true);
    }
    // The decisions of esox.dcb (tagged, not of an originator).
    if cls.is_subclass(bindings(py)?.abstract_decision.bind(py))? {
        return Ok(true);
    }
    let key = intern!(py, "originator_id");
    for base in cls.mro().iter() {
        let Ok(base) = base.cast_into::<PyType>() else {
            continue;
        };
        if base.qualname()? == "HasOriginatorIDVersion" && base.module()? == "eventsourcing.domain"
        {
            return Ok(true);
        }
        // The class's own annotations, as `vars(base).get("__annotations__")`.
        let own = base.getattr(intern!(py, "__dict__"))?;
        if let Ok(annotations) = own.get_item(intern!(py, "__annotations__")) {
            if annotations.contains(key).unwrap_or(false) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `getattr(cls, "class_version", 1)` as an int.
fn class_version(cls: &Bound<'_, PyType>) -> PyResult<i64> {
    match cls.getattr_opt(intern!(cls.py(), "class_version"))? {
        Some(version) => version.extract(),
        None => Ok(1),
    }
}
