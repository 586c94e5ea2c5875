//! The JSON codec of stored-event state, byte-compatible with eventsourcing's
//! `JSONTranscoder`: `encode` walks Python objects and writes JSON straight
//! into a buffer; `decode` parses JSON bytes straight into Python objects.
//!
//! UUID, Decimal and datetime are handled natively as `uuid_hex`,
//! `decimal_str` and `datetime_iso` (as long as the transcoder registers
//! those names for those types), and so are date (`date_iso`) and bytes
//! (`bytes_base64`) while esox's own transcodings for them are registered.
//! Enum members and frozen dataclass instances whose exact type has no
//! transcoding of its own are stored generically, by topic (`enum`,
//! `dataclass`; see `generic`). Any other type is looked up in the
//! transcoder's `types` (encoding) or `names` (decoding) and its Python
//! `Transcoding` is called.

pub mod decode;
pub mod encode;
pub mod error;
pub mod generic;
mod keys;
pub mod native;
pub mod scan;
pub mod text;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use crate::binding::bindings;
use crate::cpython::{self, IntLayout};

/// Containers nested deeper than this are refused (encoding and decoding),
/// so that a circular reference or hostile input cannot overflow the stack.
pub const MAX_DEPTH: usize = 512;

/// Python objects the codec needs, looked up once.
pub struct Builtins {
    pub uuid_type: Py<PyType>,
    pub decimal_type: Py<PyType>,
    pub datetime_type: Py<PyType>,
    pub date_type: Py<PyType>,
    pub bytes_type: Py<PyType>,
    pub enum_type: Py<PyType>,
    pub date_fromisoformat: Py<PyAny>,
    pub safe_uuid_unknown: Py<PyAny>,
    /// `UUID.__new__ is object.__new__`, so UUIDs can be built directly.
    pub uuid_uses_object_new: bool,
    /// Where a UUID keeps its `int` and `is_safe` (offsets of its slots),
    /// when both are plain object slots, so a new one is filled directly.
    pub uuid_slots: Option<(isize, isize)>,
    /// CPython's `_PyDict_NewPresized`, if this interpreter exports it.
    pub dict_presized: Option<cpython::NewPresized>,
    pub fromisoformat: Py<PyAny>,
    pub empty_tuple: Py<PyTuple>,
    pub int_layout: IntLayout,
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
        let date_type = datetime.getattr("date")?.cast_into::<PyType>()?;
        let uuid_type = uuid.getattr("UUID")?.cast_into::<PyType>()?;
        let object_new = py.get_type::<PyAny>().getattr("__new__")?;
        Ok(Builtins {
            uuid_uses_object_new: uuid_type.getattr("__new__")?.is(&object_new),
            uuid_slots: cpython::uuid_slots(&uuid_type),
            dict_presized: cpython::dict_presized(py),
            uuid_type: uuid_type.unbind(),
            decimal_type: py
                .import("decimal")?
                .getattr("Decimal")?
                .cast_into::<PyType>()?
                .unbind(),
            safe_uuid_unknown: uuid.getattr("SafeUUID")?.getattr("unknown")?.unbind(),
            fromisoformat: datetime_type.getattr("fromisoformat")?.unbind(),
            datetime_type: datetime_type.unbind(),
            date_fromisoformat: date_type.getattr("fromisoformat")?.unbind(),
            date_type: date_type.unbind(),
            bytes_type: py.get_type::<pyo3::types::PyBytes>().unbind(),
            enum_type: py
                .import("enum")?
                .getattr("Enum")?
                .cast_into::<PyType>()?
                .unbind(),
            empty_tuple: PyTuple::empty(py).unbind(),
            int_layout: cpython::int_layout(py)?,
        })
    })
}

/// The types stored natively under their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    Uuid,
    Decimal,
    DateTime,
    Date,
    Bytes,
}

impl Native {
    pub const ALL: [Native; 5] = [
        Native::Uuid,
        Native::Decimal,
        Native::DateTime,
        Native::Date,
        Native::Bytes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Native::Uuid => "uuid_hex",
            Native::Decimal => "decimal_str",
            Native::DateTime => "datetime_iso",
            Native::Date => "date_iso",
            Native::Bytes => "bytes_base64",
        }
    }

    #[inline]
    pub fn from_name(name: &[u8]) -> Option<Native> {
        match name {
            b"uuid_hex" => Some(Native::Uuid),
            b"decimal_str" => Some(Native::Decimal),
            b"datetime_iso" => Some(Native::DateTime),
            b"date_iso" => Some(Native::Date),
            b"bytes_base64" => Some(Native::Bytes),
            _ => None,
        }
    }

    fn python_type(self, builtins: &Builtins) -> &Py<PyType> {
        match self {
            Native::Uuid => &builtins.uuid_type,
            Native::Decimal => &builtins.decimal_type,
            Native::DateTime => &builtins.datetime_type,
            Native::Date => &builtins.date_type,
            Native::Bytes => &builtins.bytes_type,
        }
    }

    /// For eventsourcing's own types, any transcoding with the right name
    /// and type is taken to be eventsourcing's (or esox's); for the types
    /// eventsourcing lacks, only esox's own transcoding class is.
    fn esox_class(self, py: Python<'_>) -> PyResult<Option<&'static Py<PyType>>> {
        Ok(match self {
            Native::Date => Some(&bindings(py)?.date_as_iso),
            Native::Bytes => Some(&bindings(py)?.bytes_as_base64),
            _ => None,
        })
    }
}

/// The kinds of value stored generically by topic, under a fixed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generic {
    Enum,
    Dataclass,
}

impl Generic {
    pub fn name(self) -> &'static str {
        match self {
            Generic::Enum => "enum",
            Generic::Dataclass => "dataclass",
        }
    }

    #[inline]
    pub fn from_name(name: &[u8]) -> Option<Generic> {
        match name {
            b"enum" => Some(Generic::Enum),
            b"dataclass" => Some(Generic::Dataclass),
            _ => None,
        }
    }

    fn esox_class(self, py: Python<'_>) -> PyResult<&'static Py<PyType>> {
        let bound = bindings(py)?;
        Ok(match self {
            Generic::Enum => &bound.enum_as_topic_value,
            Generic::Dataclass => &bound.dataclass_as_topic_fields,
        })
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

const NATIVES: usize = Native::ALL.len();

/// A transcoder's `types` and `names` registries, read once per batch.
pub struct Registry<'py> {
    transcoder: Bound<'py, PyAny>,
    types: Option<Bound<'py, PyDict>>,
    names: Option<Bound<'py, PyDict>>,
    by_type: [Option<Handling<'py>>; NATIVES],
    by_name: [Option<Handling<'py>>; NATIVES],
    generic: [Option<Handling<'py>>; 2],
}

impl<'py> Registry<'py> {
    pub fn new(transcoder: &Bound<'py, PyAny>) -> Self {
        Registry {
            transcoder: transcoder.clone(),
            types: None,
            names: None,
            by_type: Default::default(),
            by_name: Default::default(),
            generic: Default::default(),
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
    /// registered for that type is the built-in one.
    pub fn encoding(&mut self, native: Native, builtins: &Builtins) -> PyResult<Handling<'py>> {
        if let Some(handling) = &self.by_type[native as usize] {
            return Ok(handling.clone());
        }
        let py = self.transcoder.py();
        let key = native.python_type(builtins).bind(py);
        let handling = match self.types()?.get_item(key)? {
            None => Handling::Missing,
            Some(transcoding) => {
                let is_builtin = match native.esox_class(py)? {
                    Some(class) => transcoding.get_type().is(class.bind(py)),
                    None => {
                        let name = transcoding.getattr(pyo3::intern!(py, "name"))?;
                        name.cast::<PyString>().is_ok_and(|n| n == native.name())
                    }
                };
                if is_builtin {
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
    /// transcoding registered under that name is the built-in one.
    pub fn decoding(&mut self, native: Native, builtins: &Builtins) -> PyResult<Handling<'py>> {
        if let Some(handling) = &self.by_name[native as usize] {
            return Ok(handling.clone());
        }
        let py = self.transcoder.py();
        let handling = match self.names()?.get_item(native.name())? {
            None => Handling::Missing,
            Some(transcoding) => {
                let is_builtin = match native.esox_class(py)? {
                    Some(class) => transcoding.get_type().is(class.bind(py)),
                    None => {
                        let registered = transcoding.getattr(pyo3::intern!(py, "type"))?;
                        registered.is(native.python_type(builtins).bind(py))
                    }
                };
                if is_builtin {
                    Handling::Native
                } else {
                    Handling::Transcoding(transcoding)
                }
            }
        };
        self.by_name[native as usize] = Some(handling.clone());
        Ok(handling)
    }

    /// How enum members or frozen dataclasses are stored (and read): by the
    /// transcoding registered under the generic name, natively if it is
    /// esox's own.
    pub fn generic(&mut self, generic: Generic) -> PyResult<Handling<'py>> {
        if let Some(handling) = &self.generic[generic as usize] {
            return Ok(handling.clone());
        }
        let py = self.transcoder.py();
        let handling = match self.names()?.get_item(generic.name())? {
            None => Handling::Missing,
            Some(transcoding) if transcoding.get_type().is(generic.esox_class(py)?.bind(py)) => {
                Handling::Native
            }
            Some(transcoding) => Handling::Transcoding(transcoding),
        };
        self.generic[generic as usize] = Some(handling.clone());
        Ok(handling)
    }
}

/// True if the transcoder can be driven natively: it has `types` and
/// `names`, like eventsourcing's and esox's `JSONTranscoder`, and its class
/// does not override their `encode`, `decode` (or eventsourcing's
/// `_encode_obj`, `_decode_obj`): an override is honoured by calling the
/// transcoder's methods, never silently bypassed.
pub fn is_native_transcoder(transcoder: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = transcoder.py();
    if !(transcoder.hasattr(pyo3::intern!(py, "types"))?
        && transcoder.hasattr(pyo3::intern!(py, "names"))?)
    {
        return Ok(false);
    }
    let mro = transcoder.get_type().mro();
    for method in ["encode", "decode", "_encode_obj", "_decode_obj"] {
        for base in mro.iter() {
            let base = base.cast_into::<pyo3::types::PyType>()?;
            if base.getattr("__dict__")?.contains(method)? {
                let module = base.module()?;
                let ours = base.qualname()? == "JSONTranscoder"
                    && (module == "esox.persistence"
                        || module == "esox.persistence.transcoding"
                        || module == "eventsourcing.persistence");
                if !ours {
                    return Ok(false);
                }
                break;
            }
        }
    }
    Ok(true)
}
