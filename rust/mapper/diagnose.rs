//! What the mapper says when stored bytes cannot be read (judged from the
//! bytes, only on the error path), and the associated data that binds an
//! encrypted state to its event (`CIPHER_BIND_EVENT`).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::seal::{self, Sealing};
use crate::codec::builtins;
use crate::codec::text::parse_uuid_hex;

/// What stored bytes look like, for the hints of errors: plain JSON, a
/// zlib stream or a zstd frame; None for anything else (encrypted, say).
pub fn looks_like(state: &[u8]) -> Option<&'static str> {
    match state {
        [b'{', ..] => Some("JSON (plain, uncompressed)"),
        [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 => {
            Some("a zlib stream")
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("a zstd frame"),
        _ => None,
    }
}

/// The associated data that binds a state to its event (`CIPHER_BIND_EVENT`):
/// a format tag, the originator id (a UUID, or text that reads as one, as 32
/// hex digits, so it binds alike however a recorder returns it), the version
/// and the topic, separated by NUL bytes.
pub fn associated_data(
    originator_id: &Bound<'_, PyAny>,
    version: i64,
    topic: &Bound<'_, PyString>,
) -> PyResult<Vec<u8>> {
    let py = originator_id.py();
    let mut out = b"esox-bind-1\0".to_vec();
    let hex = |value: u128| format!("{value:032x}").into_bytes();
    let id = if let Ok(text) = originator_id.cast::<PyString>() {
        let text = text.to_str()?;
        parse_uuid_hex(text.as_bytes()).map_or_else(|| text.as_bytes().to_vec(), hex)
    } else if originator_id.is_instance(builtins(py)?.uuid_type.bind(py))? {
        hex(originator_id.getattr(intern!(py, "int"))?.extract()?)
    } else {
        originator_id.str()?.to_str()?.as_bytes().to_vec()
    };
    out.extend_from_slice(&id);
    out.push(0);
    out.extend_from_slice(itoa::Buffer::new().format(version).as_bytes());
    out.push(0);
    out.extend_from_slice(topic.to_str()?.as_bytes());
    Ok(out)
}

/// What to do about a state that could not be decrypted or decompressed,
/// judged from its stored bytes (only on that error path).
pub fn unseal_hint(sealing: &Sealing, problem: &str, stored: &[u8]) -> String {
    let looks = looks_like(stored);
    if problem == seal::DECRYPT {
        if sealing.binds() {
            return " (CIPHER_BIND_EVENT is on: the state was written for another \
                    originator id, version or topic, or without CIPHER_BIND_EVENT)"
                .to_owned();
        }
        return match looks {
            Some(what) => format!(
                " (the state looks like {what}, not encrypted: it was written \
                 without a cipher)"
            ),
            None => " (if it was written with CIPHER_BIND_EVENT=yes, set that \
                     here too; if with another key, add it to CIPHER_OLD_KEYS)"
                .to_owned(),
        };
    } else if sealing.cipher.is_none() && looks.is_none() {
        return " (the state looks encrypted: set CIPHER_KEY)".to_owned();
    } else if let Some(what) = looks.filter(|w| w.starts_with("JSON")) {
        return format!(" (the state looks like {what}: it was written uncompressed)");
    }
    String::new()
}

/// What to do about a state that is not valid JSON, read with neither
/// compressor nor cipher: it may be compressed or encrypted.
pub fn decode_hint(sealing: &Sealing, state: &[u8]) -> &'static str {
    if !sealing.is_plain() {
        return "";
    }
    match looks_like(state) {
        Some(what) if what.starts_with("JSON") => "",
        Some(_) => "the state looks compressed: set COMPRESSOR_TOPIC; ",
        None => "the state looks encrypted or compressed: set CIPHER_KEY and/or COMPRESSOR_TOPIC; ",
    }
}
