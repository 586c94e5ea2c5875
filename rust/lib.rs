//! esox._core: the hot paths of esox (mapper, recorders, replay).
//!
//! This file only registers the module; each concern lives in its own file.

use pyo3::prelude::*;

mod binding;
mod cipher;
mod codec;
mod compress;
mod cpython;
mod dcb;
mod errors;
#[cfg(any(test, feature = "internals"))]
pub mod internals;
mod mapper;
mod memory;
mod records;
mod replay;
mod sqlite;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(binding::_bind, m)?)?;
    m.add_function(wrap_pyfunction!(binding::_is_bound, m)?)?;
    m.add_class::<records::StoredEvent>()?;
    m.add_class::<records::Notification>()?;
    m.add_class::<records::Tracking>()?;
    m.add_class::<records::Recording>()?;
    m.add_function(wrap_pyfunction!(records::recordings, m)?)?;
    m.add_class::<mapper::Mapper>()?;
    m.add_function(wrap_pyfunction!(mapper::encode_json, m)?)?;
    m.add_function(wrap_pyfunction!(mapper::decode_json, m)?)?;
    m.add_function(wrap_pyfunction!(compress::zlib_compress, m)?)?;
    m.add_function(wrap_pyfunction!(compress::zlib_decompress, m)?)?;
    m.add_function(wrap_pyfunction!(compress::zstd_compress, m)?)?;
    m.add_function(wrap_pyfunction!(compress::zstd_decompress, m)?)?;
    m.add_class::<cipher::AesGcm>()?;
    m.add_class::<memory::MemoryRecorder>()?;
    m.add_class::<dcb::DCBMemoryRecorder>()?;
    m.add_class::<dcb::DCBMemoryCursor>()?;
    m.add_class::<dcb::DCBSqliteRecorder>()?;
    m.add_class::<dcb::DCBSqliteCursor>()?;
    m.add_function(wrap_pyfunction!(dcb::dcb_read_arguments, m)?)?;
    m.add_function(wrap_pyfunction!(dcb::dcb_append_arguments, m)?)?;
    m.add_class::<sqlite::SqliteDatabase>()?;
    m.add_class::<sqlite::SqliteRecorder>()?;
    m.add_class::<sqlite::SqliteCursor>()?;
    m.add_class::<sqlite::SqliteRow>()?;
    m.add_function(wrap_pyfunction!(replay::replay, m)?)?;
    m.add_function(wrap_pyfunction!(replay::project_aggregate, m)?)?;
    Ok(())
}
