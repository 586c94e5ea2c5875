//! esox._core: the hot paths of esox (mapper, recorders, replay).
//!
//! This file only registers the module; each concern lives in its own file.

use pyo3::prelude::*;

pub mod errors;
pub mod records;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<records::StoredEvent>()?;
    m.add_class::<records::Notification>()?;
    m.add_class::<records::Tracking>()?;
    Ok(())
}
