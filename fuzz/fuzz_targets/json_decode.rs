//! esox's JSON parser against Python's `json.loads`: any input on which they
//! disagree (or on which esox panics or crashes) is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    _core::internals::check_json_against_python(data);
});
