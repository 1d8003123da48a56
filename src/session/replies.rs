//! Remembered replies: each `MessageSid` with the TwiML sent for it, kept for
//! `session.dedupe_ttl` (default 24 h) so that a redelivered message gets
//! the same answer and counts nothing twice.
//!
//! # One sled tree per window
//!
//! A reply is written to the tree of the window in which it was sent,
//! `replies:<window start ms>:<window length ms>`, keyed by its MessageSid
//! and the phone it answered (`MessageSid ‖ 0x00 ‖ E.164`), valued with the
//! phone, the TwiML and its own expiry (`sent + dedupe_ttl`, checked on
//! every read). A window is as long as the TTL, so a lookup consults at most
//! the current window and the one before it, and every reply in a window
//! has expired by `start + 2 × length`: then the sweeper drops the whole tree.
//!
//! Why not one record per reply in the sessions tree with an expiry index
//! beside it, as before: that cost two new keys per message (new keys are
//! what split sled's 16-item leaves) and two removals when it expired.
//! Dropping a tree costs nothing per reply. Expired replies stay on disk
//! for up to one more window.
//!
//! # Only ever to the phone it answered
//!
//! A reply is found by MessageSid **and** phone, and the phone stored in the
//! record is checked again on read: a MessageSid replayed from another phone
//! (even with a valid signature) is a new message for that phone, and the
//! first phone's reply, which may list members found for it, never goes to
//! anyone else. Records of format 1 ([`codec::SEEN_V1`], keyed by the
//! MessageSid alone, written before replies named their phone) answer a
//! redelivery only from the phone whose own session recorded an exchange
//! at the moment that reply was sent (within [`VOUCH_MS`]); a replay from
//! any other phone is a new message for that phone.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::codec;
use crate::phone::PhoneNumber;

const TREE_PREFIX: &str = "replies:";
/// How close a session entry's time must be to a format-1 reply's sending
/// time to show that the reply answered that session's phone: both are
/// taken within the same message's turn.
pub(crate) const VOUCH_MS: u64 = 2_000;
/// A window is dropped only this long after its last reply expired, so a
/// lookup that chose its windows a moment earlier never meets a dropped tree.
const DROP_GRACE_MS: u64 = 60_000;

/// A reply already sent for a MessageSid, kept for redeliveries: format 1
/// ([`codec::SEEN_V1`]), without the phone it answered. Only written by
/// Roster before replies named their phone; never answers a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenReply {
    /// The TwiML document that was answered.
    pub twiml: String,
    pub expires_at_ms: u64,
}

/// A reply already sent for a MessageSid to one phone: format 2
/// ([`codec::SEEN_V2`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneReply {
    /// The E.164 number the reply went to.
    pub phone: String,
    /// The TwiML document that was answered.
    pub twiml: String,
    pub expires_at_ms: u64,
}

/// What a stored record says, whichever format it has.
enum Record {
    /// Format 1: no phone.
    Anonymous(SeenReply),
    Phone(PhoneReply),
}

impl Record {
    fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
        const WHAT: &str = "remembered reply";
        match bytes.first() {
            Some(&codec::SEEN_V1) => Ok(Record::Anonymous(codec::decode(
                WHAT,
                codec::SEEN_V1,
                bytes,
            )?)),
            _ => Ok(Record::Phone(codec::decode(WHAT, codec::SEEN_V2, bytes)?)),
        }
    }

    fn into_live(self, now_ms: u64) -> Option<String> {
        let (twiml, expires_at_ms) = match self {
            Record::Anonymous(reply) => (reply.twiml, reply.expires_at_ms),
            Record::Phone(reply) => (reply.twiml, reply.expires_at_ms),
        };
        Some(twiml).filter(|_| expires_at_ms > now_ms)
    }
}

/// The key of the reply to `message_sid` sent to `phone`.
fn reply_key(message_sid: &str, phone: &PhoneNumber) -> Vec<u8> {
    let mut key = sid_prefix(message_sid);
    key.extend_from_slice(phone.e164().as_bytes());
    key
}

/// What the keys of every phone's reply to `message_sid` start with.
fn sid_prefix(message_sid: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(message_sid.len() + 17);
    key.extend_from_slice(message_sid.as_bytes());
    key.push(0);
    key
}

/// One window's tree.
#[derive(Clone)]
struct Window {
    start_ms: u64,
    length_ms: u64,
    tree: sled::Tree,
}

impl Window {
    fn name(start_ms: u64, length_ms: u64) -> String {
        format!("{TREE_PREFIX}{start_ms}:{length_ms}")
    }

    /// `(start, length)` from a tree name written by [`Window::name`].
    fn parse_name(name: &[u8]) -> Option<(u64, u64)> {
        let rest = std::str::from_utf8(name).ok()?.strip_prefix(TREE_PREFIX)?;
        let (start, length) = rest.split_once(':')?;
        Some((start.parse().ok()?, length.parse().ok()?))
    }

    /// Every reply written in this window has expired by then.
    fn all_expired_at(&self) -> u64 {
        self.start_ms
            .saturating_add(self.length_ms.saturating_mul(2))
    }

    /// Whether a reply sent at `at_ms` with `ttl_ms` belongs here: only a
    /// window as long as the TTL is dropped late enough for it.
    fn takes(&self, at_ms: u64, ttl_ms: u64) -> bool {
        self.length_ms == ttl_ms
            && self.start_ms <= at_ms
            && at_ms < self.start_ms.saturating_add(self.length_ms)
    }
}

/// The remembered replies of a store, in per-window sled trees.
pub struct RememberedReplies {
    db: sled::Db,
    ttl_ms: u64,
    /// Open windows, oldest first; replaced whole when one is added or dropped.
    windows: ArcSwap<Vec<Window>>,
    /// Serialises adding and dropping windows.
    changing: std::sync::Mutex<()>,
}

impl RememberedReplies {
    /// Opens the windows `db` has, for replies kept `ttl_ms`.
    pub fn open(db: &sled::Db, ttl_ms: u64) -> Result<RememberedReplies, StoreError> {
        let mut windows = Vec::new();
        for name in db.tree_names() {
            if let Some((start_ms, length_ms)) = Window::parse_name(&name) {
                let tree = db.open_tree(&name)?;
                windows.push(Window {
                    start_ms,
                    length_ms,
                    tree,
                });
            }
        }
        windows.sort_by_key(|w| w.start_ms);
        Ok(RememberedReplies {
            db: db.clone(),
            ttl_ms: ttl_ms.max(1),
            windows: ArcSwap::from_pointee(windows),
            changing: std::sync::Mutex::new(()),
        })
    }

    /// The TwiML sent to `phone` for `message_sid`, if it is remembered and
    /// unexpired. Replies to other phones are never returned. A format-1
    /// record names no phone: it is returned only when `answered_at` says
    /// this phone's own session recorded an exchange at the time the reply
    /// was sent, which a replay from another phone cannot show.
    pub fn get(
        &self,
        phone: &PhoneNumber,
        message_sid: &str,
        now_ms: u64,
        answered_at: impl Fn(u64) -> bool,
    ) -> Result<Option<String>, StoreError> {
        let key = reply_key(message_sid, phone);
        let e164 = phone.e164();
        let windows = self.windows.load();
        // Newest first: a redelivery usually follows its original closely.
        for window in windows.iter().rev() {
            if window.all_expired_at() <= now_ms {
                continue;
            }
            if let Some(bytes) = window.tree.get(&key)? {
                let record = Record::decode(&bytes)?;
                let answered_this_phone =
                    matches!(&record, Record::Phone(reply) if reply.phone == e164);
                return Ok(record.into_live(now_ms).filter(|_| answered_this_phone));
            }
            if let Some(bytes) = window.tree.get(message_sid.as_bytes())? {
                let record = Record::decode(&bytes)?;
                let vouched = matches!(&record, Record::Anonymous(reply)
                    if answered_at(reply.expires_at_ms.saturating_sub(self.ttl_ms)));
                return Ok(record.into_live(now_ms).filter(|_| vouched));
            }
        }
        Ok(None)
    }

    /// The TwiML remembered for `message_sid` sent to any phone, or kept
    /// without one (format 1): for inspection only, never to answer.
    pub fn get_any(&self, message_sid: &str, now_ms: u64) -> Result<Option<String>, StoreError> {
        let windows = self.windows.load();
        for window in windows.iter().rev() {
            if window.all_expired_at() <= now_ms {
                continue;
            }
            let anonymous = window.tree.get(message_sid.as_bytes())?;
            let phones = window.tree.scan_prefix(sid_prefix(message_sid)).values();
            for bytes in anonymous.into_iter().map(Ok).chain(phones) {
                if let Some(twiml) = Record::decode(&bytes?)?.into_live(now_ms) {
                    return Ok(Some(twiml));
                }
            }
        }
        Ok(None)
    }

    /// Remembers `twiml` as the reply sent to `phone` for `message_sid` at
    /// `now_ms`.
    pub fn remember(
        &self,
        phone: &PhoneNumber,
        message_sid: &str,
        twiml: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let reply = PhoneReply {
            phone: phone.e164(),
            twiml: twiml.to_owned(),
            expires_at_ms: now_ms.saturating_add(self.ttl_ms),
        };
        self.window_for(now_ms)?.insert(
            reply_key(message_sid, phone),
            codec::encode(codec::SEEN_V2, &reply),
        )?;
        Ok(())
    }

    /// Writes a reply as it was kept elsewhere (the layout before windows).
    pub(super) fn restore(&self, message_sid: &[u8], reply: &SeenReply) -> Result<(), StoreError> {
        let sent_at = reply.expires_at_ms.saturating_sub(self.ttl_ms);
        self.window_for(sent_at)?
            .insert(message_sid, codec::encode(codec::SEEN_V1, reply))?;
        Ok(())
    }

    /// The tree of the window holding `at`, opened on first use.
    fn window_for(&self, at_ms: u64) -> Result<sled::Tree, StoreError> {
        if let Some(window) = self
            .windows
            .load()
            .iter()
            .rev()
            .find(|w| w.takes(at_ms, self.ttl_ms))
        {
            return Ok(window.tree.clone());
        }
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.windows.load_full();
        if let Some(window) = current.iter().find(|w| w.takes(at_ms, self.ttl_ms)) {
            return Ok(window.tree.clone());
        }
        let start_ms = at_ms - at_ms % self.ttl_ms;
        let tree = self.db.open_tree(Window::name(start_ms, self.ttl_ms))?;
        let mut windows = Vec::clone(&current);
        windows.push(Window {
            start_ms,
            length_ms: self.ttl_ms,
            tree: tree.clone(),
        });
        windows.sort_by_key(|w| w.start_ms);
        self.windows.store(Arc::new(windows));
        Ok(tree)
    }

    /// Drops the windows whose replies have all expired; how many replies
    /// they held. Blocking: call it off the async workers.
    pub fn drop_expired(&self, now_ms: u64) -> Result<u64, StoreError> {
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.windows.load_full();
        let (due, kept): (Vec<Window>, Vec<Window>) = current
            .iter()
            .cloned()
            .partition(|w| w.all_expired_at().saturating_add(DROP_GRACE_MS) <= now_ms);
        if due.is_empty() {
            return Ok(0);
        }
        // Out of the list first, so no new lookup picks a dropped tree.
        self.windows.store(Arc::new(kept));
        let mut dropped = 0;
        for window in due {
            dropped += window.tree.len() as u64;
            self.db
                .drop_tree(Window::name(window.start_ms, window.length_ms))?;
        }
        Ok(dropped)
    }

    /// Forgets one reply, as a crash between the writes of an exchange
    /// would leave things; for crash-safety tests.
    pub(super) fn forget(&self, message_sid: &str) -> Result<(), StoreError> {
        for window in self.windows.load().iter() {
            window.tree.remove(message_sid.as_bytes())?;
            for key in window.tree.scan_prefix(sid_prefix(message_sid)).keys() {
                window.tree.remove(key?)?;
            }
        }
        Ok(())
    }
}
