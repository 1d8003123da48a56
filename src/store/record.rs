//! The phone record: everything Roster keeps about one phone, in one stored
//! value, so that an answered message commits with one write.
//!
//! A record holds the phone's conversation [`Session`] (if one is live), its
//! rate-limit state ([`LimitState`]: both GCRA buckets and their refusal
//! notices), its opt-out, and the replies sent to its last
//! `session.max_history` MessageSids within `session.dedupe_ttl`
//! ([`RememberedReply`]). It is stored as [`codec::RECORD_V1`] ‖ bincode.
//!
//! A record lives while any part of it does ([`PhoneRecord::live_until`]):
//! the session until its TTL, a bucket until it has refilled, a notice until
//! its stretch ends, a reply until the dedupe window closes, and an opt-out
//! until START. Readers filter what is over (an expired session is absent
//! even while its record still holds the phone's limits); the sweeper
//! removes the record once nothing in it is live.

use serde::{Deserialize, Serialize};

use super::codec::{self, CodecError};
use crate::conversation::Session;

/// Everything kept about one phone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneRecord {
    /// The conversation, possibly expired (readers check).
    pub session: Option<Session>,
    pub limits: LimitState,
    /// When the phone sent STOP, until it sends START.
    pub opted_out_at_ms: Option<u64>,
    /// The replies to the phone's latest MessageSids, oldest first.
    pub replies: Vec<RememberedReply>,
}

/// The phone's rate-limit state: one GCRA bucket per limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitState {
    pub messages: Bucket,
    pub searches: Bucket,
}

/// One GCRA bucket, in absolute nanoseconds since the Unix epoch, so that it
/// means the same to every process: 0 is "full" (no state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// The theoretical arrival time: the bucket is full again then.
    pub tat_ns: u64,
    /// Until when the member has been told they are over this limit; later
    /// refusals before then are silent.
    pub told_until_ns: u64,
}

impl Bucket {
    /// Whether anything in the bucket still matters at `now_ns`.
    pub fn is_live(&self, now_ns: u64) -> bool {
        self.tat_ns > now_ns || self.told_until_ns > now_ns
    }

    /// When the bucket is full again and no notice is in force (ms).
    fn over_at_ms(&self) -> u64 {
        self.tat_ns.max(self.told_until_ns).div_ceil(1_000_000)
    }
}

/// A reply already sent, for a redelivery of its MessageSid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedReply {
    pub message_sid: String,
    /// The TwiML document that was answered; shared, so that copying a
    /// record for the next message copies no reply.
    pub twiml: std::sync::Arc<str>,
    /// When the dedupe window of this reply closes: the window is the one
    /// configured when it was sent.
    pub expires_at_ms: u64,
}

/// How a record is kept, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Keeping {
    pub max_replies: usize,
    pub dedupe_ttl_ms: u64,
}

impl PhoneRecord {
    /// The live session, if any.
    pub fn live_session(&self, now_ms: u64) -> Option<&Session> {
        self.session.as_ref().filter(|s| !s.is_expired(now_ms))
    }

    /// The TwiML sent for `message_sid`, while it is within the dedupe window.
    pub fn remembered(&self, message_sid: &str, now_ms: u64) -> Option<&str> {
        self.replies
            .iter()
            .rev()
            .find(|r| r.message_sid == message_sid)
            .filter(|r| r.expires_at_ms > now_ms)
            .map(|r| &*r.twiml)
    }

    /// Remembers the reply sent for `message_sid`, keeping the newest
    /// `max_replies` still within the window.
    pub fn remember(&mut self, message_sid: &str, twiml: &str, now_ms: u64, keeping: Keeping) {
        self.replies
            .retain(|r| r.message_sid != message_sid && r.expires_at_ms > now_ms);
        self.replies.push(RememberedReply {
            message_sid: message_sid.to_owned(),
            twiml: twiml.into(),
            expires_at_ms: now_ms.saturating_add(keeping.dedupe_ttl_ms),
        });
        let excess = self
            .replies
            .len()
            .saturating_sub(keeping.max_replies.max(1));
        self.replies.drain(..excess);
    }

    /// Until when (ms) anything in the record is live; `None` while the
    /// phone is opted out, which lasts until START.
    pub fn live_until(&self) -> Option<u64> {
        if self.opted_out_at_ms.is_some() {
            return None;
        }
        let session = self.session.as_ref().map_or(0, |s| s.expires_at_ms);
        let replies = self
            .replies
            .iter()
            .map(|r| r.expires_at_ms)
            .max()
            .unwrap_or(0);
        Some(
            session
                .max(replies)
                .max(self.limits.messages.over_at_ms())
                .max(self.limits.searches.over_at_ms()),
        )
    }

    /// Whether nothing in the record is live at `now_ms`.
    pub fn is_over(&self, now_ms: u64) -> bool {
        self.live_until().is_some_and(|until| until <= now_ms)
    }

    /// The stored bytes, dropping the oldest exchanges of the session (and
    /// then the oldest replies) if it would not otherwise be readable again
    /// ([`codec::MAX_DECODE_BYTES`]): a record written is one that can be read.
    pub fn encode(&mut self) -> Vec<u8> {
        loop {
            let bytes = codec::encode(codec::RECORD_V1, &*self);
            let history = self.session.as_ref().map_or(0, |s| s.history.len());
            if bytes.len() <= codec::MAX_DECODE_BYTES || (history == 0 && self.replies.len() <= 1) {
                return bytes;
            }
            tracing::warn!(
                bytes = bytes.len(),
                "phone record too large to store; dropping its oldest exchanges"
            );
            if let Some(session) = self.session.as_mut().filter(|s| !s.history.is_empty()) {
                let dropped = session.history.len().div_ceil(2);
                session.history.drain(..dropped);
            } else {
                let dropped = self.replies.len() / 2;
                self.replies.drain(..dropped);
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<PhoneRecord, CodecError> {
        codec::decode("phone record", codec::RECORD_V1, bytes)
    }
}
