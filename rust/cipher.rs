//! AES-GCM encryption of stored-event state, laid out exactly as
//! eventsourcing's `AESCipher` writes it: `nonce(12) || tag(16) || ciphertext`,
//! so that each library decrypts what the other wrote.
//!
//! Keys of 16, 24 or 32 bytes select AES-128, -192 or -256. Each encryption
//! takes a fresh random nonce from the operating system's CSPRNG (one
//! `getrandom` call fills the nonces of a whole batch). Decryption tries the
//! current key, then any old keys (key rotation). Key material lives only in
//! the cipher objects, which are zeroed on drop; it is never formatted into
//! a message or a repr.

use std::sync::Arc;

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{consts::U12, AeadInOut, KeyInit};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce, Tag};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{error, ErrorKind};

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

type Aes192Gcm = aes_gcm::AesGcm<Aes192, U12>;

/// One AES-GCM key, its schedule precomputed.
enum Key {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<Aes192Gcm>),
    Aes256(Box<Aes256Gcm>),
}

macro_rules! with_aead {
    ($key:expr, $aead:ident => $body:expr) => {
        match $key {
            Key::Aes128($aead) => $body,
            Key::Aes192($aead) => $body,
            Key::Aes256($aead) => $body,
        }
    };
}

impl Key {
    fn new(bytes: &[u8]) -> Result<Key, String> {
        let wrong = |_| "invalid AES key".to_owned();
        Ok(match bytes.len() {
            16 => Key::Aes128(Box::new(Aes128Gcm::new_from_slice(bytes).map_err(wrong)?)),
            24 => Key::Aes192(Box::new(Aes192Gcm::new_from_slice(bytes).map_err(wrong)?)),
            32 => Key::Aes256(Box::new(Aes256Gcm::new_from_slice(bytes).map_err(wrong)?)),
            n => {
                return Err(format!(
                    "an AES key must be 16, 24 or 32 bytes, not {n} bytes"
                ))
            }
        })
    }

    fn size(&self) -> usize {
        match self {
            Key::Aes128(_) => 16,
            Key::Aes192(_) => 24,
            Key::Aes256(_) => 32,
        }
    }

    /// Appends `nonce || tag || ciphertext` of `plaintext` (authenticated
    /// with `aad`, empty unless states are bound to events) to `out`.
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let start = out.len();
        out.extend_from_slice(nonce);
        out.resize(start + OVERHEAD + plaintext.len(), 0);
        let (head, body) = out[start..].split_at_mut(OVERHEAD);
        let buf = InOutBuf::new(plaintext, body).map_err(|_| "buffer size".to_owned())?;
        let nonce = Nonce::<U12>::from(*nonce);
        let tag = with_aead!(self, aead => aead.encrypt_inout_detached(&nonce, aad, buf))
            .map_err(|_| "the state is too large for AES-GCM".to_owned())?;
        head[NONCE_LEN..].copy_from_slice(tag.as_slice());
        Ok(())
    }

    /// The plaintext of `nonce || tag || ciphertext`, if this key wrote it
    /// with this associated data.
    fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (tag, ciphertext) = rest.split_at(TAG_LEN);
        let nonce = Nonce::<U12>::try_from(nonce).ok()?;
        let tag = Tag::try_from(tag).ok()?;
        let mut out = vec![0u8; ciphertext.len()];
        let buf = InOutBuf::new(ciphertext, &mut out).ok()?;
        with_aead!(self, aead => aead.decrypt_inout_detached(&nonce, aad, buf, &tag))
            .ok()
            .map(|()| out)
    }
}

/// The write key and the keys tried on read (the write key first).
pub struct Keys {
    keys: Vec<Key>,
}

impl Keys {
    /// `current` encrypts; `current` then each of `old` decrypt.
    pub fn new(current: &[u8], old: &[&[u8]]) -> Result<Keys, String> {
        let mut keys = vec![Key::new(current).map_err(|e| format!("the cipher key: {e}"))?];
        for (i, key) in old.iter().enumerate() {
            keys.push(Key::new(key).map_err(|e| format!("old cipher key {}: {e}", i + 1))?);
        }
        Ok(Keys { keys })
    }

    pub fn key_size(&self) -> usize {
        self.keys[0].size()
    }

    pub fn old_keys(&self) -> usize {
        self.keys.len() - 1
    }

    /// `nonce || tag || ciphertext` of each plaintext, each with its own
    /// random nonce, and its associated data in `aads` (none if empty).
    pub fn encrypt_all(
        &self,
        plaintexts: &[&[u8]],
        aads: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut nonces = vec![0u8; NONCE_LEN * plaintexts.len()];
        random_fill(&mut nonces)?;
        plaintexts
            .iter()
            .zip(nonces.chunks_exact(NONCE_LEN))
            .enumerate()
            .map(|(i, (plaintext, nonce))| {
                let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
                let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| "nonce".to_owned())?;
                let aad = aads.get(i).map_or(&[][..], Vec::as_slice);
                self.keys[0].seal(nonce, plaintext, aad, &mut out)?;
                Ok(out)
            })
            .collect()
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        random_fill(&mut nonce)?;
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        self.keys[0].seal(&nonce, plaintext, b"", &mut out)?;
        Ok(out)
    }

    /// The plaintext, or why there is none (never naming a key). `aad` is
    /// the associated data it was sealed with (empty unless bound).
    pub fn decrypt(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < OVERHEAD {
            return Err(format!(
                "ciphertext is damaged: {} bytes is too short for AES-GCM \
                 (nonce and tag alone take {OVERHEAD})",
                sealed.len()
            ));
        }
        self.keys
            .iter()
            .find_map(|key| key.open(sealed, aad))
            .ok_or_else(|| {
                let tried = match self.keys.len() {
                    1 => "the cipher key".to_owned(),
                    n => format!("the cipher key and {} old key(s)", n - 1),
                };
                format!(
                    "ciphertext is damaged or was encrypted with another key: \
                     authentication failed with {tried}"
                )
            })
    }
}

fn random_fill(buf: &mut [u8]) -> Result<(), String> {
    getrandom::fill(buf).map_err(|e| format!("the OS random number generator failed: {e}"))
}

/// AES-GCM with a key (and optional old keys for reading), as used by
/// `esox.persistence.cipher.AESCipher`. Never shows its keys.
#[pyclass(module = "esox._core", frozen, name = "AesGcm")]
pub struct AesGcm {
    pub keys: Arc<Keys>,
}

#[pymethods]
impl AesGcm {
    /// `key` (16, 24 or 32 bytes) encrypts and decrypts; each of `old_keys`
    /// only decrypts. CipherKeyError if any is of the wrong size.
    #[new]
    #[pyo3(signature = (key, old_keys = Vec::new()))]
    fn new(py: Python<'_>, key: &[u8], old_keys: Vec<Vec<u8>>) -> PyResult<Self> {
        let old: Vec<&[u8]> = old_keys.iter().map(Vec::as_slice).collect();
        let keys = Keys::new(key, &old).map_err(|e| error(py, ErrorKind::CipherKey, e))?;
        Ok(AesGcm {
            keys: Arc::new(keys),
        })
    }

    /// The size of the write key in bytes (16, 24 or 32).
    #[getter]
    fn key_size(&self) -> usize {
        self.keys.key_size()
    }

    /// `nonce || tag || ciphertext`, with a fresh random nonce.
    fn encrypt<'py>(&self, py: Python<'py>, plaintext: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let keys = &self.keys;
        let out = if plaintext.len() >= crate::mapper::DETACH_BYTES {
            py.detach(|| crate::mapper::no_panic(|| keys.encrypt(plaintext)))
        } else {
            crate::mapper::no_panic(|| keys.encrypt(plaintext))
        };
        out.map(|b| PyBytes::new(py, &b))
            .map_err(|e| error(py, ErrorKind::Persistence, e))
    }

    /// The plaintext; MapperDeserialisationError if the data is damaged or
    /// was encrypted with none of the keys.
    fn decrypt<'py>(&self, py: Python<'py>, ciphertext: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let keys = &self.keys;
        let out = if ciphertext.len() >= crate::mapper::DETACH_BYTES {
            py.detach(|| crate::mapper::no_panic(|| keys.decrypt(ciphertext, b"")))
        } else {
            crate::mapper::no_panic(|| keys.decrypt(ciphertext, b""))
        };
        out.map(|b| PyBytes::new(py, &b))
            .map_err(|e| error(py, ErrorKind::MapperDeserialisation, e))
    }

    fn __repr__(&self) -> String {
        format!(
            "AesGcm(key_size={}, old_keys={})",
            self.keys.key_size(),
            self.keys.old_keys()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_size_round_trips_with_fresh_nonces() {
        for size in [16, 24, 32] {
            let keys = Keys::new(&vec![9u8; size], &[]).unwrap();
            let a = keys.encrypt(b"attack at dawn").unwrap();
            let b = keys.encrypt(b"attack at dawn").unwrap();
            assert_eq!(a.len(), OVERHEAD + 14);
            assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
            assert_eq!(keys.decrypt(&a, b"").unwrap(), b"attack at dawn");
            let all = keys.encrypt_all(&[b"x", b"", b"yz"], &[]).unwrap();
            let back: Vec<Vec<u8>> = all.iter().map(|s| keys.decrypt(s, b"").unwrap()).collect();
            assert_eq!(back, vec![b"x".to_vec(), vec![], b"yz".to_vec()]);
        }
    }

    #[test]
    fn wrong_keys_sizes_and_tampering_are_errors_that_never_show_a_key() {
        let keys = Keys::new(&[1u8; 32], &[]).unwrap();
        let other = Keys::new(&[2u8; 32], &[]).unwrap();
        let sealed = keys.encrypt(b"secret").unwrap();
        assert!(other
            .decrypt(&sealed, b"")
            .unwrap_err()
            .contains("authentication failed"));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert!(keys.decrypt(&bad, b"").is_err());
        }
        for cut in 0..sealed.len() {
            assert!(keys.decrypt(&sealed[..cut], b"").is_err());
        }
        let err = Keys::new(&[0x41u8; 20], &[]).err().unwrap();
        assert!(err.contains("not 20 bytes") && !err.contains("AAAA"));
    }

    #[test]
    fn associated_data_must_match() {
        let keys = Keys::new(&[3u8; 32], &[]).unwrap();
        let aads = vec![b"id 1 topic".to_vec()];
        let sealed = keys.encrypt_all(&[b"state"], &aads).unwrap();
        assert_eq!(keys.decrypt(&sealed[0], b"id 1 topic").unwrap(), b"state");
        assert!(keys.decrypt(&sealed[0], b"id 2 topic").is_err());
        assert!(keys.decrypt(&sealed[0], b"").is_err());
    }

    #[test]
    fn old_keys_still_decrypt_after_rotation() {
        let old = Keys::new(&[1u8; 16], &[]).unwrap();
        let sealed = old.encrypt(b"kept").unwrap();
        let rotated = Keys::new(&[2u8; 32], &[&[1u8; 16]]).unwrap();
        assert_eq!(rotated.decrypt(&sealed, b"").unwrap(), b"kept");
        assert_eq!(rotated.old_keys(), 1);
    }
}
