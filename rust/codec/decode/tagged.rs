//! Decoding of tagged values: objects with exactly the keys `_type_` and
//! `_data_`, which become what the transcoding registered under the
//! `_type_` name decodes from the `_data_` value.
//!
//! The native names and the generic `enum` and `dataclass` are decoded in
//! Rust while the transcoding registered under them is the built-in one
//! (see `Registry`); any other transcoding's `decode` is called. A native
//! value written compactly is decoded straight from the bytes, before the
//! object's members are parsed.

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::{Cursor, Decoder, Result};
use crate::codec::error::DecodeError;
use crate::codec::generic::{decode_dataclass, decode_enum};
use crate::codec::keys::new_str;
use crate::codec::native::{decode_native, decode_native_text};
use crate::codec::scan::plain_prefix;
use crate::codec::{Generic, Handling, Native};

impl<'py> Decoder<'py> {
    /// The common case of a transcoded value, `{"_type_":"<native name>",
    /// "_data_":"<text>"}` written compactly (as esox and eventsourcing
    /// write it), decoded from the bytes without making Python strings of
    /// the keys, the name or the text. `None` (nothing consumed) otherwise.
    #[inline]
    pub(super) fn tagged_native(
        &mut self,
        c: &mut Cursor<'_>,
    ) -> Result<Option<Bound<'py, PyAny>>> {
        const TYPE: &[u8] = b"\"_type_\":\"";
        const DATA: &[u8] = b"\",\"_data_\":\"";
        let input = c.input;
        if !input[c.pos..].starts_with(TYPE) {
            return Ok(None);
        }
        let name_start = c.pos + TYPE.len();
        // Native names are 8 to 12 bytes long.
        let rest = &input[name_start..];
        let Some(name_len) = (8..=12).find(|&n| rest.get(n) == Some(&b'"')) else {
            return Ok(None);
        };
        let Some(native) = Native::from_name(&input[name_start..name_start + name_len]) else {
            return Ok(None);
        };
        let data_at = name_start + name_len;
        if !input[data_at..].starts_with(DATA) {
            return Ok(None);
        }
        let text_start = data_at + DATA.len();
        let (len, ascii) = plain_prefix(&input[text_start..]);
        let text_end = text_start + len;
        if input.get(text_end..text_end + 2) != Some(b"\"}") {
            return Ok(None);
        }
        if !matches!(
            self.registry.decoding(native, self.builtins)?,
            Handling::Native
        ) {
            return Ok(None);
        }
        let text = &input[text_start..text_end];
        let py = self.py;
        let value = match decode_native_text(py, self.builtins, native, text) {
            Some(value) => value,
            None => new_str(py, text, ascii).and_then(|s| decode_native(self.builtins, native, &s)),
        }
        .map_err(|err| DecodeError::Transcoding {
            name: native.name().to_owned(),
            err,
        })?;
        c.pos = text_end + 2;
        Ok(Some(value))
    }

    /// The value of `{"_type_": name, "_data_": data}`.
    pub(super) fn transcoded(
        &mut self,
        name: Bound<'py, PyAny>,
        data: Bound<'py, PyAny>,
    ) -> Result<Bound<'py, PyAny>> {
        let py = self.py;
        let text = name.cast::<PyString>().ok().and_then(|n| n.to_str().ok());
        let native = text.and_then(|s| Native::from_name(s.as_bytes()));
        if let Some(generic) = text.and_then(|s| Generic::from_name(s.as_bytes())) {
            let transcoding = match self.registry.generic(generic)? {
                Handling::Native => {
                    let decoded = match generic {
                        Generic::Enum => decode_enum(&data),
                        Generic::Dataclass => decode_dataclass(&data),
                    };
                    return decoded.map_err(|err| DecodeError::Transcoding {
                        name: generic.name().to_owned(),
                        err,
                    });
                }
                Handling::Transcoding(t) => t,
                Handling::Missing => {
                    return Err(DecodeError::Unregistered {
                        name: generic.name().to_owned(),
                    })
                }
            };
            return transcoding
                .call_method1(pyo3::intern!(py, "decode"), (data,))
                .map_err(|err| DecodeError::Transcoding {
                    name: generic.name().to_owned(),
                    err,
                });
        }
        let transcoding = match native {
            Some(native) => match self.registry.decoding(native, self.builtins)? {
                Handling::Native => {
                    return decode_native(self.builtins, native, &data).map_err(|err| {
                        DecodeError::Transcoding {
                            name: native.name().to_owned(),
                            err,
                        }
                    });
                }
                Handling::Transcoding(t) => Some(t),
                Handling::Missing => None,
            },
            None => self.registry.names()?.get_item(&name)?,
        };
        let Some(transcoding) = transcoding else {
            return Err(DecodeError::Unregistered {
                name: name.to_string(),
            });
        };
        transcoding
            .call_method1(pyo3::intern!(py, "decode"), (data,))
            .map_err(|err| DecodeError::Transcoding {
                name: name.to_string(),
                err,
            })
    }
}
