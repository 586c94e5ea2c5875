//! Values of the native types built in Rust: UUIDs from their hex digits
//! and datetimes from ISO 8601 text, without calling their Python parsers.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::text::{parse_iso_datetime, parse_uuid_hex, DateTimeFields};
use super::{Builtins, Native};

/// Decodes the data of a native name, as eventsourcing's transcoding would.
pub fn decode_native<'py>(
    b: &Builtins,
    native: Native,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let text = data.cast::<PyString>().ok().and_then(|s| s.to_str().ok());
    match native {
        Native::Uuid => match text.and_then(|t| parse_uuid_hex(t.as_bytes())) {
            Some(value) => new_uuid(py, b, value),
            None => b.uuid_type.bind(py).call1((data,)),
        },
        Native::Decimal => b.decimal_type.bind(py).call1((data,)),
        Native::DateTime => match text.and_then(|t| parse_iso_datetime(t.as_bytes())) {
            Some(fields) => new_datetime(py, &fields),
            None => b.fromisoformat.bind(py).call1((data,)),
        },
    }
}

/// A `uuid.UUID` built as `UUID.__init__` would (sets `int` and `is_safe`),
/// without parsing its text in Python.
pub fn new_uuid<'py>(py: Python<'py>, b: &Builtins, value: u128) -> PyResult<Bound<'py, PyAny>> {
    let int = value.into_pyobject(py)?;
    let uuid_type = b.uuid_type.bind(py);
    if !b.uuid_uses_object_new {
        let kwargs = PyDict::new(py);
        kwargs.set_item("int", int)?;
        return uuid_type.call((), Some(&kwargs));
    }
    // SAFETY: UUID uses object.__new__ (checked), so calling object's tp_new
    // is what object.__new__(UUID) does; the slots are set as UUID.__init__ does.
    unsafe {
        let Some(new) = ffi::PyBaseObject_Type.tp_new else {
            return Err(PyErr::fetch(py));
        };
        let obj = Bound::from_owned_ptr_or_err(
            py,
            new(
                uuid_type.as_ptr().cast(),
                b.empty_tuple.as_ptr(),
                std::ptr::null_mut(),
            ),
        )?;
        for (name, value) in [
            (pyo3::intern!(py, "int"), int.as_ptr()),
            (pyo3::intern!(py, "is_safe"), b.safe_uuid_unknown.as_ptr()),
        ] {
            if ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value) != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        Ok(obj)
    }
}

/// A `datetime.datetime` from parsed ISO fields; a zero offset gives
/// `timezone.utc` itself, as `fromisoformat` does.
fn new_datetime<'py>(py: Python<'py>, f: &DateTimeFields) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the datetime C API was loaded by `builtins()`.
    unsafe {
        let api = &*ffi::PyDateTimeAPI();
        let tzinfo = match f.offset {
            None => Bound::from_borrowed_ptr(py, ffi::Py_None()),
            Some(0) => Bound::from_borrowed_ptr(py, api.TimeZone_UTC),
            Some(micros) => {
                let (seconds, micros) = (micros / 1_000_000, micros % 1_000_000);
                let delta = Bound::from_owned_ptr_or_err(
                    py,
                    (api.Delta_FromDelta)(0, seconds as i32, micros as i32, 1, api.DeltaType),
                )?;
                Bound::from_owned_ptr_or_err(
                    py,
                    (api.TimeZone_FromTimeZone)(delta.as_ptr(), std::ptr::null_mut()),
                )?
            }
        };
        let ptr = (api.DateTime_FromDateAndTime)(
            f.year,
            f.month.into(),
            f.day.into(),
            f.hour.into(),
            f.minute.into(),
            f.second.into(),
            f.microsecond as i32,
            tzinfo.as_ptr(),
            api.DateTimeType,
        );
        Bound::from_owned_ptr_or_err(py, ptr)
    }
}
