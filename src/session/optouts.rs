//! Opt-outs: the phones that sent STOP, and since when, kept until they send
//! START. Nothing is sent to such a phone in between.
//!
//! One sled tree, `optouts`: key the E.164 phone, value [`codec::OPT_OUT_V1`]
//! followed by the opt-out time in ms since the epoch (u64 big-endian). It
//! sits beside the sessions tree, not inside a session, because an opt-out
//! outlives the session TTL and strangers (who have no session) opt out too;
//! the session format is unchanged by it. Only [`super::SessionStore`] opens
//! it, and nothing outside `session` sees a sled type.
//!
//! Every message asks whether its phone opted out, so the answer comes from
//! a map in memory, loaded once at open and changed only with the tree
//! (opt-outs are few: one entry per phone that sent STOP, about 40 bytes).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::StoreError;
use super::codec::{self, CodecError};
use crate::phone::PhoneNumber;

const TREE: &str = "optouts";

fn encode(at_ms: u64) -> [u8; 9] {
    let mut bytes = [0u8; 9];
    bytes[0] = codec::OPT_OUT_V1;
    bytes[1..].copy_from_slice(&at_ms.to_be_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Result<u64, CodecError> {
    match bytes.split_first() {
        Some((&codec::OPT_OUT_V1, rest)) => {
            rest.try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| CodecError::Corrupt {
                    what: "opt-out",
                    reason: format!("{} bytes", bytes.len()),
                })
        }
        Some((&found, _)) => Err(CodecError::UnknownVersion {
            what: "opt-out",
            found,
            expected: codec::OPT_OUT_V1,
        }),
        None => Err(CodecError::Empty),
    }
}

/// The opted-out phones of a store.
pub(super) struct OptOuts {
    tree: sled::Tree,
    /// The tree's contents: phone → when it opted out.
    phones: RwLock<HashMap<PhoneNumber, u64>>,
}

impl OptOuts {
    pub(super) fn open(db: &sled::Db) -> Result<OptOuts, StoreError> {
        let tree = db.open_tree(TREE)?;
        let mut opt_outs = OptOuts {
            tree,
            phones: RwLock::new(HashMap::new()),
        };
        let phones = opt_outs.all().collect::<Result<HashMap<_, _>, _>>()?;
        opt_outs.phones = RwLock::new(phones);
        Ok(opt_outs)
    }

    /// When `phone` opted out, if it has.
    pub(super) fn since(&self, phone: &PhoneNumber) -> Result<Option<u64>, StoreError> {
        let phones = self.phones.read().unwrap_or_else(PoisonError::into_inner);
        Ok(phones.get(phone).copied())
    }

    /// Records that `phone` opted out at `at_ms` (replacing an earlier time).
    pub(super) fn insert(&self, phone: &PhoneNumber, at_ms: u64) -> Result<(), StoreError> {
        self.tree
            .insert(phone.e164().as_bytes(), &encode(at_ms)[..])?;
        self.phones
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(*phone, at_ms);
        Ok(())
    }

    /// Forgets the opt-out of `phone`; whether there was one.
    pub(super) fn remove(&self, phone: &PhoneNumber) -> Result<bool, StoreError> {
        let removed = self.tree.remove(phone.e164().as_bytes())?.is_some();
        self.phones
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(phone);
        Ok(removed)
    }

    pub(super) fn count(&self) -> u64 {
        let phones = self.phones.read().unwrap_or_else(PoisonError::into_inner);
        phones.len() as u64
    }

    /// Every opt-out in phone order; a key that is not a phone is an error.
    pub(super) fn all(&self) -> impl Iterator<Item = Result<(PhoneNumber, u64), StoreError>> + '_ {
        self.tree.iter().map(|item| {
            let (key, bytes) = item?;
            let phone = std::str::from_utf8(&key)
                .ok()
                .and_then(PhoneNumber::from_stored)
                .ok_or_else(|| CodecError::Corrupt {
                    what: "opt-out",
                    reason: format!("its key is not a phone number ({} bytes)", key.len()),
                })?;
            Ok((phone, decode(&bytes)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_name_an_unknown_version() {
        assert_eq!(decode(&encode(1_764_000_000_000)), Ok(1_764_000_000_000));
        let mut newer = encode(5);
        newer[0] = 9;
        assert!(matches!(
            decode(&newer),
            Err(CodecError::UnknownVersion { found: 9, .. })
        ));
        assert!(matches!(
            decode(&encode(5)[..4]),
            Err(CodecError::Corrupt { .. })
        ));
        assert_eq!(decode(&[]), Err(CodecError::Empty));
    }
}
