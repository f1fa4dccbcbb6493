//! The vault's cryptography: envelope encryption with XChaCha20-Poly1305 (RustCrypto).
//!
//! A value is encrypted under a fresh random 256-bit data key with a fresh random 192-bit
//! nonce; the associated data is the secret's id and version, so a ciphertext copied to
//! another row (or another version) fails to decrypt. The data key is then encrypted
//! ("wrapped") under the master key with its own random nonce, its associated data binding it
//! to the same id and version and to the master key's id. XChaCha's 192-bit nonces make random
//! nonces safe at any volume a vault sees. Decryption verifies both tags before any plaintext
//! exists, so tampering yields an error, never a wrong value.
//!
//! Key material lives in `Zeroizing` buffers (wiped on drop); the AEAD types wipe their own
//! key copies on drop. A master key is known elsewhere only by its id: a one-way fingerprint
//! (HMAC-SHA256 of a fixed label under the key, first 8 bytes in hex), safe to store and show.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 24;
const VALUE_AAD: &[u8] = b"architect/vault/value/v1";
const WRAP_AAD: &[u8] = b"architect/vault/data-key/v1";
const KEY_ID_LABEL: &[u8] = b"architect/vault/key-id/v1";

/// Why a cryptographic operation failed. Carries no key or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The row was wrapped under a master key that is not loaded.
    #[error("master key {0} is not loaded")]
    KeyNotLoaded(String),
    /// A tag did not verify, or a stored field has the wrong length.
    #[error("integrity check failed")]
    Integrity,
}

/// A master key and its fingerprint.
pub struct MasterKey {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// What a key text must look like, for error messages (never echoing the text).
pub const KEY_FORMAT: &str =
    "32 random bytes as base64 (44 characters) or hex (64 characters), e.g. from `openssl rand -base64 32`";

impl MasterKey {
    /// A new random key.
    pub fn generate() -> MasterKey {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        MasterKey::from_key(key)
    }

    fn from_key(key: Zeroizing<[u8; KEY_LEN]>) -> MasterKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref())
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).expect("fixed"));
        mac.update(KEY_ID_LABEL);
        let digest = mac.finalize().into_bytes();
        MasterKey {
            id: hex::encode(&digest[..8]),
            key,
        }
    }

    /// Parses a key given as base64 (standard or URL-safe, padded or not) or hex. The error
    /// says what is expected and never repeats the input.
    pub fn parse(text: &str) -> Result<MasterKey, String> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        use base64::Engine;
        let t = text.trim();
        let mut bytes: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
        if t.len() == 2 * KEY_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Ok(b) = hex::decode(t) {
                *bytes = b;
            }
        } else {
            for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                if let Ok(b) = engine.decode(t) {
                    *bytes = b;
                    break;
                }
            }
        }
        if bytes.len() != KEY_LEN {
            return Err(format!("expected {KEY_FORMAT}"));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&bytes);
        Ok(MasterKey::from_key(key))
    }

    /// The key as base64 text, the format of key files and of ARCHITECT_MASTER_KEY.
    pub fn encode(&self) -> Zeroizing<String> {
        use base64::Engine;
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.key.as_ref()))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.key.as_ref()))
    }
}

/// The master keys a process may decrypt with, looked up by id. Keys are shared, never
/// copied, when a keyring is widened or narrowed (rotation).
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    keys: Vec<Arc<MasterKey>>,
}

impl Keyring {
    pub fn new(keys: Vec<MasterKey>) -> Keyring {
        Keyring {
            keys: keys.into_iter().map(Arc::new).collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id).map(|k| k.as_ref())
    }

    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// This keyring plus `key`.
    pub fn with(&self, key: Arc<MasterKey>) -> Keyring {
        let mut keys = self.keys.clone();
        keys.retain(|k| k.id != key.id);
        keys.push(key);
        Keyring { keys }
    }

    /// Only the key `id` (empty if it is not here).
    pub fn only(&self, id: &str) -> Keyring {
        Keyring {
            keys: self.keys.iter().filter(|k| k.id == id).cloned().collect(),
        }
    }

    /// Every key but `id`.
    pub fn without(&self, id: &str) -> Keyring {
        Keyring {
            keys: self.keys.iter().filter(|k| k.id != id).cloned().collect(),
        }
    }
}

/// Where a ciphertext belongs: part of both associated-data strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub secret_id: i64,
    pub version: i64,
}

impl Binding {
    fn value_aad(self) -> Vec<u8> {
        let mut aad = VALUE_AAD.to_vec();
        aad.extend_from_slice(&self.secret_id.to_be_bytes());
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad
    }

    fn wrap_aad(self, master_key_id: &str) -> Vec<u8> {
        let mut aad = WRAP_AAD.to_vec();
        aad.extend_from_slice(&self.secret_id.to_be_bytes());
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad.extend_from_slice(master_key_id.as_bytes());
        aad
    }
}

/// One encrypted value as stored: nothing in it is secret without the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    pub key_nonce: Vec<u8>,
    pub master_key_id: String,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Envelope({} bytes under key {})",
            self.ciphertext.len(),
            self.master_key_id
        )
    }
}

/// A new data key wrapped under `master`: the data key's plaintext never leaves this module.
pub struct WrappedKey {
    pub wrapped_key: Vec<u8>,
    pub key_nonce: Vec<u8>,
}

fn random_nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

fn wrap(
    master: &MasterKey,
    at: Binding,
    data_key: &[u8; KEY_LEN],
) -> Result<WrappedKey, CryptoError> {
    let nonce = random_nonce();
    let aad = at.wrap_aad(&master.id);
    let wrapped_key = master
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: data_key,
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::Integrity)?;
    Ok(WrappedKey {
        wrapped_key,
        key_nonce: nonce.to_vec(),
    })
}

fn unwrap(
    keys: &Keyring,
    at: Binding,
    env: &Envelope,
) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let master = keys
        .get(&env.master_key_id)
        .ok_or_else(|| CryptoError::KeyNotLoaded(env.master_key_id.clone()))?;
    if env.key_nonce.len() != NONCE_LEN {
        return Err(CryptoError::Integrity);
    }
    let aad = at.wrap_aad(&master.id);
    let plain = Zeroizing::new(
        master
            .cipher()
            .decrypt(
                XNonce::from_slice(&env.key_nonce),
                Payload {
                    msg: &env.wrapped_key,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Integrity)?,
    );
    if plain.len() != KEY_LEN {
        return Err(CryptoError::Integrity);
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&plain);
    Ok(key)
}

/// Encrypts `plaintext` for `at` under a new data key wrapped by `master`.
pub fn seal(master: &MasterKey, at: Binding, plaintext: &[u8]) -> Result<Envelope, CryptoError> {
    let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rngs::OsRng.fill_bytes(data_key.as_mut());
    let nonce = random_nonce();
    let aad = at.value_aad();
    let ciphertext = XChaCha20Poly1305::new(Key::from_slice(data_key.as_ref()))
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::Integrity)?;
    let wrapped = wrap(master, at, &data_key)?;
    Ok(Envelope {
        ciphertext,
        nonce: nonce.to_vec(),
        wrapped_key: wrapped.wrapped_key,
        key_nonce: wrapped.key_nonce,
        master_key_id: master.id.clone(),
    })
}

/// Decrypts an envelope stored for `at`, with whichever loaded master key wrapped it. The
/// plaintext is returned in a buffer that is wiped when dropped.
pub fn open(
    keys: &Keyring,
    at: Binding,
    env: &Envelope,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let data_key = unwrap(keys, at, env)?;
    if env.nonce.len() != NONCE_LEN {
        return Err(CryptoError::Integrity);
    }
    let aad = at.value_aad();
    XChaCha20Poly1305::new(Key::from_slice(data_key.as_ref()))
        .decrypt(
            XNonce::from_slice(&env.nonce),
            Payload {
                msg: &env.ciphertext,
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Integrity)
}

/// Re-wraps an envelope's data key under `to` (rotation): the value ciphertext is untouched,
/// so this costs two small AEAD operations whatever the value's size.
pub fn rewrap(
    keys: &Keyring,
    to: &MasterKey,
    at: Binding,
    env: &Envelope,
) -> Result<WrappedKey, CryptoError> {
    let data_key = unwrap(keys, at, env)?;
    wrap(to, at, &data_key)
}

/// Wipes a plaintext byte buffer that is being given up (e.g. after a failed UTF-8 check).
pub fn wipe(mut bytes: Vec<u8>) {
    bytes.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Binding = Binding {
        secret_id: 7,
        version: 2,
    };

    fn ring(k: MasterKey) -> Keyring {
        Keyring::new(vec![k])
    }

    #[test]
    fn round_trip_with_fresh_nonces_and_keys() {
        let k = MasterKey::generate();
        let a = seal(&k, AT, b"hunter2").unwrap();
        let b = seal(&k, AT, b"hunter2").unwrap();
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.wrapped_key, b.wrapped_key);
        assert!(!a.ciphertext.windows(7).any(|w| w == b"hunter2"));
        let keys = ring(k);
        assert_eq!(&open(&keys, AT, &a).unwrap()[..], b"hunter2");
    }

    #[test]
    fn any_tampering_is_an_error() {
        let k = MasterKey::generate();
        let env = seal(&k, AT, b"value").unwrap();
        let keys = ring(k);
        let flip = |v: &mut Vec<u8>| v[0] ^= 1;
        let mut cases = Vec::new();
        for field in 0..4 {
            let mut e = env.clone();
            match field {
                0 => flip(&mut e.ciphertext),
                1 => flip(&mut e.nonce),
                2 => flip(&mut e.wrapped_key),
                _ => flip(&mut e.key_nonce),
            }
            cases.push((AT, e));
        }
        // The same envelope read as another secret or another version.
        for other in [
            Binding {
                secret_id: 8,
                version: 2,
            },
            Binding {
                secret_id: 7,
                version: 3,
            },
        ] {
            cases.push((other, env.clone()));
        }
        let mut short = env.clone();
        short.nonce.truncate(3);
        cases.push((AT, short));
        for (at, e) in cases {
            assert_eq!(open(&keys, at, &e).unwrap_err(), CryptoError::Integrity);
        }
        let mut unknown = env.clone();
        unknown.master_key_id = "0000000000000000".into();
        assert!(matches!(
            open(&keys, AT, &unknown),
            Err(CryptoError::KeyNotLoaded(_))
        ));
    }

    #[test]
    fn rewrap_moves_the_data_key_to_a_new_master_key() {
        let old = MasterKey::generate();
        let new = MasterKey::generate();
        let mut env = seal(&old, AT, b"v").unwrap();
        let w = rewrap(
            &ring(MasterKey::parse(&old.encode()).unwrap()),
            &new,
            AT,
            &env,
        )
        .unwrap();
        env.wrapped_key = w.wrapped_key;
        env.key_nonce = w.key_nonce;
        env.master_key_id = new.id().to_string();
        assert_eq!(open(&ring(new), AT, &env).unwrap().as_slice(), b"v");
        assert!(open(&ring(old), AT, &env).is_err());
    }

    #[test]
    fn keys_parse_from_base64_or_hex_and_ids_are_stable() {
        let k = MasterKey::generate();
        let text = k.encode();
        let again = MasterKey::parse(&format!("  {}\n", text.as_str())).unwrap();
        assert_eq!(again.id(), k.id());
        assert_eq!(k.id().len(), 16);
        let hex_text = hex::encode([7u8; 32]);
        assert!(MasterKey::parse(&hex_text).is_ok());
        for bad in ["", "short", &"A".repeat(100)] {
            let e = MasterKey::parse(bad).unwrap_err();
            assert!(e.contains("base64"), "{e}");
        }
        assert!(!format!("{k:?}").contains(text.as_str()));
    }
}
