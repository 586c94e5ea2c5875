//! Aggregate replay in one call: select an aggregate's stored events, decode
//! them, and apply them in order in one Rust loop.
//!
//! Events whose class keeps esox's own `mutate` (`CanMutateAggregate.mutate`
//! or `AggregateCreated.mutate`) are mutated here: the id and version checks,
//! the `@event`-decorated method called straight from the event's `__dict__`
//! (keyword names passed as a tuple, no dict built), and the new version and
//! timestamp written into the aggregate's `__dict__`. Everything else (custom
//! `mutate` or `apply`, classes with their own attribute access) goes through
//! Python, so the result is always what `project_aggregate` would give.

mod plan;

use std::sync::Arc;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyString, PyTuple, PyType};

use plan::{instance_dict, plain_attributes, Apply, Known, Mutate};

/// Applies events one by one, as `project_aggregate` does.
struct Projector<'py> {
    py: Python<'py>,
    known: Known,
    /// The aggregate so far (Python None before the first event).
    aggregate: Bound<'py, PyAny>,
    /// Plans of the event classes seen in this replay.
    plans: Vec<(Bound<'py, PyType>, Arc<Mutate>)>,
    last_plan: usize,
    /// The last aggregate class seen, and whether Rust may use its `__dict__`.
    aggregate_class: Option<(Bound<'py, PyType>, bool)>,
    /// Scratch for the arguments of a decorated method.
    args: Vec<Bound<'py, PyAny>>,
    pointers: Vec<*mut ffi::PyObject>,
}

impl<'py> Projector<'py> {
    fn new(initial: Bound<'py, PyAny>) -> PyResult<Self> {
        let py = initial.py();
        Ok(Projector {
            py,
            known: Known::get(py)?,
            aggregate: initial,
            plans: Vec::new(),
            last_plan: 0,
            aggregate_class: None,
            args: Vec::new(),
            pointers: Vec::new(),
        })
    }

    fn plan(&mut self, cls: Bound<'py, PyType>) -> PyResult<Arc<Mutate>> {
        if let Some((seen, plan)) = self.plans.get(self.last_plan) {
            if seen.is(&cls) {
                return Ok(plan.clone());
            }
        }
        if let Some(i) = self.plans.iter().position(|(seen, _)| seen.is(&cls)) {
            self.last_plan = i;
            return Ok(self.plans[i].1.clone());
        }
        let plan = Mutate::of(&cls, &self.known)?;
        self.last_plan = self.plans.len();
        self.plans.push((cls, plan.clone()));
        Ok(plan)
    }

    /// Whether the current aggregate's class reads and writes `_id`,
    /// `_version` and `_modified_on` plainly through its `__dict__`.
    fn aggregate_is_plain(&mut self) -> bool {
        let cls = self.aggregate.get_type();
        if let Some((seen, plain)) = &self.aggregate_class {
            if seen.is(&cls) {
                return *plain;
            }
        }
        let py = self.py;
        let known = self.known.names;
        let names = [
            known.id.bind(py),
            known.version.bind(py),
            known.modified_on.bind(py),
        ];
        let plain = plain_attributes(&cls, &names, true);
        self.aggregate_class = Some((cls, plain));
        plain
    }

    fn mutate(&mut self, event: &Bound<'py, PyAny>) -> PyResult<()> {
        let plan = self.plan(event.get_type())?;
        let (create, apply) = match &*plan {
            Mutate::Python => return self.mutate_in_python(event),
            Mutate::Evolve(apply) => (false, apply),
            Mutate::Create(apply) => (true, apply),
        };
        let py = self.py;
        let names = self.known.names;
        // An instance attribute named `mutate` or `apply` would be called
        // instead of the class's method: leave such an event to Python.
        let state = match instance_dict(event) {
            Some(state)
                if !state.contains(names.mutate.bind(py))?
                    && !state.contains(names.apply.bind(py))? =>
            {
                state
            }
            _ => return self.mutate_in_python(event),
        };
        if create {
            self.create(event, &state, apply)
        } else {
            self.evolve(event, &state, apply)
        }
    }

    fn mutate_all(&mut self, events: &Bound<'py, PyAny>) -> PyResult<()> {
        // A list subclass may iterate its own way.
        if let Ok(list) = events.cast_exact::<PyList>() {
            list.iter().try_for_each(|event| self.mutate(&event))
        } else {
            events
                .try_iter()?
                .try_for_each(|event| self.mutate(&event?))
        }
    }

    fn mutate_in_python(&mut self, event: &Bound<'py, PyAny>) -> PyResult<()> {
        let mutate = self.known.names.mutate.bind(self.py);
        self.aggregate = event.call_method1(mutate, (&self.aggregate,))?;
        Ok(())
    }

    /// `CanMutateAggregate.mutate`.
    fn evolve(
        &mut self,
        event: &Bound<'py, PyAny>,
        state: &Bound<'py, PyDict>,
        apply: &Apply,
    ) -> PyResult<()> {
        let (py, names, objects) = (self.py, self.known.names, self.known.objects);
        if self.aggregate.is_none() || !self.aggregate_is_plain() {
            return self.mutate_in_python(event);
        }
        let aggregate = self.aggregate.clone();
        let Some(attributes) = instance_dict(&aggregate) else {
            return self.mutate_in_python(event);
        };
        let event_id = read(event, state, names.originator_id.bind(py))?;
        let aggregate_id = read(&aggregate, &attributes, names.id.bind(py))?;
        if !self.same_id(&event_id, &aggregate_id)? {
            let error = objects.id_error.bind(py).call1((event_id, aggregate_id))?;
            return Err(PyErr::from_value(error));
        }
        let current = read(&aggregate, &attributes, names.version.bind(py))?;
        let version = read(event, state, names.originator_version.bind(py))?;
        if let Some(next) = next_version(&current, &version)? {
            let error = objects.version_error.bind(py).call1((version, next))?;
            return Err(PyErr::from_value(error));
        }
        self.apply(event, state, &aggregate, apply)?;
        let timestamp = read(event, state, names.timestamp.bind(py))?;
        // The apply may have replaced the aggregate's __dict__.
        let attributes = instance_dict(&aggregate).unwrap_or(attributes);
        attributes.set_item(names.version.bind(py), version)?;
        attributes.set_item(names.modified_on.bind(py), timestamp)?;
        Ok(())
    }

    /// `AggregateCreated.mutate`: the aggregate so far is ignored.
    fn create(
        &mut self,
        event: &Bound<'py, PyAny>,
        state: &Bound<'py, PyDict>,
        apply: &Apply,
    ) -> PyResult<()> {
        let (py, names, objects) = (self.py, self.known.names, self.known.objects);
        let topic = read(event, state, names.originator_topic.bind(py))?;
        let cls = self.known.resolve_topic.bind(py).call1((&topic,))?;
        // A stored topic builds nothing but an aggregate (as in
        // `esox.domain.events.resolve_aggregate_class`).
        let is_aggregate = match cls.cast::<PyType>() {
            Ok(t) => t.is_subclass(objects.base_aggregate.bind(py))?,
            Err(_) => false,
        };
        if !is_aggregate {
            let err = objects
                .not_an_aggregate_class
                .bind(py)
                .call1((&topic, &cls))?;
            return Err(PyErr::from_value(err));
        }
        let aggregate = cls.call_method1(intern!(py, "__new__"), (&cls,))?;
        aggregate.call_method1(
            names.base_init.bind(py),
            (
                read(event, state, names.originator_id.bind(py))?,
                read(event, state, names.originator_version.bind(py))?,
                read(event, state, names.timestamp.bind(py))?,
            ),
        )?;
        let init_params = cls.getattr(names.init_params.bind(py))?;
        let init_func = cls.getattr(names.init_func.bind(py))?;
        if !init_params.is_none() && !init_func.is_none() {
            let kwargs = PyDict::new(py);
            for name in init_params.try_iter()? {
                let name = name?;
                if let Some(value) = state.get_item(&name)? {
                    kwargs.set_item(name, value)?;
                }
            }
            if cls.getattr(names.init_mentions_id.bind(py))?.is_truthy()? {
                let id = read(event, state, names.originator_id.bind(py))?;
                kwargs.set_item(intern!(py, "id"), id)?;
            }
            // A default_factory value (a new list...) is copied, so that
            // changes to the aggregate do not leak into its event.
            let spec = cls.getattr(names.init_spec.bind(py))?;
            if !spec.is_none() {
                let factories = spec.getattr(names.spec_factories.bind(py))?;
                if factories.is_truthy()? {
                    copy_factory_values(&kwargs, &factories)?;
                }
            }
            init_func
                .call((&aggregate,), Some(&kwargs))
                .map_err(|e| explain_missing(py, event, &init_func, state, e))?;
        }
        self.apply(event, state, &aggregate, apply)?;
        self.aggregate = aggregate;
        Ok(())
    }

    /// `event.apply(aggregate)`.
    fn apply(
        &mut self,
        event: &Bound<'py, PyAny>,
        state: &Bound<'py, PyDict>,
        aggregate: &Bound<'py, PyAny>,
        apply: &Apply,
    ) -> PyResult<()> {
        match apply {
            Apply::Nothing => Ok(()),
            Apply::Method => {
                event.call_method1(self.known.names.apply.bind(self.py), (aggregate,))?;
                Ok(())
            }
            Apply::Decorated { func, names, then } => {
                self.call_decorated(func.bind(self.py), names.bind(self.py), state, aggregate)?;
                if let Some(then) = then {
                    then.bind(self.py).call1((event, aggregate))?;
                }
                Ok(())
            }
        }
    }

    /// `func(aggregate, **{name: state[name] for name in names})`, with the
    /// names passed as vectorcall keyword names.
    fn call_decorated(
        &mut self,
        func: &Bound<'py, PyAny>,
        names: &Bound<'py, PyTuple>,
        state: &Bound<'py, PyDict>,
        aggregate: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let py = self.py;
        self.args.clear();
        self.args.push(aggregate.clone());
        for name in names.iter() {
            match state.get_item(&name)? {
                Some(value) => self.args.push(value),
                None => return Err(pyo3::exceptions::PyKeyError::new_err(name.unbind())),
            }
        }
        self.pointers.clear();
        self.pointers.extend(self.args.iter().map(|a| a.as_ptr()));
        // SAFETY: `func`, `names` (a tuple of str) and every argument are kept
        // alive by `self.args` and the caller for the duration of the call;
        // one positional argument, then one value per keyword name.
        let result = unsafe {
            ffi::PyObject_Vectorcall(func.as_ptr(), self.pointers.as_ptr(), 1, names.as_ptr())
        };
        // SAFETY: a new reference, or NULL with an error set.
        let result = unsafe { Bound::from_owned_ptr_or_err(py, result) };
        self.args.clear();
        result.map(drop)
    }

    /// `not (event_id != aggregate_id)`, quickly for UUIDs and strs.
    fn same_id(
        &self,
        event_id: &Bound<'py, PyAny>,
        aggregate_id: &Bound<'py, PyAny>,
    ) -> PyResult<bool> {
        let py = self.py;
        let uuid = self.known.uuid.bind(py);
        let both =
            |check: &dyn Fn(&Bound<'py, PyAny>) -> bool| check(event_id) && check(aggregate_id);
        if both(&|id| id.is_exact_instance_of::<PyString>()) {
            return Ok(event_id.is(aggregate_id) || event_id.eq(aggregate_id)?);
        }
        if both(&|id| id.is_exact_instance(uuid)) {
            // UUID.__eq__ compares the ints, and != is its negation.
            if event_id.is(aggregate_id) {
                return Ok(true);
            }
            let int = intern!(py, "int");
            return event_id.getattr(int)?.eq(aggregate_id.getattr(int)?);
        }
        Ok(!event_id.ne(aggregate_id)?)
    }
}

/// A TypeError from an aggregate's `__init__` made clearer when the stored
/// event lacks an argument it requires (a missing upcaster), as
/// `esox.domain.events.missing_arguments_error` explains; only on that path.
#[cold]
fn explain_missing<'py>(
    py: Python<'py>,
    event: &Bound<'py, PyAny>,
    func: &Bound<'py, PyAny>,
    state: &Bound<'py, PyDict>,
    err: PyErr,
) -> PyErr {
    if !err.is_instance_of::<pyo3::exceptions::PyTypeError>(py) {
        return err;
    }
    let clearer = Known::get(py).and_then(|known| {
        known
            .objects
            .missing_arguments_error
            .bind(py)
            .call1((event, func, state, err.value(py)))
    });
    match clearer {
        Ok(clearer) if !clearer.is(err.value(py)) => {
            let clearer = PyErr::from_value(clearer);
            clearer.set_cause(py, Some(err));
            clearer
        }
        _ => err,
    }
}

/// `obj.<name>`, from its `__dict__` if there (the caller has checked that
/// this is where Python would find it).
fn read<'py>(
    obj: &Bound<'py, PyAny>,
    attributes: &Bound<'py, PyDict>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    match attributes.get_item(name)? {
        Some(value) => Ok(value),
        None => obj.getattr(name),
    }
}

/// `kwargs[name] = copy.deepcopy(kwargs[name])` for each name of
/// `factories` in `kwargs`, as `CanInitAggregate.mutate` does.
#[cold]
fn copy_factory_values(kwargs: &Bound<'_, PyDict>, factories: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = kwargs.py();
    let deepcopy = py
        .import(intern!(py, "copy"))?
        .getattr(intern!(py, "deepcopy"))?;
    for name in factories.try_iter()? {
        let name = name?;
        if let Some(value) = kwargs.get_item(&name)? {
            kwargs.set_item(&name, deepcopy.call1((value,))?)?;
        }
    }
    Ok(())
}

/// None if `version` is `current + 1`, else `current + 1` (for the error).
fn next_version<'py>(
    current: &Bound<'py, PyAny>,
    version: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = current.py();
    if current.is_exact_instance_of::<PyInt>() && version.is_exact_instance_of::<PyInt>() {
        if let (Ok(c), Ok(v)) = (current.extract::<i64>(), version.extract::<i64>()) {
            if let Some(next) = c.checked_add(1) {
                return Ok((v != next).then(|| PyInt::new(py, next).into_any()));
            }
        }
    }
    let next = current.add(1)?;
    Ok(if version.ne(&next)? { Some(next) } else { None })
}

fn project<'py>(
    initial: Bound<'py, PyAny>,
    events: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut projector = Projector::new(initial)?;
    projector.mutate_all(events)?;
    Ok(projector.aggregate)
}

/// Applies `events` in order to `aggregate` (None before the first event)
/// and returns the result, exactly as `project_aggregate` does.
#[pyfunction]
pub fn project_aggregate<'py>(
    aggregate: Bound<'py, PyAny>,
    events: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    project(aggregate, events)
}

/// Reconstructs an aggregate from the events recorded for `originator_id`
/// with versions in (gt, lte], applied to `initial`: an aggregate, a
/// `Snapshot` (mutated first; `gt` defaults to its version) or None (start
/// from the created event). Returns None if there is nothing to return.
#[pyfunction]
#[pyo3(signature = (mapper, recorder, originator_id, *, gt=None, lte=None, initial=None))]
pub fn replay<'py>(
    mapper: &Bound<'py, PyAny>,
    recorder: &Bound<'py, PyAny>,
    originator_id: &Bound<'py, PyAny>,
    mut gt: Option<Bound<'py, PyAny>>,
    lte: Option<Bound<'py, PyAny>>,
    initial: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = mapper.py();
    let none = || py.None().into_bound(py);
    let initial = match initial {
        Some(snapshot) if snapshot.is_instance(Known::get(py)?.objects.snapshot.bind(py))? => {
            if gt.is_none() {
                gt = Some(snapshot.getattr(intern!(py, "originator_version"))?);
            }
            snapshot.call_method1(intern!(py, "mutate"), (none(),))?
        }
        Some(aggregate) => aggregate,
        None => none(),
    };
    // The same call EventStore.get makes, so any recorder will do.
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "gt"), gt)?;
    kwargs.set_item(intern!(py, "lte"), lte)?;
    kwargs.set_item(intern!(py, "desc"), false)?;
    kwargs.set_item(intern!(py, "limit"), none())?;
    let stored = recorder.call_method(
        intern!(py, "select_events"),
        (originator_id,),
        Some(&kwargs),
    )?;
    let events = mapper.call_method1(intern!(py, "to_domain_events"), (stored,))?;
    project(initial, &events)
}
