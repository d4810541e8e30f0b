//! Opaque, tamper-evident list cursors.
//!
//! A cursor is `base64url(json position) . base64url(HMAC-SHA256 tag)`. The
//! position is the sort key of the last item returned (for the default order
//! just its UUID v7 id), so a page boundary stays put whatever is inserted
//! meanwhile (keyset pagination — the rejected alternative, OFFSET, skips or
//! repeats rows under concurrent inserts). The HMAC key lives in the
//! database (`server_keys`) so every instance and every restart accept the
//! cursors the others issued.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{ApiError, Problem};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC-SHA256 tag a cursor carries (128 bits keep cursors
/// short and are far beyond guessing).
const TAG_BYTES: usize = 16;

#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

/// Where the next page starts: the order it belongs to and the last sort key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Name of the sort order; a cursor is refused under another order.
    #[serde(rename = "o")]
    pub order: String,
    /// Sort key values of the last item, as strings.
    #[serde(rename = "k")]
    pub key: Vec<String>,
    /// Digest of the path and filters the cursor was issued for
    /// (`routes::common::list_scope`); a cursor is refused on any other list.
    /// Cursors issued before the binding lack it and are refused too.
    #[serde(rename = "s", default)]
    pub scope: String,
}

impl CursorCodec {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn tag(&self, payload: &[u8]) -> Vec<u8> {
        // `new_from_slice` accepts any key length for HMAC.
        match HmacSha256::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(payload);
                mac.finalize().into_bytes()[..TAG_BYTES].to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    pub fn encode(&self, position: &Position) -> String {
        let payload = serde_json::to_vec(position).unwrap_or_default();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(self.tag(&payload)))
    }

    /// Decodes a cursor issued for `order` on the list `scope`; anything
    /// else is a `400`.
    pub fn decode(&self, cursor: &str, order: &str, scope: &str) -> Result<Position, ApiError> {
        let invalid =
            || ApiError::new(Problem::InvalidCursor, "The cursor is invalid; use next_cursor exactly as returned.");
        let (payload, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        let mut mac = HmacSha256::new_from_slice(&self.key).map_err(|_| invalid())?;
        mac.update(&payload);
        // `verify_truncated_left` alone accepts any prefix of the tag, down to
        // one byte (a 1-in-256 forgery); only a tag of the full issued length
        // is compared, in constant time over all its bytes.
        if tag.len() != TAG_BYTES {
            return Err(invalid());
        }
        mac.verify_truncated_left(&tag).map_err(|_| invalid())?;
        let position: Position = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        if position.order != order {
            return Err(invalid());
        }
        if position.scope != scope {
            return Err(ApiError::new(
                Problem::InvalidCursor,
                "The cursor belongs to another list: use it only on the path, filters and sort it was issued for.",
            ));
        }
        Ok(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos() -> Position {
        Position { order: "id_desc".into(), key: vec!["0193".into()], scope: "clients".into() }
    }

    #[test]
    fn round_trips() {
        let codec = CursorCodec::new(b"k");
        let c = codec.encode(&pos());
        assert_eq!(codec.decode(&c, "id_desc", "clients").unwrap(), pos());
    }

    #[test]
    fn tampered_or_foreign_cursors_are_invalid() {
        let codec = CursorCodec::new(b"k");
        let c = codec.encode(&pos());
        let mut bytes = c.clone().into_bytes();
        bytes[2] ^= 1;
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(codec.decode(&tampered, "id_desc", "clients").is_err());
        assert!(CursorCodec::new(b"other").decode(&c, "id_desc", "clients").is_err());
        assert!(codec.decode(&c, "name_asc", "clients").is_err());
        assert!(codec.decode(&c, "id_desc", "providers").is_err());
        assert!(codec.decode("garbage", "id_desc", "clients").is_err());
    }

    #[test]
    fn cursor_with_a_truncated_mac_is_invalid() {
        // Arrange: a genuine cursor whose tag is cut to its first byte.
        let codec = CursorCodec::new(b"k");
        let genuine = codec.encode(&pos());
        let (payload, tag) = genuine.split_once('.').unwrap();
        let tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
        let truncated = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&tag[..1]));
        let one_short = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES - 1]));

        // Act
        let one_byte = codec.decode(&truncated, "id_desc", "clients");
        let fifteen_bytes = codec.decode(&one_short, "id_desc", "clients");

        // Assert
        assert!(one_byte.is_err(), "a one-byte tag must not verify");
        assert!(fifteen_bytes.is_err(), "a tag one byte short must not verify");
        assert!(codec.decode(&genuine, "id_desc", "clients").is_ok());
    }
}
