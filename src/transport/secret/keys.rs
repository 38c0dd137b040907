//! The key schedule (SPEC, "Secret channel"): from SPAKE2's 32-byte key K,
//! HKDF-SHA256 with no salt and four `info` strings gives the two
//! confirmation tags and the two record keys. Nothing here is hand-made
//! cryptography: HKDF is the `hkdf` crate's.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

const CLIENT_CONFIRM: &[u8] = b"duplex-secret-1 client confirm";
const SERVER_CONFIRM: &[u8] = b"duplex-secret-1 server confirm";
const CLIENT_TO_SERVER: &[u8] = b"duplex-secret-1 client to server";
const SERVER_TO_CLIENT: &[u8] = b"duplex-secret-1 server to client";

/// Everything derived from K. Zeroed when dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Keys {
    /// Tc: the client proves it knows the secret.
    pub client_confirm: [u8; 32],
    /// Ts: the server proves it, once the client has.
    pub server_confirm: [u8; 32],
    /// Kcs: seals the records from client to server.
    pub client_to_server: [u8; 32],
    /// Ksc: seals the records from server to client.
    pub server_to_client: [u8; 32],
}

impl Keys {
    /// Derives the four values from K.
    pub fn derive(k: &[u8]) -> Keys {
        let hkdf = Hkdf::<Sha256>::new(None, k);
        let expand = |info: &[u8]| {
            let mut out = [0; 32];
            // 32 bytes is far below HKDF-SHA256's limit of 255 * 32: this
            // cannot fail, and if it somehow did the tags would not match.
            if hkdf.expand(info, &mut out).is_err() {
                tracing::error!("HKDF refused a 32-byte output");
            }
            out
        };
        Keys {
            client_confirm: expand(CLIENT_CONFIRM),
            server_confirm: expand(SERVER_CONFIRM),
            client_to_server: expand(CLIENT_TO_SERVER),
            server_to_client: expand(SERVER_TO_CLIENT),
        }
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys never reach a log.
        f.write_str("Keys(..)")
    }
}
