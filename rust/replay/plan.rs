//! What replay needs to know about a class: whether an event class's
//! `mutate` and `apply` are esox's own (so Rust may do what they do) and
//! whether an aggregate class reads and writes its attributes through its
//! instance `__dict__`.
//!
//! Event class plans are cached across replays and keyed by the class and
//! its type version tag, which CPython changes whenever the class or one of
//! its bases is modified: a patched `apply` or `mutate` is seen at once.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFunction, PyString, PyTuple, PyType};

use crate::binding::{bindings, ReplayNames, ReplayObjects};
use crate::cpython::{generic_attribute_access, is_data_descriptor, lookup, version_tag};

/// What replay knows of `esox.domain`: the replay contract that Python
/// handed over in the bind (`esox.domain.contract`).
#[derive(Clone, Copy)]
pub struct Known {
    /// The attribute names read and written.
    pub names: &'static ReplayNames,
    /// The functions compared with, re-implemented or called.
    pub objects: &'static ReplayObjects,
    pub resolve_topic: &'static Py<PyAny>,
    pub uuid: &'static Py<PyType>,
}

impl Known {
    pub fn get(py: Python<'_>) -> PyResult<Known> {
        let bound = bindings(py)?;
        Ok(Known {
            names: &bound.replay_names,
            objects: &bound.replay_objects,
            resolve_topic: &bound.resolve_topic,
            uuid: &crate::codec::builtins(py)?.uuid_type,
        })
    }
}

/// Whether instances of `cls` get (and, if `setting`, set) the named
/// attributes from their `__dict__` as `object` does: no `__getattr__`,
/// `__getattribute__` or `__setattr__` of its own and no data descriptor of
/// those names, so reading or writing the instance dict is what Python does.
pub fn plain_attributes(
    cls: &Bound<'_, PyType>,
    names: &[&Bound<'_, PyString>],
    setting: bool,
) -> bool {
    generic_attribute_access(cls, setting)
        && names
            .iter()
            .all(|name| lookup(cls, name).is_none_or(|attr| !is_data_descriptor(&attr)))
}

/// What an event's `apply(aggregate)` does.
pub enum Apply {
    /// `CanMutateAggregate.apply`: nothing.
    Nothing,
    /// `DecoratedFuncCaller.apply`: the decorated method, called with these
    /// names of the event's attributes as keyword arguments, then the next
    /// `apply` along the MRO (`super().apply`) if that does anything.
    Decorated {
        func: Py<PyAny>,
        names: Py<PyTuple>,
        then: Option<Py<PyAny>>,
    },
    /// Anything else: call `event.apply(aggregate)`.
    Method,
}

/// What an event's `mutate(aggregate)` does.
pub enum Mutate {
    /// `CanMutateAggregate.mutate`: check, apply, advance the version.
    Evolve(Apply),
    /// `AggregateCreated.mutate`: construct the aggregate, apply.
    Create(Apply),
    /// Anything else (or a class Rust cannot read plainly): call it.
    Python,
}

/// Cached plans: class address → (type version tag, plan).
type Plans = HashMap<usize, (u32, Arc<Mutate>)>;

static PLANS: LazyLock<Mutex<Plans>> = LazyLock::new(Mutex::default);

/// Plans of classes that no longer exist are replaced when their address is
/// reused; past this many, the cache starts again.
const MAX_CACHED_PLANS: usize = 4096;

fn plans() -> MutexGuard<'static, Plans> {
    // Nothing panics while holding this lock; recover if it ever did.
    PLANS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Mutate {
    /// The plan for events of class `cls`, cached while the class is unchanged.
    pub fn of(cls: &Bound<'_, PyType>, known: &Known) -> PyResult<Arc<Mutate>> {
        let key = cls.as_ptr() as usize;
        let tag = version_tag(cls);
        if tag != 0 {
            if let Some((cached_tag, plan)) = plans().get(&key) {
                if *cached_tag == tag {
                    return Ok(plan.clone());
                }
            }
        }
        let plan = Arc::new(Mutate::work_out(cls, known)?);
        // Working it out looked the class up, which gives it a tag if it had none.
        let tag = version_tag(cls);
        if tag != 0 {
            // Whatever is dropped here may run Python code: not under the lock.
            let (replaced, cleared) = {
                let mut cached = plans();
                let cleared = if cached.len() >= MAX_CACHED_PLANS {
                    std::mem::take(&mut *cached)
                } else {
                    Plans::new()
                };
                (cached.insert(key, (tag, plan.clone())), cleared)
            };
            drop((replaced, cleared));
        }
        Ok(plan)
    }

    fn work_out(cls: &Bound<'_, PyType>, known: &Known) -> PyResult<Mutate> {
        let py = cls.py();
        let (names, objects) = (known.names, known.objects);
        let Some(mutate) = lookup(cls, names.mutate.bind(py)) else {
            return Ok(Mutate::Python);
        };
        let create = if mutate.is(&objects.created_mutate) {
            true
        } else if mutate.is(&objects.can_mutate_mutate) {
            false
        } else {
            return Ok(Mutate::Python);
        };
        // Events whose state is not their __dict__ (msgspec Structs...).
        if !lookup(cls, names.as_dict.bind(py)).is_some_and(|f| f.is(&objects.base_as_dict)) {
            return Ok(Mutate::Python);
        }
        let reads = [
            names.originator_id.bind(py),
            names.originator_version.bind(py),
            names.timestamp.bind(py),
            names.originator_topic.bind(py),
        ];
        if !plain_attributes(cls, &reads[..if create { 4 } else { 3 }], false) {
            return Ok(Mutate::Python);
        }
        let apply = Apply::of(cls, known)?;
        Ok(if create {
            Mutate::Create(apply)
        } else {
            Mutate::Evolve(apply)
        })
    }
}

impl Apply {
    fn of(cls: &Bound<'_, PyType>, known: &Known) -> PyResult<Self> {
        let py = cls.py();
        let (known_names, objects) = (known.names, known.objects);
        let Some(apply) = lookup(cls, known_names.apply.bind(py)) else {
            return Ok(Apply::Method);
        };
        if apply.is(&objects.base_apply) {
            return Ok(Apply::Nothing);
        }
        if !apply.is(&objects.decorated_apply) {
            return Ok(Apply::Method);
        }
        // Anything unexpected is left to DecoratedFuncCaller.apply itself,
        // which then fails (or not) exactly as it would.
        let Ok(Some(spec)) = cls.getattr_opt(known_names.decorated_spec.bind(py)) else {
            return Ok(Apply::Method);
        };
        let (Ok(func), Ok(names)) = (
            spec.getattr(known_names.spec_func.bind(py)),
            spec.getattr(known_names.spec_names.bind(py)),
        ) else {
            return Ok(Apply::Method);
        };
        let Ok(names) = names.cast_into_exact::<PyTuple>() else {
            return Ok(Apply::Method);
        };
        if !names.iter().all(|n| n.is_exact_instance_of::<PyString>()) {
            return Ok(Apply::Method);
        }
        match super_apply(cls, known)? {
            Some(then) => Ok(Apply::Decorated {
                func: func.unbind(),
                names: names.unbind(),
                then: then.map(Bound::unbind),
            }),
            None => Ok(Apply::Method),
        }
    }
}

/// What `super().apply` inside `DecoratedFuncCaller.apply` finds for `cls`:
/// `Some(None)` if it does nothing, `Some(Some(function))` if a plain
/// function, `None` if anything else.
fn super_apply<'py>(
    cls: &Bound<'py, PyType>,
    known: &Known,
) -> PyResult<Option<Option<Bound<'py, PyAny>>>> {
    let py = cls.py();
    let mro = cls.mro();
    let caller = known.objects.decorated_caller.bind(py);
    let Some(at) = mro.iter().position(|c| c.is(caller)) else {
        return Ok(None);
    };
    for base in mro.iter().skip(at + 1) {
        let namespace = base.getattr(intern!(py, "__dict__"))?;
        let name = known.names.apply.bind(py);
        if !namespace.contains(name)? {
            continue;
        }
        let found = namespace.get_item(name)?;
        return Ok(if found.is(&known.objects.base_apply) {
            Some(None)
        } else if found.is_exact_instance_of::<PyFunction>() {
            Some(Some(found))
        } else {
            None
        });
    }
    Ok(None)
}

/// `obj.__dict__`, or None if it has none.
pub fn instance_dict<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
    let py = obj.py();
    // SAFETY: `obj` is alive; PyObject_GenericGetDict returns a new reference
    // or sets an error, which is taken (and dropped) here.
    let dict = unsafe { ffi::PyObject_GenericGetDict(obj.as_ptr(), std::ptr::null_mut()) };
    if dict.is_null() {
        drop(PyErr::take(py));
        return None;
    }
    // SAFETY: non-null new reference.
    let dict = unsafe { Bound::from_owned_ptr(py, dict) };
    dict.cast_into::<PyDict>().ok()
}
