//! esox._core: the hot paths of esox (mapper, recorders, replay).
//!
//! This file only registers the module; each concern lives in its own file.

use pyo3::prelude::*;

pub mod codec;
pub mod errors;
pub mod mapper;
pub mod memory;
pub mod records;
pub mod sqlite;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<records::StoredEvent>()?;
    m.add_class::<records::Notification>()?;
    m.add_class::<records::Tracking>()?;
    m.add_class::<mapper::Mapper>()?;
    m.add_function(wrap_pyfunction!(mapper::encode_json, m)?)?;
    m.add_function(wrap_pyfunction!(mapper::decode_json, m)?)?;
    m.add_class::<memory::MemoryRecorder>()?;
    m.add_class::<sqlite::SqliteDatabase>()?;
    m.add_class::<sqlite::SqliteRecorder>()?;
    Ok(())
}
