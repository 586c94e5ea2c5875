//! Finding the bytes of JSON string text that need escaping (`"`, `\` and
//! control characters), 16 bytes at a time with SSE2 on x86-64 and 8 at a
//! time elsewhere. Used to copy plain text when writing and to find the end
//! of a string when reading; both are most of the codec's work.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True if any of the eight bytes in `word` needs escaping.
#[inline(always)]
pub fn word_needs_escape(word: u64) -> bool {
    // Each term has a byte's high bit set where that byte is < 0x20, `"` or
    // `\`; borrows can mark later bytes too, but only after a real match.
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * b'"' as u64);
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * b'\\' as u64);
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGHS != 0
}

#[inline(always)]
fn byte_needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// Bit i set if byte i of `v` needs escaping.
    #[inline(always)]
    pub unsafe fn special(v: __m128i) -> u32 {
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
    }

    #[inline(always)]
    pub unsafe fn load(src: *const u8) -> __m128i {
        _mm_loadu_si128(src.cast())
    }

    #[inline(always)]
    pub unsafe fn store(dst: *mut u8, v: __m128i) {
        _mm_storeu_si128(dst.cast(), v)
    }

    /// Bit i set if byte i of `v` is not ASCII.
    #[inline(always)]
    pub unsafe fn high(v: __m128i) -> u32 {
        _mm_movemask_epi8(v) as u32
    }
}

/// Copies `len` bytes from `src` to `dst` if none of them needs escaping;
/// returns false (having written an unspecified part of `dst`) otherwise.
///
/// # Safety
/// `src` must be readable and `dst` writable for `len` bytes.
#[inline(always)]
pub unsafe fn copy_plain(src: *const u8, len: usize, dst: *mut u8) -> bool {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        while i + 16 <= len {
            let v = simd::load(src.add(i));
            if simd::special(v) != 0 {
                return false;
            }
            simd::store(dst.add(i), v);
            i += 16;
        }
        if i == len {
            return true;
        }
        if len >= 16 {
            // The last 16 bytes, overlapping what was copied.
            let v = simd::load(src.add(len - 16));
            if simd::special(v) != 0 {
                return false;
            }
            simd::store(dst.add(len - 16), v);
            return true;
        }
    }
    while i + 8 <= len {
        let word = std::ptr::read_unaligned(src.add(i) as *const u64);
        if word_needs_escape(word) {
            return false;
        }
        std::ptr::write_unaligned(dst.add(i) as *mut u64, word);
        i += 8;
    }
    if i == len {
        return true;
    }
    if len >= 8 {
        let word = std::ptr::read_unaligned(src.add(len - 8) as *const u64);
        if word_needs_escape(word) {
            return false;
        }
        std::ptr::write_unaligned(dst.add(len - 8) as *mut u64, word);
        return true;
    }
    if len >= 4 {
        // Two overlapping 4-byte reads cover 4..=7 bytes.
        let a = std::ptr::read_unaligned(src as *const u32);
        let b = std::ptr::read_unaligned(src.add(len - 4) as *const u32);
        if word_needs_escape(u64::from(a) | u64::from(b) << 32) {
            return false;
        }
        std::ptr::write_unaligned(dst as *mut u32, a);
        std::ptr::write_unaligned(dst.add(len - 4) as *mut u32, b);
        return true;
    }
    while i < len {
        let byte = *src.add(i);
        if byte_needs_escape(byte) {
            return false;
        }
        *dst.add(i) = byte;
        i += 1;
    }
    true
}

/// The length of the longest prefix of `bytes` in which no byte needs
/// escaping, and whether that prefix is all ASCII.
#[inline(always)]
pub fn plain_prefix(bytes: &[u8]) -> (usize, bool) {
    let len = bytes.len();
    let src = bytes.as_ptr();
    let mut i = 0;
    let mut ascii = true;
    // SAFETY: every read is within `bytes`.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        while i + 16 <= len {
            let v = simd::load(src.add(i));
            let special = simd::special(v);
            let high = simd::high(v);
            if special != 0 {
                let n = special.trailing_zeros();
                ascii &= high & ((1u32 << n) - 1) == 0;
                return (i + n as usize, ascii);
            }
            ascii &= high == 0;
            i += 16;
        }
        while i + 8 <= len {
            let word = std::ptr::read_unaligned(src.add(i) as *const u64);
            if word_needs_escape(word) {
                break;
            }
            ascii &= word & HIGHS == 0;
            i += 8;
        }
    }
    while i < len && !byte_needs_escape(bytes[i]) {
        ascii &= bytes[i] < 0x80;
        i += 1;
    }
    (i, ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copied(text: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; text.len()];
        // SAFETY: both buffers are text.len() bytes.
        unsafe { copy_plain(text.as_ptr(), text.len(), out.as_mut_ptr()) }.then_some(out)
    }

    #[test]
    fn plain_text_of_every_length_is_copied_and_special_bytes_refused() {
        for len in 0..70 {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert_eq!(copied(&text).as_deref(), Some(&text[..]), "len {len}");
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    let mut bad = text.clone();
                    bad[at] = special;
                    assert_eq!(copied(&bad), None, "len {len}, {special:#x} at {at}");
                    assert_eq!(
                        plain_prefix(&bad),
                        (at, true),
                        "len {len}, {special:#x} at {at}"
                    );
                }
            }
            assert_eq!(plain_prefix(&text), (len, true));
        }
    }

    #[test]
    fn non_ascii_is_plain_and_reported_only_before_the_first_special_byte() {
        let text = "aé☃😀\u{7f}".repeat(5);
        assert_eq!(copied(text.as_bytes()).as_deref(), Some(text.as_bytes()));
        assert_eq!(plain_prefix(text.as_bytes()), (text.len(), false));
        let mixed = format!("{}\"é", "x".repeat(20));
        assert_eq!(plain_prefix(mixed.as_bytes()), (20, true));
    }
}
