//! Encoding of tagged values, `{"_type_": name, "_data_": data}`: the
//! native types (UUID, Decimal, datetime, date, bytes) written in Rust while
//! their built-in transcoding is registered, enum members and frozen
//! dataclasses by their class's topic, and any other registered
//! transcoding's `encode` result, walked like any value.

use base64::Engine as _;
use pyo3::ffi;
use pyo3::prelude::*;

use super::{Encoder, Result};
use crate::codec::error::{too_deep, Problem, Step};
use crate::codec::generic::{type_facts, TypeFacts, TypeKind};
use crate::codec::native::BASE64;
use crate::codec::text::{write_iso_date, write_iso_datetime, write_uuid_hex, DateTimeFields};
use crate::codec::{Generic, Handling, Native, MAX_DEPTH};

impl<'py> Encoder<'py> {
    /// Enum members and frozen dataclasses, stored by their class's topic.
    pub(super) fn by_topic(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<()> {
        let cls = obj.get_type();
        let facts = type_facts(&cls, self.builtins)?;
        let (generic, hint) = match facts.kind {
            TypeKind::Enum => (Some(Generic::Enum), ""),
            TypeKind::Dataclass(_) => (Some(Generic::Dataclass), ""),
            TypeKind::MutableDataclass => (None, " (or make the dataclass frozen)"),
            TypeKind::Other => (None, ""),
        };
        if let Some(generic) = generic {
            match self.registry.generic(generic)? {
                Handling::Native => return self.native_generic(obj, &facts, depth),
                Handling::Transcoding(t) => return self.transcoded(&t, obj, depth),
                Handling::Missing => {}
            }
        }
        Err(Problem::Unserializable {
            type_repr: cls.repr()?.to_string(),
            hint,
            path: Vec::new(),
        }
        .into())
    }

    /// `{"_type_":"enum","_data_":{"topic":T,"value":V}}` or
    /// `{"_type_":"dataclass","_data_":{"topic":T,"fields":{...}}}`.
    fn native_generic(
        &mut self,
        obj: &Bound<'py, PyAny>,
        facts: &TypeFacts,
        depth: usize,
    ) -> Result<()> {
        if depth + 3 >= MAX_DEPTH {
            return Err(too_deep());
        }
        let py = self.py;
        let Some(topic) = &facts.topic else {
            return Err(pyo3::exceptions::PyTypeError::new_err("no topic").into());
        };
        let name = match facts.kind {
            TypeKind::Enum => Generic::Enum.name(),
            _ => Generic::Dataclass.name(),
        };
        self.buf.extend_from_slice(b"{\"_type_\":\"");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\",\"_data_\":{\"topic\":");
        // SAFETY: the topic is a live str.
        unsafe { self.str(topic.as_ptr())? };
        match &facts.kind {
            TypeKind::Enum => {
                self.buf.extend_from_slice(b",\"value\":");
                let value = obj.getattr(pyo3::intern!(py, "_value_"))?;
                self.value(value.as_ptr(), depth + 2)
                    .map_err(|e| e.at(|| Step::Key("value".to_owned())))?;
            }
            TypeKind::Dataclass(fields) => {
                self.buf.extend_from_slice(b",\"fields\":{");
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    let field = field.bind(py);
                    // SAFETY: the field name is a live str.
                    unsafe { self.str(field.as_ptr())? };
                    self.buf.push(b':');
                    let value = obj.getattr(field)?;
                    self.value(value.as_ptr(), depth + 3)
                        .map_err(|e| e.at(|| Step::Key(field.to_string())))?;
                }
                self.buf.push(b'}');
            }
            _ => {}
        }
        self.buf.extend_from_slice(b"}}");
        Ok(())
    }

    /// `{"_type_": transcoding.name, "_data_": <transcoding.encode(obj)>}`,
    /// the data itself walked like any value.
    pub(super) fn transcoded(
        &mut self,
        transcoding: &Bound<'py, PyAny>,
        obj: &Bound<'py, PyAny>,
        depth: usize,
    ) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let py = self.py;
        let name = transcoding.getattr(pyo3::intern!(py, "name"))?;
        let data = transcoding.call_method1(pyo3::intern!(py, "encode"), (obj,))?;
        self.buf.extend_from_slice(b"{\"_type_\":");
        self.value(name.as_ptr(), depth + 1)?;
        self.buf.extend_from_slice(b",\"_data_\":");
        self.value(data.as_ptr(), depth + 1)?;
        self.buf.push(b'}');
        Ok(())
    }

    pub(super) fn native(&mut self, native: Native, obj: &Bound<'py, PyAny>) -> Result<()> {
        let py = self.py;
        self.buf.extend_from_slice(b"{\"_type_\":\"");
        self.buf.extend_from_slice(native.name().as_bytes());
        self.buf.extend_from_slice(b"\",\"_data_\":");
        match native {
            Native::Uuid => {
                let value: u128 = obj.getattr(pyo3::intern!(py, "int"))?.extract()?;
                self.buf.push(b'"');
                write_uuid_hex(&mut self.buf, value);
                self.buf.push(b'"');
            }
            Native::Decimal => {
                let text = obj.str()?;
                // SAFETY: `text` is a live str.
                unsafe { self.str(text.as_ptr())? };
            }
            Native::DateTime => self.datetime(obj)?,
            Native::Date => {
                let ptr = obj.as_ptr();
                self.buf.push(b'"');
                // SAFETY: `obj` is exactly a date and the datetime C API is loaded.
                unsafe {
                    write_iso_date(
                        &mut self.buf,
                        ffi::PyDateTime_GET_YEAR(ptr),
                        ffi::PyDateTime_GET_MONTH(ptr) as u8,
                        ffi::PyDateTime_GET_DAY(ptr) as u8,
                    );
                }
                self.buf.push(b'"');
            }
            Native::Bytes => {
                let bytes = obj.cast::<pyo3::types::PyBytes>().map_err(PyErr::from)?;
                let data = bytes.as_bytes();
                let start = self.buf.len();
                self.buf.push(b'"');
                self.buf.resize(start + 1 + data.len().div_ceil(3) * 4, 0);
                let written = BASE64
                    .encode_slice(data, &mut self.buf[start + 1..])
                    .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
                self.buf.truncate(start + 1 + written);
                self.buf.push(b'"');
            }
        }
        self.buf.push(b'}');
        Ok(())
    }

    /// `datetime.isoformat()`, computed here when naive or in UTC.
    fn datetime(&mut self, obj: &Bound<'py, PyAny>) -> Result<()> {
        let ptr = obj.as_ptr();
        // SAFETY: `obj` is exactly a datetime and the datetime C API is loaded.
        unsafe {
            let tzinfo = ffi::PyDateTime_DATE_GET_TZINFO(ptr);
            let offset = if tzinfo == ffi::Py_None() {
                None
            } else if tzinfo == ffi::PyDateTime_TimeZone_UTC() {
                Some(0)
            } else {
                let text = obj.call_method0(pyo3::intern!(self.py, "isoformat"))?;
                return self.value(text.as_ptr(), 0);
            };
            let fields = DateTimeFields {
                year: ffi::PyDateTime_GET_YEAR(ptr),
                month: ffi::PyDateTime_GET_MONTH(ptr) as u8,
                day: ffi::PyDateTime_GET_DAY(ptr) as u8,
                hour: ffi::PyDateTime_DATE_GET_HOUR(ptr) as u8,
                minute: ffi::PyDateTime_DATE_GET_MINUTE(ptr) as u8,
                second: ffi::PyDateTime_DATE_GET_SECOND(ptr) as u8,
                microsecond: ffi::PyDateTime_DATE_GET_MICROSECOND(ptr) as u32,
                offset,
            };
            self.buf.push(b'"');
            write_iso_datetime(&mut self.buf, &fields);
            self.buf.push(b'"');
        }
        Ok(())
    }
}
