//! Values of the native types built in Rust: UUIDs from their hex digits,
//! datetimes and dates from ISO 8601 text and bytes from base64, without
//! calling their Python parsers.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::text::{parse_iso_date, parse_iso_datetime, parse_uuid_hex, DateTimeFields};
use super::{Builtins, Native};

/// Standard base64 with padding, as `base64.b64encode` writes; decoding is
/// as strict as `b64decode(data, validate=True)`.
pub const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Decodes the data of a native name, as eventsourcing's transcoding would.
pub fn decode_native<'py>(
    b: &Builtins,
    native: Native,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    if let Ok(text) = data.cast::<PyString>() {
        if let Some(value) = decode_native_text(py, b, native, text.to_str()?.as_bytes()) {
            return value;
        }
    }
    match native {
        Native::Uuid => b.uuid_type.bind(py).call1((data,)),
        Native::Decimal => b.decimal_type.bind(py).call1((data,)),
        Native::DateTime => b.fromisoformat.bind(py).call1((data,)),
        Native::Date => b.date_fromisoformat.bind(py).call1((data,)),
        Native::Bytes => Err(PyValueError::new_err("bytes_base64 data must be a str")),
    }
}

/// Decodes a native value straight from its stored text, or `None` if the
/// text is not in the form esox and eventsourcing write (the caller then
/// hands it to Python's parser, which knows every other form).
#[inline]
pub fn decode_native_text<'py>(
    py: Python<'py>,
    b: &Builtins,
    native: Native,
    text: &[u8],
) -> Option<PyResult<Bound<'py, PyAny>>> {
    match native {
        Native::Uuid => parse_uuid_hex(text).map(|value| new_uuid(py, b, value)),
        Native::DateTime => parse_iso_datetime(text).map(|fields| new_datetime(py, &fields)),
        Native::Date => parse_iso_date(text).map(|(y, m, d)| new_date(py, y, m, d)),
        Native::Bytes => Some(match BASE64.decode(text) {
            Ok(bytes) => Ok(PyBytes::new(py, &bytes).into_any()),
            Err(e) => Err(PyValueError::new_err(format!("invalid base64: {e}"))),
        }),
        Native::Decimal => None,
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
        match b.uuid_slots {
            // The object was just made: both slots are NULL; each takes a
            // reference, as the member descriptors' setters would.
            Some((int_at, safe_at)) => {
                let base = obj.as_ptr() as *mut u8;
                *(base.offset(int_at) as *mut *mut ffi::PyObject) = int.into_ptr();
                *(base.offset(safe_at) as *mut *mut ffi::PyObject) =
                    b.safe_uuid_unknown.clone_ref(py).into_ptr();
            }
            None => {
                for (name, value) in [
                    (pyo3::intern!(py, "int"), int.as_ptr()),
                    (pyo3::intern!(py, "is_safe"), b.safe_uuid_unknown.as_ptr()),
                ] {
                    if ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value) != 0 {
                        return Err(PyErr::fetch(py));
                    }
                }
            }
        }
        // A UUID refers only to an int and an enum member and cannot be
        // changed, so it can never be part of a reference cycle: untracked,
        // it spares the cycle collector (and lets a dict holding only it and
        // other atomic values stay untracked too).
        crate::cpython::untrack(obj.as_ptr());
        Ok(obj)
    }
}

/// A `datetime.date`.
fn new_date(py: Python<'_>, year: i32, month: u8, day: u8) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the datetime C API was loaded by `builtins()`.
    unsafe {
        let api = &*ffi::PyDateTimeAPI();
        let ptr = (api.Date_FromDate)(year, month.into(), day.into(), api.DateType);
        Bound::from_owned_ptr_or_err(py, ptr)
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
