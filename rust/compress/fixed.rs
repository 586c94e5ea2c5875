//! A zlib stream of one deflate block with the fixed Huffman codes (RFC 1951
//! 3.2.6), matches found greedily through a small hash table.
//!
//! For event-sized states this is far cheaper than a general compressor,
//! whose set-up (clearing hash tables, building a Huffman code per block)
//! costs more than the data; and it decodes faster too, since decoders keep
//! the fixed code's tables from one stream to the next. Any zlib decoder
//! (Python's `zlib.decompress` included) reads it. The hash table is never
//! cleared: an entry left from earlier data is only a candidate, checked
//! against the bytes before it is used.

use std::cell::RefCell;

const HASH_BITS: u32 = 12;
const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;
const WINDOW: usize = 32 * 1024;

thread_local! {
    static TABLE: RefCell<Vec<u32>> = RefCell::new(vec![0; 1 << HASH_BITS]);
}

/// `(code, length)` of each literal/length symbol, its bits reversed (deflate
/// sends Huffman codes most significant bit first into a LSB-first stream).
const LITERALS: [(u16, u8); 288] = literal_codes();

const fn reverse(code: u16, len: u8) -> u16 {
    let mut out = 0;
    let mut i = 0;
    while i < len {
        out |= ((code >> i) & 1) << (len - 1 - i);
        i += 1;
    }
    out
}

const fn literal_codes() -> [(u16, u8); 288] {
    let mut table = [(0u16, 0u8); 288];
    let mut symbol = 0;
    while symbol < 288 {
        let (code, len) = match symbol {
            0..=143 => (0x30 + symbol as u16, 8),
            144..=255 => (0x190 + (symbol as u16 - 144), 9),
            256..=279 => (symbol as u16 - 256, 7),
            _ => (0xc0 + (symbol as u16 - 280), 8),
        };
        table[symbol] = (reverse(code, len), len);
        symbol += 1;
    }
    table
}

struct Bits {
    out: Vec<u8>,
    acc: u64,
    count: u32,
}

impl Bits {
    #[inline(always)]
    fn put(&mut self, bits: u32, count: u32) {
        self.acc |= u64::from(bits) << self.count;
        self.count += count;
        if self.count >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.count -= 32;
        }
    }

    #[inline(always)]
    fn symbol(&mut self, symbol: usize) {
        let (code, len) = LITERALS[symbol];
        self.put(code.into(), len.into());
    }

    fn finish(mut self) -> Vec<u8> {
        while self.count > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.count = self.count.saturating_sub(8);
        }
        self.out
    }
}

/// Writes a match: its length code (and extra bits), then its distance
/// code (5 bits, fixed) and extra bits.
#[inline]
fn put_match(bits: &mut Bits, len: usize, dist: usize) {
    debug_assert!((3..=MAX_MATCH).contains(&len) && (1..=WINDOW).contains(&dist));
    let l = (len - 3) as u32;
    if len == MAX_MATCH {
        bits.symbol(285);
    } else if l < 8 {
        bits.symbol(257 + l as usize);
    } else {
        let top = 31 - l.leading_zeros();
        let extra = top - 2;
        bits.symbol((257 + 4 * (top - 1) + ((l >> extra) & 3)) as usize);
        bits.put(l & ((1 << extra) - 1), extra);
    }
    let d = (dist - 1) as u32;
    if d < 4 {
        bits.put(u32::from(reverse(d as u16, 5)), 5);
    } else {
        let top = 31 - d.leading_zeros();
        let extra = top - 1;
        let code = 2 * top + ((d >> extra) & 1);
        bits.put(u32::from(reverse(code as u16, 5)), 5);
        bits.put(d & ((1 << extra) - 1), extra);
    }
}

#[inline(always)]
fn word_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[inline(always)]
fn hash(word: u32) -> usize {
    (word.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize
}

/// The reversed 8-bit fixed code of each byte below 144 (0 above: those
/// take 9 bits and go through `Bits::symbol`).
const LITERAL8: [u8; 256] = literal8();

const fn literal8() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 144 {
        table[byte] = LITERALS[byte].0 as u8;
        byte += 1;
    }
    table
}

/// Writes `run` as literals: four 8-bit codes at a time while the bytes are
/// below 144 (all of ASCII, so nearly all of a JSON state).
#[inline]
fn put_literals(bits: &mut Bits, run: &[u8]) {
    let mut chunks = run.chunks_exact(4);
    for chunk in &mut chunks {
        if chunk.iter().all(|&b| b < 144) {
            let codes = u32::from_le_bytes([
                LITERAL8[usize::from(chunk[0])],
                LITERAL8[usize::from(chunk[1])],
                LITERAL8[usize::from(chunk[2])],
                LITERAL8[usize::from(chunk[3])],
            ]);
            bits.put(codes, 32);
        } else {
            for &b in chunk {
                bits.symbol(b.into());
            }
        }
    }
    for &b in chunks.remainder() {
        bits.symbol(b.into());
    }
}

/// How many bytes from `a` and `b` on are equal, up to `limit`.
#[inline]
fn match_length(data: &[u8], a: usize, b: usize, limit: usize) -> usize {
    let mut len = 0;
    while len + 8 <= limit {
        let x = u64::from_le_bytes(data[a + len..a + len + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(data[b + len..b + len + 8].try_into().unwrap_or([0; 8]));
        let diff = x ^ y;
        if diff != 0 {
            return len + (diff.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    while len < limit && data[a + len] == data[b + len] {
        len += 1;
    }
    len
}

/// `data` as a zlib stream (header, one fixed-code block, Adler-32).
pub fn zlib_fixed(data: &[u8]) -> Vec<u8> {
    let mut bits = Bits {
        out: Vec::with_capacity(data.len() + data.len() / 8 + 16),
        acc: 0,
        count: 0,
    };
    // CMF: deflate with a 32K window; FLG: fastest level, check bits.
    bits.out.extend_from_slice(&[0x78, 0x01]);
    bits.put(1, 1); // the final block
    bits.put(1, 2); // fixed Huffman codes
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        // Literals from `pending` to `i` are written when a match (or the
        // end) comes, as one run.
        let mut pending = 0;
        let mut i = 0;
        while i + MIN_MATCH <= data.len() {
            let word = word_at(data, i);
            let h = hash(word);
            let candidate = table[h] as usize;
            table[h] = i as u32;
            if candidate < i && i - candidate <= WINDOW && word_at(data, candidate) == word {
                let limit = (data.len() - i).min(MAX_MATCH);
                let len = MIN_MATCH
                    + match_length(
                        data,
                        candidate + MIN_MATCH,
                        i + MIN_MATCH,
                        limit - MIN_MATCH,
                    );
                put_literals(&mut bits, &data[pending..i]);
                put_match(&mut bits, len, i - candidate);
                i += len;
                pending = i;
            } else {
                i += 1;
            }
        }
        put_literals(&mut bits, &data[pending..]);
    });
    bits.symbol(256); // end of block
    let mut out = bits.finish();
    out.extend_from_slice(&libdeflater::adler32(data).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(data: &[u8], size: usize) -> Vec<u8> {
        let mut out = vec![0u8; size + 16];
        let n = libdeflater::Decompressor::new()
            .zlib_decompress(data, &mut out)
            .unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn streams_decode_to_the_data_for_every_match_length_and_distance() {
        let mut seed = 12345u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..300 {
            let len = (next() % 5000) as usize;
            let alphabet = 1 + (round % 40) as u64;
            let mut data: Vec<u8> = Vec::with_capacity(len);
            while data.len() < len {
                if data.len() > 10 && next() % 3 == 0 {
                    let back = 1 + (next() as usize % data.len().min(40_000));
                    let run = (next() % 300) as usize;
                    for _ in 0..run {
                        data.push(data[data.len() - back]);
                    }
                } else {
                    data.push(b' ' + (next() % alphabet) as u8 * 3);
                }
            }
            data.truncate(len);
            assert_eq!(inflate(&zlib_fixed(&data), len), data, "round {round}");
        }
        assert_eq!(inflate(&zlib_fixed(b""), 0), b"");
        assert_eq!(
            inflate(&zlib_fixed(&[0u8; 100_000]), 100_000),
            vec![0u8; 100_000]
        );
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(inflate(&zlib_fixed(&all), 256), all);
    }
}
