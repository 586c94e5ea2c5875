//! Parses JSON bytes straight into Python objects (no intermediate tree).
//!
//! Accepts what Python's `json` module accepts (including `NaN`,
//! `Infinity`, `-Infinity` and lone surrogate escapes), and turns every
//! object with exactly the keys `_type_` and `_data_` into the value its
//! transcoding decodes, as eventsourcing's `JSONTranscoder` does. Dict keys
//! are interned and cached across calls, so events of one class share them.

mod tagged;

use std::sync::MutexGuard;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};

use super::error::DecodeError;
use super::keys::{cached_key, new_str, try_lock_keys, KeyCache, MAX_CACHED_KEY};
use super::scan::plain_prefix;
use super::{builtins, Builtins, Registry, MAX_DEPTH};

type Result<T> = std::result::Result<T, DecodeError>;

/// Marks an object member whose key is `_type_` or `_data_`.
const TAG_TYPE: u8 = 1;
const TAG_DATA: u8 = 2;

type Member<'py> = (Bound<'py, PyString>, u8, Bound<'py, PyAny>);

struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn syntax<T>(&self, problem: &'static str) -> Result<T> {
        Err(DecodeError::Syntax {
            at: self.pos,
            problem,
        })
    }

    fn literal(&mut self, text: &[u8]) -> Result<()> {
        if self.input[self.pos..].starts_with(text) {
            self.pos += text.len();
            Ok(())
        } else {
            self.syntax("expected a JSON value")
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }
}

/// The error of making a str of `input[start..end]`: invalid UTF-8 (with
/// its position) if the text is not UTF-8, else the Python error.
#[cold]
fn str_error(err: PyErr, input: &[u8], start: usize, end: usize, ascii: bool) -> DecodeError {
    if !ascii {
        if let Err(e) = std::str::from_utf8(&input[start..end]) {
            return DecodeError::Utf8 {
                at: start + e.valid_up_to(),
            };
        }
    }
    DecodeError::Python(err)
}

/// Parses JSON for one batch; reuse it for every document in the batch.
pub struct Decoder<'py> {
    py: Python<'py>,
    builtins: &'static Builtins,
    registry: Registry<'py>,
    scratch: Vec<u8>,
    /// The shared key cache, if no other thread is using it.
    keys: Option<MutexGuard<'static, KeyCache>>,
    /// The keys of the previous document, in the order they came: events of
    /// one class repeat them, so each key is first compared with the one at
    /// its position last time, which is cheaper than any lookup.
    predicted: Vec<(Box<[u8]>, Bound<'py, PyString>)>,
    next_key: usize,
    /// Whether every value of the last document's top-level object is
    /// atomic (see `is_atomic`).
    pub atomic: bool,
    /// Whether the last document's top-level object has a `class_version`.
    pub class_version: bool,
    /// How many members the last top-level object with more than two had.
    top_members: usize,
}

/// True for a value that cannot refer to other objects: any of a type the
/// cycle collector ignores (str, int, float, datetime, Decimal, bytes...),
/// or an untracked UUID (as the decoder makes them).
///
/// # Safety
/// `obj` must be alive and `uuid_type` the `uuid.UUID` type.
#[inline(always)]
pub unsafe fn is_atomic(obj: *mut ffi::PyObject, uuid_type: *mut ffi::PyObject) -> bool {
    let ty = ffi::Py_TYPE(obj);
    (*ty).tp_flags & ffi::Py_TPFLAGS_HAVE_GC == 0
        || (ty as *mut ffi::PyObject == uuid_type && ffi::PyObject_GC_IsTracked(obj) == 0)
}

/// Keys predicted per document (past this, only the cache is used).
const MAX_PREDICTED: usize = 64;

/// `a == b`, inlined for the short byte strings that keys are.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // SAFETY: every read is within both slices (both are n bytes).
    unsafe {
        let word = |s: &[u8], at: usize| std::ptr::read_unaligned(s.as_ptr().add(at) as *const u64);
        let half = |s: &[u8], at: usize| std::ptr::read_unaligned(s.as_ptr().add(at) as *const u32);
        match n {
            0 => true,
            1..=3 => a == b,
            4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
            8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
            _ => a == b,
        }
    }
}

/// `dict[key] = value`.
#[inline]
pub fn set_item(
    dict: &Bound<'_, PyDict>,
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    // SAFETY: all three objects are alive.
    if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(PyErr::fetch(dict.py()))
    }
}

impl<'py> Decoder<'py> {
    pub fn new(transcoder: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = transcoder.py();
        let keys = try_lock_keys();
        Ok(Decoder {
            py,
            builtins: builtins(py)?,
            registry: Registry::new(transcoder),
            scratch: Vec::new(),
            keys,
            predicted: Vec::new(),
            next_key: 0,
            atomic: true,
            class_version: false,
            top_members: 0,
        })
    }

    /// Parses one JSON document.
    ///
    /// UTF-8 is checked where it matters, not up front: the text of strings
    /// that are not all ASCII is validated as it becomes a Python str, and
    /// any other non-ASCII byte is a syntax error anyway.
    pub fn decode(&mut self, input: &[u8]) -> Result<Bound<'py, PyAny>> {
        self.next_key = 0;
        self.atomic = true;
        self.class_version = false;
        let mut cursor = Cursor { input, pos: 0 };
        let value = self.value(&mut cursor, 0)?;
        cursor.skip_ws();
        if cursor.pos != input.len() {
            return cursor.syntax("unexpected data after the JSON value");
        }
        Ok(value)
    }

    fn value(&mut self, c: &mut Cursor<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
        c.skip_ws();
        let py = self.py;
        match c.peek() {
            Some(b'"') => {
                c.pos += 1;
                Ok(self.string(c, false)?.into_any())
            }
            Some(b'{') => self.object(c, depth),
            Some(b'[') => self.array(c, depth),
            Some(b'-' | b'0'..=b'9') => self.number(c),
            Some(b't') => c
                .literal(b"true")
                .map(|_| PyBool::new(py, true).to_owned().into_any()),
            Some(b'f') => c
                .literal(b"false")
                .map(|_| PyBool::new(py, false).to_owned().into_any()),
            Some(b'n') => c.literal(b"null").map(|_| py.None().into_bound(py)),
            Some(b'N') => c.literal(b"NaN").map(|_| self.float(f64::NAN)),
            Some(b'I') => c.literal(b"Infinity").map(|_| self.float(f64::INFINITY)),
            None => c.syntax("unexpected end of input"),
            Some(_) => c.syntax("expected a JSON value"),
        }
    }

    fn float(&self, value: f64) -> Bound<'py, PyAny> {
        pyo3::types::PyFloat::new(self.py, value).into_any()
    }

    fn number(&mut self, c: &mut Cursor<'_>) -> Result<Bound<'py, PyAny>> {
        let start = c.pos;
        if c.peek() == Some(b'-') {
            c.pos += 1;
            if c.peek() == Some(b'I') {
                return c
                    .literal(b"Infinity")
                    .map(|_| self.float(f64::NEG_INFINITY));
            }
        }
        match c.peek() {
            Some(b'0') => c.pos += 1,
            Some(b'1'..=b'9') => {
                c.digits();
            }
            _ => return c.syntax("expected a digit"),
        }
        let mut is_float = false;
        // As Python's json: a fraction or exponent counts only if complete.
        if c.peek() == Some(b'.') && c.input.get(c.pos + 1).is_some_and(u8::is_ascii_digit) {
            c.pos += 1;
            c.digits();
            is_float = true;
        }
        if let Some(b'e' | b'E') = c.peek() {
            let mark = c.pos;
            c.pos += 1;
            if let Some(b'+' | b'-') = c.peek() {
                c.pos += 1;
            }
            if c.digits() == 0 {
                c.pos = mark;
            } else {
                is_float = true;
            }
        }
        let text = &c.input[start..c.pos];
        // SAFETY: the number's bytes are ASCII.
        let text_str = unsafe { std::str::from_utf8_unchecked(text) };
        if is_float {
            let value: f64 = text_str.parse().map_err(|_| DecodeError::Syntax {
                at: start,
                problem: "invalid number",
            })?;
            return Ok(self.float(value));
        }
        if let Ok(value) = text_str.parse::<i64>() {
            return Ok(value
                .into_pyobject(self.py)
                .map_err(PyErr::from)?
                .into_any());
        }
        let digits = std::ffi::CString::new(text).map_err(|_| DecodeError::Syntax {
            at: start,
            problem: "invalid number",
        })?;
        // SAFETY: a NUL-terminated string of ASCII digits.
        unsafe {
            let ptr = ffi::PyLong_FromString(digits.as_ptr(), std::ptr::null_mut(), 10);
            Ok(Bound::from_owned_ptr_or_err(self.py, ptr)?)
        }
    }

    /// A string whose opening quote has been consumed; keys are interned
    /// and cached.
    fn string(&mut self, c: &mut Cursor<'_>, is_key: bool) -> Result<Bound<'py, PyString>> {
        let start = c.pos;
        let input = c.input;
        let (len, ascii) = plain_prefix(&input[start..]);
        let i = start + len;
        match input.get(i) {
            Some(b'"') => {}
            Some(b'\\') => {
                c.pos = i;
                return self.escaped_string(c, start);
            }
            Some(_) => {
                c.pos = i;
                return c.syntax("control character in string");
            }
            None => {
                c.pos = i;
                return c.syntax("unterminated string");
            }
        }
        c.pos = i + 1;
        let bytes = &input[start..i];
        if !is_key {
            return new_str(self.py, bytes, ascii)
                .map_err(|e| str_error(e, input, start, i, ascii));
        }
        let slot = self.next_key;
        self.next_key += 1;
        if let Some((predicted, key)) = self.predicted.get(slot) {
            if same_bytes(predicted, bytes) {
                return Ok(key.clone());
            }
        }
        let made = match self.keys.as_mut() {
            Some(keys) if bytes.len() <= MAX_CACHED_KEY => cached_key(self.py, keys, bytes, ascii),
            _ => new_str(self.py, bytes, ascii),
        };
        let key = made.map_err(|e| str_error(e, input, start, i, ascii))?;
        if bytes.len() <= MAX_CACHED_KEY && slot < MAX_PREDICTED {
            let entry = (Box::<[u8]>::from(bytes), key.clone());
            if slot < self.predicted.len() {
                self.predicted[slot] = entry;
            } else if slot == self.predicted.len() {
                self.predicted.push(entry);
            }
        }
        Ok(key)
    }

    /// The slow path of `string`: from the first backslash on, unescaping
    /// into a scratch buffer.
    fn escaped_string(&mut self, c: &mut Cursor<'_>, start: usize) -> Result<Bound<'py, PyString>> {
        let input = c.input;
        self.scratch.clear();
        self.scratch.extend_from_slice(&input[start..c.pos]);
        let mut lone_surrogate = false;
        loop {
            let Some(&b) = input.get(c.pos) else {
                return c.syntax("unterminated string");
            };
            match b {
                b'"' => break,
                b'\\' => {
                    let escape = input.get(c.pos + 1).copied();
                    let simple = match escape {
                        Some(b'"') => Some(b'"'),
                        Some(b'\\') => Some(b'\\'),
                        Some(b'/') => Some(b'/'),
                        Some(b'b') => Some(0x08),
                        Some(b'f') => Some(0x0c),
                        Some(b'n') => Some(b'\n'),
                        Some(b'r') => Some(b'\r'),
                        Some(b't') => Some(b'\t'),
                        _ => None,
                    };
                    if let Some(byte) = simple {
                        self.scratch.push(byte);
                        c.pos += 2;
                    } else if escape == Some(b'u') {
                        lone_surrogate |= self.unicode_escape(c)?;
                    } else {
                        return c.syntax("invalid escape in string");
                    }
                }
                b if b < 0x20 => return c.syntax("control character in string"),
                b => {
                    self.scratch.push(b);
                    c.pos += 1;
                }
            }
        }
        c.pos += 1;
        if lone_surrogate {
            // Python's json keeps lone surrogates; so does "surrogatepass".
            // SAFETY: the scratch buffer is alive for the call.
            unsafe {
                let ptr = ffi::PyUnicode_DecodeUTF8(
                    self.scratch.as_ptr().cast(),
                    self.scratch.len() as ffi::Py_ssize_t,
                    c"surrogatepass".as_ptr(),
                );
                return Bound::from_owned_ptr_or_err(self.py, ptr)
                    .map(|s| s.cast_into_unchecked())
                    .map_err(|e| str_error(e, input, start, c.pos, false));
            }
        }
        let ascii = self.scratch.is_ascii();
        new_str(self.py, &self.scratch, ascii).map_err(|e| str_error(e, input, start, c.pos, ascii))
    }

    /// `\uXXXX` (or a surrogate pair of them) at `c.pos`, appended as UTF-8.
    /// Returns true if it was a lone surrogate (written as WTF-8).
    fn unicode_escape(&mut self, c: &mut Cursor<'_>) -> Result<bool> {
        let hex4 = |at: usize| -> Option<u32> {
            let digits = c.input.get(at..at + 4)?;
            digits
                .iter()
                .try_fold(0u32, |acc, &d| Some(acc << 4 | (d as char).to_digit(16)?))
        };
        let Some(first) = hex4(c.pos + 2) else {
            return c.syntax("invalid \\u escape");
        };
        c.pos += 6;
        let mut code = first;
        if (0xd800..0xdc00).contains(&first) && c.input[c.pos..].starts_with(b"\\u") {
            if let Some(second @ 0xdc00..=0xdfff) = hex4(c.pos + 2) {
                code = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
                c.pos += 6;
            }
        }
        let mut utf8 = [0u8; 4];
        match char::from_u32(code) {
            Some(ch) => {
                self.scratch
                    .extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
                Ok(false)
            }
            None => {
                // A lone surrogate: its three-byte form, for "surrogatepass".
                self.scratch.extend_from_slice(&[
                    0xe0 | (code >> 12) as u8,
                    0x80 | ((code >> 6) & 0x3f) as u8,
                    0x80 | (code & 0x3f) as u8,
                ]);
                Ok(true)
            }
        }
    }

    fn array(&mut self, c: &mut Cursor<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep { at: c.pos });
        }
        c.pos += 1;
        let list = pyo3::types::PyList::empty(self.py);
        c.skip_ws();
        if c.peek() == Some(b']') {
            c.pos += 1;
            return Ok(list.into_any());
        }
        loop {
            let item = self.value(c, depth + 1)?;
            list.append(item)?;
            c.skip_ws();
            match c.peek() {
                Some(b',') => c.pos += 1,
                Some(b']') => {
                    c.pos += 1;
                    return Ok(list.into_any());
                }
                None => return c.syntax("unexpected end of input"),
                Some(_) => return c.syntax("expected ',' or ']'"),
            }
        }
    }

    fn object(&mut self, c: &mut Cursor<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep { at: c.pos });
        }
        c.pos += 1;
        if let Some(value) = self.tagged_native(c)? {
            return Ok(value);
        }
        c.skip_ws();
        if c.peek() == Some(b'}') {
            c.pos += 1;
            return Ok(PyDict::new(self.py).into_any());
        }
        // The first two members are held back: `{"_type_": .., "_data_": ..}`
        // becomes its decoded value without a dict being made.
        let first = self.member(c, depth)?;
        if !self.another_member(c)? {
            return self.dict_of([first]);
        }
        let second = self.member(c, depth)?;
        if !self.another_member(c)? {
            return match (first, second) {
                ((_, TAG_TYPE, name), (_, TAG_DATA, data))
                | ((_, TAG_DATA, data), (_, TAG_TYPE, name)) => self.transcoded(name, data),
                (first, second) => self.dict_of([first, second]),
            };
        }
        let mut tags = first.1 | second.1;
        let dict = self.new_dict(depth)?;
        set_item(&dict, &first.0, &first.2)?;
        set_item(&dict, &second.0, &second.2)?;
        let mut members = 2;
        loop {
            let (key, tag, value) = self.member(c, depth)?;
            tags |= tag;
            set_item(&dict, &key, &value)?;
            members += 1;
            if !self.another_member(c)? {
                break;
            }
        }
        if depth == 0 {
            self.top_members = members;
        }
        // As Python's json: duplicate keys may leave exactly the two.
        if tags == TAG_TYPE | TAG_DATA && dict.len() == 2 {
            let py = self.py;
            if let (Some(name), Some(data)) = (
                dict.get_item(pyo3::intern!(py, "_type_"))?,
                dict.get_item(pyo3::intern!(py, "_data_"))?,
            ) {
                return self.transcoded(name, data);
            }
        }
        Ok(dict.into_any())
    }

    /// `"key": value`, with a tag saying whether the key is `_type_` or `_data_`.
    fn member(&mut self, c: &mut Cursor<'_>, depth: usize) -> Result<Member<'py>> {
        c.skip_ws();
        match c.peek() {
            Some(b'"') => c.pos += 1,
            None => return c.syntax("unexpected end of input"),
            Some(_) => return c.syntax("expected a string key"),
        }
        let key_start = c.pos;
        let key = self.string(c, true)?;
        let tag = match &c.input[key_start..c.pos - 1] {
            b"_type_" => TAG_TYPE,
            b"_data_" => TAG_DATA,
            b"class_version" if depth == 0 => {
                self.class_version = true;
                0
            }
            _ => 0,
        };
        c.skip_ws();
        if c.peek() != Some(b':') {
            return c.syntax("expected ':'");
        }
        c.pos += 1;
        let value = self.value(c, depth + 1)?;
        if depth == 0 {
            // SAFETY: `value` is alive; the UUID type is the codec's.
            self.atomic &= unsafe { is_atomic(value.as_ptr(), self.builtins.uuid_type.as_ptr()) };
        }
        Ok((key, tag, value))
    }

    fn dict_of<const N: usize>(&self, members: [Member<'py>; N]) -> Result<Bound<'py, PyAny>> {
        let dict = PyDict::new(self.py);
        for (key, _, value) in members {
            set_item(&dict, &key, &value)?;
        }
        Ok(dict.into_any())
    }

    /// A dict for an object of more than two members; the top-level one
    /// sized for as many as the last document's had, and the two ids the
    /// mapper adds, so that it is not resized while it fills.
    fn new_dict(&self, depth: usize) -> Result<Bound<'py, PyDict>> {
        match self.builtins.dict_presized {
            Some(presized) if depth == 0 && self.top_members > 3 => {
                // SAFETY: `_PyDict_NewPresized` returns a new reference (or NULL).
                unsafe {
                    let ptr = presized((self.top_members + 2) as ffi::Py_ssize_t);
                    Ok(Bound::from_owned_ptr_or_err(self.py, ptr)?.cast_into_unchecked())
                }
            }
            _ => Ok(PyDict::new(self.py)),
        }
    }

    /// Consumes `,` (true: another member follows) or `}` (false).
    fn another_member(&mut self, c: &mut Cursor<'_>) -> Result<bool> {
        c.skip_ws();
        match c.peek() {
            Some(b',') => {
                c.pos += 1;
                Ok(true)
            }
            Some(b'}') => {
                c.pos += 1;
                Ok(false)
            }
            None => c.syntax("unexpected end of input"),
            Some(_) => c.syntax("expected ',' or '}'"),
        }
    }
}
