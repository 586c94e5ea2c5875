//! The JSON codec of stored-event state, byte-compatible with eventsourcing's
//! `JSONTranscoder`: `encode` walks Python objects and writes JSON straight
//! into a buffer; `decode` parses JSON bytes straight into Python objects.
//!
//! UUID, Decimal and datetime are handled natively as `uuid_hex`,
//! `decimal_str` and `datetime_iso` (as long as the transcoder registers
//! those names for those types); any other type is looked up in the
//! transcoder's `types` (encoding) or `names` (decoding) and its Python
//! `Transcoding` is called.

pub mod decode;
pub mod encode;
pub mod error;
mod keys;
pub mod native;
pub mod scan;
pub mod text;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

/// Containers nested deeper than this are refused (encoding and decoding),
/// so that a circular reference or hostile input cannot overflow the stack.
pub const MAX_DEPTH: usize = 512;

/// Python objects the codec needs, looked up once.
pub struct Builtins {
    pub uuid_type: Py<PyType>,
    pub decimal_type: Py<PyType>,
    pub datetime_type: Py<PyType>,
    pub safe_uuid_unknown: Py<PyAny>,
    /// `UUID.__new__ is object.__new__`, so UUIDs can be built directly.
    pub uuid_uses_object_new: bool,
    pub fromisoformat: Py<PyAny>,
    pub empty_tuple: Py<PyTuple>,
    pub int_layout: IntLayout,
}

/// How this interpreter lays out small ints, so the encoder can read them
/// without a call (as orjson does). `Unknown` always uses the C API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntLayout {
    /// Up to 3.11: `ob_size` is the signed digit count.
    SignedSize,
    /// 3.12 to 3.14: `lv_tag` holds the digit count and the sign.
    Tagged,
    Unknown,
}

fn int_layout(py: Python<'_>) -> PyResult<IntLayout> {
    let info = py.import("sys")?.getattr("int_info")?;
    let bits: u32 = info.getattr("bits_per_digit")?.extract()?;
    let size: u32 = info.getattr("sizeof_digit")?.extract()?;
    if (bits, size) != (30, 4) {
        return Ok(IntLayout::Unknown);
    }
    let version = py.version_info();
    Ok(match (version.major, version.minor) {
        (3, 11) => IntLayout::SignedSize,
        (3, 12..=14) => IntLayout::Tagged,
        _ => IntLayout::Unknown,
    })
}

static BUILTINS: PyOnceLock<Builtins> = PyOnceLock::new();

/// The codec's cached Python objects (imports `uuid`, `decimal`, `datetime`).
pub fn builtins(py: Python<'_>) -> PyResult<&'static Builtins> {
    BUILTINS.get_or_try_init(py, || {
        let uuid = py.import("uuid")?;
        let datetime = py.import("datetime")?;
        // SAFETY: attached to the interpreter; the C API capsule is imported
        // once and then only read.
        unsafe {
            ffi::PyDateTime_IMPORT();
            if ffi::PyDateTimeAPI().is_null() {
                return Err(PyErr::fetch(py));
            }
        }
        let datetime_type = datetime.getattr("datetime")?.cast_into::<PyType>()?;
        let uuid_type = uuid.getattr("UUID")?.cast_into::<PyType>()?;
        let object_new = py.get_type::<PyAny>().getattr("__new__")?;
        Ok(Builtins {
            uuid_uses_object_new: uuid_type.getattr("__new__")?.is(&object_new),
            uuid_type: uuid_type.unbind(),
            decimal_type: py
                .import("decimal")?
                .getattr("Decimal")?
                .cast_into::<PyType>()?
                .unbind(),
            safe_uuid_unknown: uuid.getattr("SafeUUID")?.getattr("unknown")?.unbind(),
            fromisoformat: datetime_type.getattr("fromisoformat")?.unbind(),
            datetime_type: datetime_type.unbind(),
            empty_tuple: PyTuple::empty(py).unbind(),
            int_layout: int_layout(py)?,
        })
    })
}

/// The types stored natively under their eventsourcing names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    Uuid,
    Decimal,
    DateTime,
}

impl Native {
    pub const ALL: [Native; 3] = [Native::Uuid, Native::Decimal, Native::DateTime];

    pub fn name(self) -> &'static str {
        match self {
            Native::Uuid => "uuid_hex",
            Native::Decimal => "decimal_str",
            Native::DateTime => "datetime_iso",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Native> {
        Native::ALL
            .into_iter()
            .find(|n| n.name().as_bytes() == name)
    }

    fn python_type(self, builtins: &Builtins) -> &Py<PyType> {
        match self {
            Native::Uuid => &builtins.uuid_type,
            Native::Decimal => &builtins.decimal_type,
            Native::DateTime => &builtins.datetime_type,
        }
    }
}

/// How a value of a native type (or a stored native name) is to be handled.
#[derive(Clone)]
pub enum Handling<'py> {
    /// The transcoder registers eventsourcing's own transcoding: do it in Rust.
    Native,
    /// The transcoder registers something else under that type or name.
    Transcoding(Bound<'py, PyAny>),
    /// Nothing is registered.
    Missing,
}

/// A transcoder's `types` and `names` registries, read once per batch.
pub struct Registry<'py> {
    transcoder: Bound<'py, PyAny>,
    types: Option<Bound<'py, PyDict>>,
    names: Option<Bound<'py, PyDict>>,
    by_type: [Option<Handling<'py>>; 3],
    by_name: [Option<Handling<'py>>; 3],
}

impl<'py> Registry<'py> {
    pub fn new(transcoder: &Bound<'py, PyAny>) -> Self {
        Registry {
            transcoder: transcoder.clone(),
            types: None,
            names: None,
            by_type: [None, None, None],
            by_name: [None, None, None],
        }
    }

    fn registry(&self, attribute: &str) -> PyResult<Bound<'py, PyDict>> {
        let value = self.transcoder.getattr(attribute)?;
        value.cast_into::<PyDict>().map_err(|e| {
            PyTypeError::new_err(format!(
                "transcoder.{attribute} must be a dict, not {}",
                e.into_inner().get_type()
            ))
        })
    }

    /// The transcoder's `types`: `dict[type, Transcoding]`.
    pub fn types(&mut self) -> PyResult<&Bound<'py, PyDict>> {
        let types = match self.types.take() {
            Some(types) => types,
            None => self.registry("types")?,
        };
        Ok(self.types.insert(types))
    }

    /// The transcoder's `names`: `dict[str, Transcoding]`.
    pub fn names(&mut self) -> PyResult<&Bound<'py, PyDict>> {
        let names = match self.names.take() {
            Some(names) => names,
            None => self.registry("names")?,
        };
        Ok(self.names.insert(names))
    }

    /// How to encode a value of the native type: natively if the transcoding
    /// registered for that type uses the eventsourcing name.
    pub fn encoding(&mut self, native: Native, builtins: &Builtins) -> PyResult<Handling<'py>> {
        if let Some(handling) = &self.by_type[native as usize] {
            return Ok(handling.clone());
        }
        let py = self.transcoder.py();
        let key = native.python_type(builtins).bind(py);
        let handling = match self.types()?.get_item(key)? {
            None => Handling::Missing,
            Some(transcoding) => {
                let name = transcoding.getattr(pyo3::intern!(py, "name"))?;
                if name.cast::<PyString>().is_ok_and(|n| n == native.name()) {
                    Handling::Native
                } else {
                    Handling::Transcoding(transcoding)
                }
            }
        };
        self.by_type[native as usize] = Some(handling.clone());
        Ok(handling)
    }

    /// How to decode data stored under a native name: natively if the
    /// transcoding registered under that name is for the native type.
    pub fn decoding(&mut self, native: Native, builtins: &Builtins) -> PyResult<Handling<'py>> {
        if let Some(handling) = &self.by_name[native as usize] {
            return Ok(handling.clone());
        }
        let py = self.transcoder.py();
        let handling = match self.names()?.get_item(native.name())? {
            None => Handling::Missing,
            Some(transcoding) => {
                let registered = transcoding.getattr(pyo3::intern!(py, "type"))?;
                if registered.is(native.python_type(builtins).bind(py)) {
                    Handling::Native
                } else {
                    Handling::Transcoding(transcoding)
                }
            }
        };
        self.by_name[native as usize] = Some(handling.clone());
        Ok(handling)
    }
}

/// True if the transcoder can be driven natively (it has `types` and `names`,
/// like eventsourcing's and esox's `JSONTranscoder`); otherwise the mapper
/// calls its `encode` and `decode` methods.
pub fn is_native_transcoder(transcoder: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = transcoder.py();
    Ok(transcoder.hasattr(pyo3::intern!(py, "types"))?
        && transcoder.hasattr(pyo3::intern!(py, "names"))?)
}
