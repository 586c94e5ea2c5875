//! Walks Python objects and writes their JSON straight into a byte buffer.
//!
//! Types are dispatched on the exact type pointer first (str, int, float,
//! bool, None, dict, list, tuple, then UUID, Decimal, datetime); only other
//! types touch the transcoder's registry. Subclasses of the JSON types that
//! have no registered transcoding are written as the `json` module writes
//! them, so output stays byte-identical to eventsourcing's.

mod tagged;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::error::{bad_text, key_step, mutated, too_deep, EncodeError, Problem, Step};
use super::text::{write_float, write_json_str};
use super::{builtins, Builtins, Handling, Native, Registry, MAX_DEPTH};
use crate::cpython::{compact_int, dict_version};

type Result<T> = std::result::Result<T, EncodeError>;

/// Writes JSON for one batch; reuse it for every value in the batch.
pub struct Encoder<'py> {
    py: Python<'py>,
    pub buf: Vec<u8>,
    builtins: &'static Builtins,
    registry: Registry<'py>,
}

/// The UTF-8 text of a str (any str subclass too), borrowed from the object.
///
/// # Safety
/// `obj` must be a live str; the slice lives as long as the object.
unsafe fn str_bytes<'a>(py: Python<'_>, obj: *mut ffi::PyObject) -> PyResult<&'a [u8]> {
    if ffi::PyUnicode_IS_COMPACT_ASCII(obj) != 0 {
        let len = ffi::PyUnicode_GET_LENGTH(obj) as usize;
        return Ok(std::slice::from_raw_parts(
            ffi::PyUnicode_DATA(obj) as *const u8,
            len,
        ));
    }
    let mut len: ffi::Py_ssize_t = 0;
    let data = ffi::PyUnicode_AsUTF8AndSize(obj, &mut len);
    if data.is_null() {
        return Err(PyErr::fetch(py));
    }
    Ok(std::slice::from_raw_parts(data as *const u8, len as usize))
}

/// True for the JSON scalar types, which are written without calling Python.
#[inline(always)]
unsafe fn is_leaf(obj: *mut ffi::PyObject, ty: *mut ffi::PyTypeObject) -> bool {
    ty == &raw mut ffi::PyUnicode_Type
        || ty == &raw mut ffi::PyLong_Type
        || ty == &raw mut ffi::PyFloat_Type
        || ty == &raw mut ffi::PyBool_Type
        || obj == ffi::Py_None()
}

/// True if `key` is the str `name` (compared by pointer, then by text).
///
/// # Safety
/// `key` must be a live object.
pub unsafe fn key_is(key: *mut ffi::PyObject, interned: &Bound<'_, PyString>, name: &str) -> bool {
    if key == interned.as_ptr() {
        return true;
    }
    ffi::PyUnicode_CheckExact(key) != 0
        && ffi::PyUnicode_IS_COMPACT_ASCII(key) != 0
        && ffi::PyUnicode_GET_LENGTH(key) as usize == name.len()
        && str_bytes(interned.py(), key).is_ok_and(|b| b == name.as_bytes())
}

impl<'py> Encoder<'py> {
    pub fn new(transcoder: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = transcoder.py();
        Ok(Encoder {
            py,
            buf: Vec::with_capacity(256),
            builtins: builtins(py)?,
            registry: Registry::new(transcoder),
        })
    }

    /// Appends the JSON of `obj` to the buffer.
    pub fn encode(&mut self, obj: &Bound<'py, PyAny>) -> Result<()> {
        self.value(obj.as_ptr(), 0)
    }

    /// Appends an event's state: the items of its `__dict__` except those
    /// keyed `skip`, in order, then `"class_version": N` if N > 1 (in place,
    /// if the dict already has that key).
    pub fn encode_state(
        &mut self,
        dict: &Bound<'py, PyDict>,
        skip: [(&Bound<'py, PyString>, &str); 2],
        class_version: i64,
    ) -> Result<()> {
        let py = self.py;
        let class_version_key = pyo3::intern!(py, "class_version");
        let mut version_written = class_version <= 1;
        self.buf.push(b'{');
        let mut first = true;
        let mut pos: ffi::Py_ssize_t = 0;
        let mut key_ptr = std::ptr::null_mut();
        let mut value_ptr = std::ptr::null_mut();
        // SAFETY: the dict is alive; see `item` for the keys and values.
        unsafe {
            let version = dict_version(dict.as_ptr());
            while ffi::PyDict_Next(dict.as_ptr(), &mut pos, &mut key_ptr, &mut value_ptr) != 0 {
                if skip
                    .iter()
                    .any(|(interned, name)| key_is(key_ptr, interned, name))
                {
                    continue;
                }
                if !first {
                    self.buf.push(b',');
                }
                first = false;
                if !version_written && key_is(key_ptr, class_version_key, "class_version") {
                    self.buf.extend_from_slice(b"\"class_version\":");
                    self.buf
                        .extend_from_slice(itoa::Buffer::new().format(class_version).as_bytes());
                    version_written = true;
                    continue;
                }
                self.item(key_ptr, value_ptr, 1)?;
                if dict_version(dict.as_ptr()) != version {
                    return Err(mutated());
                }
            }
        }
        if !version_written {
            if !first {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(b"\"class_version\":");
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(class_version).as_bytes());
        }
        self.buf.push(b'}');
        Ok(())
    }

    /// The JSON types are dispatched inline; the rest out of line.
    #[inline(always)]
    fn value(&mut self, obj: *mut ffi::PyObject, depth: usize) -> Result<()> {
        // SAFETY: `obj` is kept alive by the caller for the whole call.
        unsafe {
            let ty = ffi::Py_TYPE(obj);
            if ty == &raw mut ffi::PyUnicode_Type {
                self.str(obj)
            } else if ty == &raw mut ffi::PyLong_Type {
                self.int(obj)
            } else if ty == &raw mut ffi::PyFloat_Type {
                write_float(&mut self.buf, ffi::PyFloat_AS_DOUBLE(obj));
                Ok(())
            } else if ty == &raw mut ffi::PyBool_Type {
                if obj == ffi::Py_True() {
                    self.buf.extend_from_slice(b"true");
                } else {
                    self.buf.extend_from_slice(b"false");
                }
                Ok(())
            } else if obj == ffi::Py_None() {
                self.buf.extend_from_slice(b"null");
                Ok(())
            } else {
                self.compound(obj, ty, depth)
            }
        }
    }

    /// Containers and other types. Callers may pass borrowed references:
    /// this holds its own while Python code (a transcoding) may run.
    #[inline(never)]
    unsafe fn compound(
        &mut self,
        obj: *mut ffi::PyObject,
        ty: *mut ffi::PyTypeObject,
        depth: usize,
    ) -> Result<()> {
        let _hold = Bound::from_borrowed_ptr(self.py, obj);
        if ty == &raw mut ffi::PyDict_Type {
            self.dict(obj, depth)
        } else if ty == &raw mut ffi::PyList_Type {
            self.list(obj, depth)
        } else if ty == &raw mut ffi::PyTuple_Type {
            self.tuple(obj, depth)
        } else {
            self.other(obj, ty, depth)
        }
    }

    #[inline(always)]
    unsafe fn str(&mut self, obj: *mut ffi::PyObject) -> Result<()> {
        if ffi::PyUnicode_IS_COMPACT_ASCII(obj) != 0 {
            let len = ffi::PyUnicode_GET_LENGTH(obj) as usize;
            let data = std::slice::from_raw_parts(ffi::PyUnicode_DATA(obj) as *const u8, len);
            write_json_str(&mut self.buf, data);
            Ok(())
        } else {
            self.str_utf8(obj)
        }
    }

    #[inline(never)]
    unsafe fn str_utf8(&mut self, obj: *mut ffi::PyObject) -> Result<()> {
        let bytes = str_bytes(self.py, obj).map_err(|e| bad_text(self.py, e))?;
        write_json_str(&mut self.buf, bytes);
        Ok(())
    }

    #[inline(always)]
    unsafe fn int(&mut self, obj: *mut ffi::PyObject) -> Result<()> {
        match compact_int(obj, self.builtins.int_layout) {
            Some(value) => {
                self.buf
                    .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
                Ok(())
            }
            None => self.any_int(obj),
        }
    }

    /// An int as `int.__repr__` writes it (also for int subclasses, as json does).
    #[inline(never)]
    unsafe fn any_int(&mut self, obj: *mut ffi::PyObject) -> Result<()> {
        let mut overflow = 0;
        let value = ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
        if overflow == 0 {
            if value == -1 && !ffi::PyErr_Occurred().is_null() {
                return Err(PyErr::fetch(self.py).into());
            }
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
            return Ok(());
        }
        if overflow > 0 {
            let value = ffi::PyLong_AsUnsignedLongLong(obj);
            if ffi::PyErr_Occurred().is_null() {
                self.buf
                    .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
                return Ok(());
            }
            ffi::PyErr_Clear();
        }
        let repr = match ffi::PyLong_Type.tp_repr {
            Some(repr) => Bound::from_owned_ptr_or_err(self.py, repr(obj))?,
            None => Bound::from_owned_ptr_or_err(self.py, ffi::PyObject_Str(obj))?,
        };
        self.buf
            .extend_from_slice(str_bytes(self.py, repr.as_ptr())?);
        Ok(())
    }

    #[inline(always)]
    unsafe fn key(&mut self, key: *mut ffi::PyObject) -> Result<()> {
        if ffi::Py_TYPE(key) == &raw mut ffi::PyUnicode_Type {
            self.str(key)
        } else {
            self.other_key(key)
        }
    }

    /// Keys that are not exactly str, converted as json converts them.
    #[inline(never)]
    unsafe fn other_key(&mut self, key: *mut ffi::PyObject) -> Result<()> {
        if ffi::PyUnicode_Check(key) != 0 {
            return self.str(key);
        }
        let start = self.buf.len();
        self.buf.push(b'"');
        if ffi::PyFloat_Check(key) != 0 {
            write_float(&mut self.buf, ffi::PyFloat_AS_DOUBLE(key));
        } else if key == ffi::Py_True() {
            self.buf.extend_from_slice(b"true");
        } else if key == ffi::Py_False() {
            self.buf.extend_from_slice(b"false");
        } else if key == ffi::Py_None() {
            self.buf.extend_from_slice(b"null");
        } else if ffi::PyLong_Check(key) != 0 {
            self.any_int(key)?;
        } else {
            self.buf.truncate(start);
            let type_name = Bound::from_borrowed_ptr(self.py, key)
                .get_type()
                .name()?
                .to_string();
            return Err(Problem::BadKey {
                type_name,
                path: Vec::new(),
            }
            .into());
        }
        self.buf.push(b'"');
        Ok(())
    }

    unsafe fn dict(&mut self, obj: *mut ffi::PyObject, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        self.buf.push(b'{');
        let mut pos: ffi::Py_ssize_t = 0;
        let mut key_ptr = std::ptr::null_mut();
        let mut value_ptr = std::ptr::null_mut();
        let mut first = true;
        let version = dict_version(obj);
        while ffi::PyDict_Next(obj, &mut pos, &mut key_ptr, &mut value_ptr) != 0 {
            if !first {
                self.buf.push(b',');
            }
            first = false;
            self.item(key_ptr, value_ptr, depth + 1)?;
            if dict_version(obj) != version {
                return Err(mutated());
            }
        }
        self.buf.push(b'}');
        Ok(())
    }

    /// `"key":value`, from borrowed references. A leaf value runs no Python
    /// code, so nothing can free the key; otherwise the key is held, for the
    /// error path, in case a transcoding mutates the dict.
    #[inline(always)]
    unsafe fn item(
        &mut self,
        key: *mut ffi::PyObject,
        value: *mut ffi::PyObject,
        depth: usize,
    ) -> Result<()> {
        let py = self.py;
        self.key(key)
            .map_err(|e| e.at(|| key_step(&Bound::from_borrowed_ptr(py, key))))?;
        self.buf.push(b':');
        let ty = ffi::Py_TYPE(value);
        if is_leaf(value, ty) {
            self.value(value, depth)
                .map_err(|e| e.at(|| key_step(&Bound::from_borrowed_ptr(py, key))))
        } else {
            let key = Bound::from_borrowed_ptr(py, key);
            self.compound(value, ty, depth)
                .map_err(|e| e.at(|| key_step(&key)))
        }
    }

    /// The items of a dict subclass, via `items()` as json does.
    unsafe fn dict_items(&mut self, obj: *mut ffi::PyObject, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let items = Bound::from_owned_ptr_or_err(self.py, ffi::PyMapping_Items(obj))?;
        self.buf.push(b'{');
        for (i, item) in items.try_iter()?.enumerate() {
            let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item?.extract()?;
            if i > 0 {
                self.buf.push(b',');
            }
            self.key(key.as_ptr())
                .map_err(|e| e.at(|| key_step(&key)))?;
            self.buf.push(b':');
            self.value(value.as_ptr(), depth + 1)
                .map_err(|e| e.at(|| key_step(&key)))?;
        }
        self.buf.push(b'}');
        Ok(())
    }

    unsafe fn list(&mut self, obj: *mut ffi::PyObject, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        self.buf.push(b'[');
        let mut i = 0;
        // The length is re-read each time: a transcoding may change the list.
        // Items are borrowed: `value` runs no Python code before `compound`
        // takes its own reference.
        while i < ffi::PyList_GET_SIZE(obj) {
            if i > 0 {
                self.buf.push(b',');
            }
            let item = ffi::PyList_GET_ITEM(obj, i);
            self.value(item, depth + 1)
                .map_err(|e| e.at(|| Step::Index(i as usize)))?;
            i += 1;
        }
        self.buf.push(b']');
        Ok(())
    }

    unsafe fn tuple(&mut self, obj: *mut ffi::PyObject, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        self.buf.push(b'[');
        for i in 0..ffi::PyTuple_GET_SIZE(obj) {
            if i > 0 {
                self.buf.push(b',');
            }
            // A tuple is immutable and owns its items: borrowing is safe.
            let item = ffi::PyTuple_GET_ITEM(obj, i);
            self.value(item, depth + 1)
                .map_err(|e| e.at(|| Step::Index(i as usize)))?;
        }
        self.buf.push(b']');
        Ok(())
    }

    /// Anything that is not exactly a JSON type.
    unsafe fn other(
        &mut self,
        obj: *mut ffi::PyObject,
        ty: *mut ffi::PyTypeObject,
        depth: usize,
    ) -> Result<()> {
        let py = self.py;
        let builtins = self.builtins;
        let ty_obj = ty as *mut ffi::PyObject;
        let native = if ty_obj == builtins.uuid_type.as_ptr() {
            Some(Native::Uuid)
        } else if ty_obj == builtins.datetime_type.as_ptr() {
            Some(Native::DateTime)
        } else if ty_obj == builtins.decimal_type.as_ptr() {
            Some(Native::Decimal)
        } else if ty_obj == builtins.date_type.as_ptr() {
            Some(Native::Date)
        } else if ty == &raw mut ffi::PyBytes_Type {
            Some(Native::Bytes)
        } else {
            None
        };
        let obj = Bound::from_borrowed_ptr(py, obj);
        let transcoding = match native {
            Some(native) => match self.registry.encoding(native, builtins)? {
                Handling::Native => return self.native(native, &obj),
                Handling::Transcoding(t) => Some(t),
                Handling::Missing => None,
            },
            None => self.registry.types()?.get_item(obj.get_type())?,
        };
        if let Some(transcoding) = transcoding {
            return self.transcoded(&transcoding, &obj, depth);
        }
        // Like json: subclasses of the JSON types are written as their base.
        let ptr = obj.as_ptr();
        if ffi::PyUnicode_Check(ptr) != 0 {
            return self.str(ptr);
        } else if ffi::PyLong_Check(ptr) != 0 {
            return self.any_int(ptr);
        } else if ffi::PyFloat_Check(ptr) != 0 {
            write_float(&mut self.buf, ffi::PyFloat_AS_DOUBLE(ptr));
            return Ok(());
        } else if ffi::PyList_Check(ptr) != 0 {
            return self.list(ptr, depth);
        } else if ffi::PyTuple_Check(ptr) != 0 {
            return self.tuple(ptr, depth);
        } else if ffi::PyDict_Check(ptr) != 0 {
            return self.dict_items(ptr, depth);
        }
        self.by_topic(&obj, depth)
    }
}
