//! Every use of CPython's internals, in one place: object layouts and
//! functions outside the stable API that make the hot paths fast. Each is
//! chosen at compile time for the Python version built for (pyo3's
//! `Py_3_x` cfgs, set by build.rs), checked at run time where it can be,
//! and has a safe fallback that uses the public C API only.
//!
//! | internal                              | versions          | fallback                     |
//! |---------------------------------------|-------------------|------------------------------|
//! | int digits (`ob_size` / `lv_tag`)     | 3.11 / 3.12–3.14  | `PyLong_AsLongLong`          |
//! | dict `ma_version_tag`                 | up to 3.13        | the dict's length            |
//! | UUID slot offsets (member descriptors)| any               | `PyObject_GenericSetAttr`    |
//! | `_PyDict_NewPresized` (via ctypes)    | while exported    | `PyDict_New`                 |
//! | `_PyType_Lookup` (via ctypes)         | while exported    | the MRO's `__dict__`s        |
//! | `tp_version_tag`                      | any               | 0: nothing cached            |
//! | `tp_alloc`, `tp_getattro`, ... slots  | any (not abi3)    | `PyType_GenericAlloc`        |
//!
//! None of this is possible under the limited API (abi3): see docs. The
//! `public-api` cargo feature makes each internal above that has a fallback
//! take it, to measure what the limited API would cost and to test the
//! fallbacks (`make bench-public-api`).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

// ---------------------------------------------------------------- ints --

/// How this interpreter lays out small ints, so the encoder can read them
/// without a call (as orjson does). `Unknown` always uses the C API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntLayout {
    /// Up to 3.11: `ob_size` is the signed digit count.
    #[cfg_attr(Py_3_12, allow(dead_code))]
    SignedSize,
    /// 3.12 to 3.14: `lv_tag` holds the digit count and the sign.
    #[cfg_attr(not(Py_3_12), allow(dead_code))]
    Tagged,
    Unknown,
}

/// The layout compiled for, if this interpreter's digits are the expected
/// 30 bits in 4 bytes and its version is the one compiled for.
pub fn int_layout(py: Python<'_>) -> PyResult<IntLayout> {
    if cfg!(feature = "public-api") {
        return Ok(IntLayout::Unknown);
    }
    let info = py.import("sys")?.getattr("int_info")?;
    let bits: u32 = info.getattr("bits_per_digit")?.extract()?;
    let size: u32 = info.getattr("sizeof_digit")?.extract()?;
    if (bits, size) != (30, 4) {
        return Ok(IntLayout::Unknown);
    }
    let version = py.version_info();
    Ok(match (version.major, version.minor) {
        #[cfg(not(Py_3_12))]
        (3, 11) => IntLayout::SignedSize,
        #[cfg(all(Py_3_12, not(Py_3_15)))]
        (3, 12..=14) => IntLayout::Tagged,
        _ => IntLayout::Unknown,
    })
}

/// The value of an exact int of at most two digits (one if tagged), read
/// from the object; None to use the C API.
///
/// # Safety
/// `obj` must be an exact int and `layout` what `int_layout` returned.
#[inline(always)]
pub unsafe fn compact_int(obj: *mut ffi::PyObject, layout: IntLayout) -> Option<i64> {
    let header = (*(obj as *mut ffi::PyVarObject)).ob_size;
    let digits = (obj as *const u8).add(std::mem::size_of::<ffi::PyVarObject>()) as *const u32;
    match layout {
        IntLayout::SignedSize => match header {
            0 => Some(0),
            1 => Some(i64::from(*digits)),
            -1 => Some(-i64::from(*digits)),
            2 | -2 => {
                let value = i64::from(*digits) | i64::from(*digits.add(1)) << 30;
                Some(if header < 0 { -value } else { value })
            }
            _ => None,
        },
        IntLayout::Tagged => {
            let tag = header as usize;
            // Compact (at most one digit); tag & 3 is 0 for +, 1 for 0, 2 for -.
            (tag < 2 << 3).then(|| (1 - (tag & 3) as i64) * i64::from(*digits))
        }
        IntLayout::Unknown => None,
    }
}

// --------------------------------------------------------------- dicts --

/// A value that changes whenever the dict changes, so comparing it after
/// each item (which may have run Python code) catches a change made during
/// iteration: the version tag where CPython keeps one, else the length
/// (which catches insertions and deletions, not replacements).
///
/// # Safety
/// `obj` must be a live dict (or subclass).
#[inline(always)]
#[allow(deprecated)]
pub unsafe fn dict_version(obj: *mut ffi::PyObject) -> u64 {
    #[cfg(not(Py_3_14))]
    {
        (*(obj as *mut ffi::PyDictObject)).ma_version_tag
    }
    #[cfg(Py_3_14)]
    {
        ffi::PyDict_Size(obj) as u64
    }
}

/// A new dict function that sizes the table for `n` items.
pub type NewPresized = unsafe extern "C" fn(ffi::Py_ssize_t) -> *mut ffi::PyObject;

/// `_PyDict_NewPresized`, found at run time (through ctypes) so that a
/// build still loads on an interpreter that stops exporting it.
pub fn dict_presized(py: Python<'_>) -> Option<NewPresized> {
    let address = exported(py, "_PyDict_NewPresized")?;
    // SAFETY: the address is that of CPython's exported function of this
    // signature: `PyObject *_PyDict_NewPresized(Py_ssize_t)`.
    Some(unsafe { std::mem::transmute::<usize, NewPresized>(address) })
}

/// The address of a function that libpython exports, if it does.
fn exported(py: Python<'_>, name: &str) -> Option<usize> {
    if cfg!(feature = "public-api") {
        return None;
    }
    let address = (|| -> PyResult<usize> {
        let ctypes = py.import("ctypes")?;
        let function = ctypes.getattr("pythonapi")?.getattr(name)?;
        ctypes
            .getattr("cast")?
            .call1((function, ctypes.getattr("c_void_p")?))?
            .getattr("value")?
            .extract()
    })()
    .ok()?;
    (address != 0).then_some(address)
}

// --------------------------------------------------------------- types --

type TypeLookup =
    unsafe extern "C" fn(*mut ffi::PyTypeObject, *mut ffi::PyObject) -> *mut ffi::PyObject;

static TYPE_LOOKUP: pyo3::sync::PyOnceLock<Option<TypeLookup>> = pyo3::sync::PyOnceLock::new();

/// `name` as found along the MRO of `cls` (the raw class attribute, no
/// descriptor called): CPython's `_PyType_Lookup` (as attribute access
/// does it, with its method cache) while exported, else the same walk of
/// the MRO's `__dict__`s in Rust.
pub fn lookup<'py>(
    cls: &Bound<'py, PyType>,
    name: &Bound<'py, PyString>,
) -> Option<Bound<'py, PyAny>> {
    let py = cls.py();
    let found = TYPE_LOOKUP.get_or_init(py, || {
        // SAFETY: the exported function of this signature (every CPython
        // 3.x so far): `PyObject *_PyType_Lookup(PyTypeObject *, PyObject *)`.
        exported(py, "_PyType_Lookup")
            .map(|address| unsafe { std::mem::transmute::<usize, TypeLookup>(address) })
    });
    match found {
        // SAFETY: both pointers are alive; the result is borrowed from a
        // class's dict and becomes a strong reference straight away.
        Some(type_lookup) => unsafe {
            Bound::from_borrowed_ptr_or_opt(py, type_lookup(cls.as_type_ptr(), name.as_ptr()))
        },
        None => lookup_in_mro(cls, name),
    }
}

/// What `_PyType_Lookup` does, through the public API.
fn lookup_in_mro<'py>(
    cls: &Bound<'py, PyType>,
    name: &Bound<'py, PyString>,
) -> Option<Bound<'py, PyAny>> {
    let py = cls.py();
    let mro = cls.getattr(pyo3::intern!(py, "__mro__")).ok()?;
    for base in mro.try_iter().ok()? {
        let namespace = base.ok()?.getattr(pyo3::intern!(py, "__dict__")).ok()?;
        if let Ok(found) = namespace.get_item(name) {
            return Some(found);
        }
    }
    None
}

/// The type version tag of `cls`, which CPython changes whenever the class
/// or one of its bases is modified; 0 if it has none (nothing is cached).
pub fn version_tag(cls: &Bound<'_, PyType>) -> u32 {
    if cfg!(feature = "public-api") {
        return 0;
    }
    // SAFETY: reads a field of a live type object.
    unsafe { (*cls.as_type_ptr()).tp_version_tag }
}

/// Whether instances of `cls` get (and, if `setting`, set) attributes as
/// `object` does: its `tp_getattro` (and `tp_setattro`) are the generic ones.
pub fn generic_attribute_access(cls: &Bound<'_, PyType>, setting: bool) -> bool {
    let ty = cls.as_type_ptr();
    let get_generic = ffi::PyObject_GenericGetAttr as *const () as usize;
    let set_generic = ffi::PyObject_GenericSetAttr as *const () as usize;
    // SAFETY: `ty` is a live type object; its slots are read, not called.
    unsafe {
        (*ty).tp_getattro.map(|f| f as usize) == Some(get_generic)
            && (!setting || (*ty).tp_setattro.map(|f| f as usize) == Some(set_generic))
    }
}

/// Whether `attr` (a class attribute) is a data descriptor: its type sets.
pub fn is_data_descriptor(attr: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `attr` is alive; its type's slot is read, not called.
    unsafe { (*ffi::Py_TYPE(attr.as_ptr())).tp_descr_set.is_some() }
}

/// A new, empty instance of `ty`, allocated as `object.__new__` does
/// (`tp_alloc`, or the generic allocator).
///
/// # Safety
/// `ty` must be a live type whose instances `object.__new__` may create.
#[inline]
pub unsafe fn alloc(ty: *mut ffi::PyTypeObject) -> *mut ffi::PyObject {
    let alloc = (*ty).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
    alloc(ty, 0)
}

/// `object.__setattr__(obj, "__dict__", dict)`: directly, or on 3.13
/// through the type's `__dict__` descriptor, since CPython 3.13.0's
/// `PyObject_GenericSetDict` leaves an object with inline values whose
/// attributes are then not found (its `__dict__` shows them).
///
/// # Safety
/// `obj` must be alive and have a `__dict__`; `dict` must be a live dict.
#[inline]
pub unsafe fn set_instance_dict(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    dict: *mut ffi::PyObject,
) -> i32 {
    #[cfg(not(Py_3_13))]
    {
        let _ = py;
        ffi::PyObject_GenericSetDict(obj, dict, std::ptr::null_mut())
    }
    #[cfg(Py_3_13)]
    {
        let name = pyo3::intern!(py, "__dict__");
        ffi::PyObject_GenericSetAttr(obj, name.as_ptr(), dict)
    }
}

// ------------------------------------------------------------------ gc --

/// Takes `obj` off the cycle collector's list, if it is on it: for objects
/// that cannot be part of a cycle (they refer only to atomic values).
///
/// # Safety
/// `obj` must be alive and must not come to refer to a container.
#[inline]
pub unsafe fn untrack(obj: *mut ffi::PyObject) {
    // (IsTracked is 0 for an object of a non-GC type.)
    if ffi::PyObject_GC_IsTracked(obj) != 0 {
        ffi::PyObject_GC_UnTrack(obj.cast());
    }
}

// --------------------------------------------------------------- uuids --

/// The offsets of UUID's `int` and `is_safe` slots, if both are member
/// descriptors of plain object slots (as in every CPython so far).
pub fn uuid_slots(uuid_type: &Bound<'_, PyType>) -> Option<(isize, isize)> {
    if cfg!(feature = "public-api") {
        return None;
    }
    let slot = |name: &str| -> Option<isize> {
        let descr = uuid_type.getattr(name).ok()?;
        // SAFETY: the object is checked to be a member descriptor before its
        // struct is read; it stays alive (held by the type).
        unsafe {
            let ty = ffi::Py_TYPE(descr.as_ptr());
            if ty != &raw mut ffi::PyMemberDescr_Type {
                return None;
            }
            let member = (*(descr.as_ptr() as *mut ffi::PyMemberDescrObject)).d_member;
            // T_OBJECT_EX (16): a plain object reference, NULL until set.
            ((*member).type_code == 16 && (*member).flags == 0).then_some((*member).offset)
        }
    };
    Some((slot("int")?, slot("is_safe")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(feature = "public-api"))]
    fn the_int_layout_is_the_compiled_one_and_reads_small_ints() {
        Python::initialize();
        Python::attach(|py| {
            let layout = int_layout(py).unwrap();
            assert_ne!(layout, IntLayout::Unknown);
            for value in [0i64, 1, -1, 7, -7, (1 << 30) - 1, -(1 << 30) + 1] {
                let int = value.into_pyobject(py).unwrap();
                // SAFETY: an exact int and this interpreter's layout.
                assert_eq!(unsafe { compact_int(int.as_ptr(), layout) }, Some(value));
            }
        });
    }

    #[test]
    #[cfg(feature = "public-api")]
    fn every_internal_with_a_fallback_takes_it() {
        Python::initialize();
        Python::attach(|py| {
            assert_eq!(int_layout(py).unwrap(), IntLayout::Unknown);
            assert!(dict_presized(py).is_none());
            let uuid = py.import("uuid").unwrap().getattr("UUID").unwrap();
            assert!(uuid_slots(uuid.cast::<PyType>().unwrap()).is_none());
            assert_eq!(
                version_tag(&py.get_type::<pyo3::exceptions::PyKeyError>()),
                0
            );
        });
    }

    #[test]
    fn lookup_matches_the_mro_walk() {
        Python::initialize();
        Python::attach(|py| {
            let cls = py.get_type::<pyo3::exceptions::PyKeyError>();
            for name in ["__str__", "__init__", "args", "missing"] {
                let name = PyString::new(py, name);
                let fast = lookup(&cls, &name).map(|f| f.as_ptr());
                let slow = lookup_in_mro(&cls, &name).map(|f| f.as_ptr());
                assert_eq!(fast, slow, "{name}");
            }
        });
    }
}
