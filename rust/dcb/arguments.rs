//! The argument checks of the Rust DCB recorders, for a DCB recorder written
//! in Python (PostgreSQL): the same clear errors for the same bad input, and
//! the arguments as plain lists, read from Python in one call per operation.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::convert::{append_condition, new_events, position, query_items};
use super::index::Item;

/// A query's items as `(types, tags)` pairs.
type Items = Vec<(Vec<String>, Vec<String>)>;

fn pairs(items: Vec<Item>) -> Items {
    items.into_iter().map(|i| (i.types, i.tags)).collect()
}

/// The checked arguments of a read: the query's items, `after` and `limit`.
#[pyfunction]
#[pyo3(signature = (query=None, *, after=None, limit=None))]
pub fn dcb_read_arguments(
    py: Python<'_>,
    query: Option<&Bound<'_, PyAny>>,
    after: Option<i64>,
    limit: Option<i64>,
) -> PyResult<(Items, Option<u64>, Option<u64>)> {
    let items = query_items(query, "query")?;
    Ok((
        pairs(items),
        position(py, after, "after")?,
        position(py, limit, "limit")?,
    ))
}

/// The checked arguments of an append: the events' types, data and tags,
/// and the condition's items and `after` (0 for None), or None.
#[pyfunction]
#[pyo3(signature = (events, condition=None))]
#[allow(clippy::type_complexity)]
pub fn dcb_append_arguments<'py>(
    py: Python<'py>,
    events: &Bound<'py, PyAny>,
    condition: Option<&Bound<'py, PyAny>>,
) -> PyResult<(
    Vec<String>,
    Vec<Bound<'py, PyBytes>>,
    Vec<Vec<String>>,
    Option<(Items, u64)>,
)> {
    let events = new_events(events)?;
    let condition = append_condition(condition)?.map(|(items, after)| (pairs(items), after));
    let mut types = Vec::with_capacity(events.len());
    let mut datas = Vec::with_capacity(events.len());
    let mut tags = Vec::with_capacity(events.len());
    for event in events {
        types.push(event.type_);
        datas.push(PyBytes::new(py, &event.data));
        tags.push(event.tags);
    }
    Ok((types, datas, tags, condition))
}
