//! What tests, fuzz targets (fuzz/) and benches (rust/bench_deflate.rs)
//! reach inside the crate (feature `internals`); not part of the extension
//! module: the hand-written JSON parser checked against Python's own
//! `json.loads`, and the two zlib encoders.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::codec::decode::Decoder;
use crate::codec::MAX_DEPTH;

/// A zlib stream of `data` from the fixed-Huffman encoder (`compress::fixed`).
pub fn zlib_fixed(data: &[u8]) -> Vec<u8> {
    crate::compress::fixed::zlib_fixed(data)
}

/// A zlib stream of `data` from libdeflate at `level`, with a compressor
/// kept from call to call (as `compress` keeps one per thread).
pub fn zlib_libdeflate(compressor: &mut libdeflater::Compressor, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; compressor.zlib_compress_bound(data.len())];
    let n = compressor.zlib_compress(data, &mut out).expect("zlib");
    out.truncate(n);
    out
}

/// A transcoder with nothing registered: plain JSON only.
fn empty_transcoder(py: Python<'_>) -> Bound<'_, PyAny> {
    let namespace = py
        .import("types")
        .and_then(|m| m.getattr("SimpleNamespace"))
        .expect("types.SimpleNamespace");
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs
        .set_item("types", pyo3::types::PyDict::new(py))
        .unwrap();
    kwargs
        .set_item("names", pyo3::types::PyDict::new(py))
        .unwrap();
    namespace.call((), Some(&kwargs)).expect("a transcoder")
}

/// `repr()` of what esox's decoder makes of `input`, or None if it refuses it.
fn ours(py: Python<'_>, input: &[u8]) -> Option<String> {
    let transcoder = empty_transcoder(py);
    let mut decoder = Decoder::new(&transcoder).expect("a decoder");
    let value = decoder.decode(input).ok()?;
    Some(value.repr().expect("repr").to_string())
}

/// `repr()` of `json.loads(input.decode())`, or None if Python refuses it.
fn pythons(py: Python<'_>, input: &[u8]) -> Option<String> {
    let text = PyBytes::new(py, input)
        .call_method1("decode", ("utf-8",))
        .ok()?;
    let value = py
        .import("json")
        .and_then(|json| json.call_method1("loads", (text,)))
        .ok()?;
    Some(value.repr().expect("repr").to_string())
}

/// Whether Python's answer is the one to expect: not for documents that
/// esox reads differently on purpose (`_type_` objects are transcoded;
/// nesting past `MAX_DEPTH` is refused; ints past Python's digit limit).
fn comparable(input: &[u8]) -> bool {
    if input.windows(6).any(|w| w == b"_type_") {
        return false;
    }
    let (mut depth, mut deepest, mut digits, mut longest) = (0usize, 0usize, 0usize, 0usize);
    for &byte in input {
        match byte {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        deepest = deepest.max(depth);
        digits = if byte.is_ascii_digit() { digits + 1 } else { 0 };
        longest = longest.max(digits);
    }
    deepest < MAX_DEPTH && longest < 4000
}

/// Decodes `input` both ways and panics if esox and Python disagree (on
/// whether it is JSON, or on the value); never panics otherwise.
pub fn check_json_against_python(input: &[u8]) {
    Python::initialize();
    Python::attach(|py| {
        let esox = ours(py, input);
        if !comparable(input) {
            return;
        }
        let python = pythons(py, input);
        assert_eq!(
            esox,
            python,
            "esox and json.loads disagree on {:?}",
            String::from_utf8_lossy(input)
        );
    });
}

#[cfg(test)]
mod tests {
    use super::check_json_against_python;

    const DOCUMENTS: &[&str] = &[
        r#"{"name":"Fido","tricks":["roll over","play dead"],"age":3}"#,
        r#"{"a":{"b":{"c":[1,2,[3,[4,{"d":null}]]]}},"e":true,"f":false}"#,
        r#"  {"spaced" :  [ 1 , 2 ] ,"x":{ } , "y":[ ]}  "#,
        r#"{"esc":"quote \" backslash \\ slash \/ \b\f\n\r\t","u":"\u00e9\u4e2d\ud83d\ude00"}"#,
        r#"{"lone":"\ud800","low":"\udc00x","raw":"é中😀"}"#,
        r#"{"dup":1,"dup":2}"#,
        r#"[0,-0,1,-1,1073741823,1073741824,9223372036854775807,9223372036854775808,-9223372036854775809]"#,
        r#"[0.0,-0.0,1.5,-1.5e10,1e400,-1e-400,2.2250738585072014e-308,0.1,1E+2,123456789012345678901234567890.5]"#,
        r#"[NaN,Infinity,-Infinity]"#,
        r#""just a string""#,
        "12",
        "null",
        r#"{"class_version":2,"x":1}"#,
        // Refused by both.
        "",
        "{",
        "[1,]",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "+1",
        "tru",
        "nul",
        r#""\x""#,
        r#""\u12""#,
        "\"unterminated",
        "\"control \u{1} char\"",
        "[1] 2",
        "{\"a\":1}\u{0}",
        "'single'",
    ];

    #[test]
    fn documents_decode_as_json_loads_decodes_them() {
        for document in DOCUMENTS {
            check_json_against_python(document.as_bytes());
        }
        check_json_against_python(b"\"bad utf-8 \xff\xfe\"");
        check_json_against_python(b"\"truncated utf-8 \xe4\xb8\"");
        let deep = "[".repeat(400) + &"]".repeat(400);
        check_json_against_python(deep.as_bytes());
    }

    #[test]
    fn nesting_past_the_limit_is_refused_without_overflowing_the_stack() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        check_json_against_python(deep.as_bytes());
    }

    #[test]
    fn mutated_documents_decode_as_json_loads_decodes_them() {
        // A small deterministic fuzz: each document with bytes replaced,
        // inserted, deleted and the document cut short.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"{}[]:,\"\\0123456789.eE+-tfnrualsNIy \t\n\xc3\xa9\xff";
        for document in DOCUMENTS {
            for _ in 0..200 {
                let mut bytes = document.as_bytes().to_vec();
                for _ in 0..1 + next() % 3 {
                    let at = if bytes.is_empty() {
                        0
                    } else {
                        (next() as usize) % bytes.len()
                    };
                    let byte = alphabet[(next() as usize) % alphabet.len()];
                    match next() % 4 {
                        0 if at < bytes.len() => bytes[at] = byte,
                        1 => bytes.insert(at, byte),
                        2 if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ => bytes.truncate(at),
                    }
                }
                check_json_against_python(&bytes);
            }
        }
    }
}
