//! The stored form of everything Roster keeps in sled: bincode 2 (serde) in
//! a versioned envelope.
//!
//! The first byte of every value is its format version. bincode is not
//! self-describing and has no schema evolution, so a changed type gets a new
//! version and the old one stays decodable (freeze `SessionV1`, add
//! `SessionV2`, migrate on read). An unknown version is an error that names
//! it, never a silent reset.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Format version of a [`super::record::PhoneRecord`]: the session (as in
/// [`SESSION_V1`]), limits, opt-out and remembered replies of one phone.
pub const RECORD_V1: u8 = 1;
/// A [`RECORD_V1`] record compressed with LZ4 (block format, its length
/// before it): what is written since; both are read.
pub const RECORD_V2: u8 = 2;
/// Format version of [`crate::conversation::Session`] values, as stored on
/// their own before phone records and inside a record since (see
/// [`crate::conversation::STORED_VERSION`] for what changes it).
pub const SESSION_V1: u8 = 1;
/// Before phone records: format version of remembered replies (duplicate deliveries) written
/// before they named the phone they answered; still read, never answered.
pub const SEEN_V1: u8 = 1;
/// Before phone records: format version of remembered replies with the phone they answered.
pub const SEEN_V2: u8 = 2;
/// Format version of the stored record count.
pub const COUNT_V1: u8 = 1;
/// Before phone records: format version of an opt-out (a phone that sent STOP).
pub const OPT_OUT_V1: u8 = 1;
/// Before phone records: format version of rate-limit state.
pub const LIMIT_V1: u8 = 1;

/// Largest value we will decode; far above any real session.
pub const MAX_DECODE_BYTES: usize = 4 * 1024 * 1024;

/// Why stored bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("empty stored value")]
    Empty,
    #[error(
        "stored {what} has format version {found}, but this roster reads only version {expected}; \
         it was written by a newer roster: upgrade, or restore a backup made by this version"
    )]
    UnknownVersion {
        what: &'static str,
        found: u8,
        expected: u8,
    },
    /// For values of which this version reads several formats (records).
    #[error(
        "stored {what} has format version {found}, but this roster reads only version 1 to version {newest}; \
         it was written by a newer roster: upgrade, or restore a backup made by this version"
    )]
    NewerVersion {
        what: &'static str,
        found: u8,
        newest: u8,
    },
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
}

/// `version` followed by the bincode of `value`.
pub fn encode<T: Serialize>(version: u8, value: &T) -> Vec<u8> {
    encode_sized(version, value, 64)
}

/// [`encode`] into a buffer of `capacity` bytes to begin with: a value of
/// many kilobytes (a phone record) would otherwise be copied each time the
/// buffer grows.
pub fn encode_sized<T: Serialize>(version: u8, value: &T, capacity: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(capacity.max(1));
    bytes.push(version);
    // Encoding plain structs into a Vec cannot fail short of running out of memory.
    bincode::serde::encode_into_std_write(value, &mut bytes, config())
        .expect("bincode encodes plain structs");
    bytes
}

/// Appends `value`'s bincode to `out`: bincode writes a struct as its fields
/// one after another, so a value appended field by field is the same bytes
/// as the whole.
pub fn append<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // As in `encode_sized`: plain structs into a Vec cannot fail.
    bincode::serde::encode_into_std_write(value, out, config())
        .expect("bincode encodes plain structs");
}

/// Decodes a value written by [`encode`] with `version`.
pub fn decode<T: DeserializeOwned>(
    what: &'static str,
    version: u8,
    bytes: &[u8],
) -> Result<T, CodecError> {
    let (&found, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if found != version {
        return Err(CodecError::UnknownVersion {
            what,
            found,
            expected: version,
        });
    }
    let (value, used) =
        bincode::serde::decode_from_slice(body, config()).map_err(|e| CodecError::Corrupt {
            what,
            reason: e.to_string(),
        })?;
    if used != body.len() {
        return Err(CodecError::Corrupt {
            what,
            reason: format!("{} trailing bytes", body.len() - used),
        });
    }
    Ok(value)
}

// The conversation types kept in a record are encoded as `SESSION_V1` says.
const _: () = assert!(SESSION_V1 == crate::conversation::STORED_VERSION);
