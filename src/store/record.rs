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

impl LimitState {
    /// The names of the stored times, as exports write them
    /// (`<name>:<phone>`) and data dirs before records keyed them.
    pub const NAMES: [&'static str; 4] =
        ["messages", "messages-notice", "searches", "searches-notice"];

    /// The stored time of that name (absolute ns), if it is one.
    pub fn time_mut(&mut self, name: &str) -> Option<&mut u64> {
        match name {
            "messages" => Some(&mut self.messages.tat_ns),
            "messages-notice" => Some(&mut self.messages.told_until_ns),
            "searches" => Some(&mut self.searches.tat_ns),
            "searches-notice" => Some(&mut self.searches.told_until_ns),
            _ => None,
        }
    }

    /// Each stored time with its name, in [`LimitState::NAMES`] order.
    pub fn times(&self) -> [(&'static str, u64); 4] {
        [
            (Self::NAMES[0], self.messages.tat_ns),
            (Self::NAMES[1], self.messages.told_until_ns),
            (Self::NAMES[2], self.searches.tat_ns),
            (Self::NAMES[3], self.searches.told_until_ns),
        ]
    }
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

    /// Puts `pieces` (what a restore or the move of an older data dir found
    /// for this phone) into the record: each part present replaces this
    /// one's (a time of 0 is absent); the session's latest reply, which
    /// rode in the session before records, becomes a remembered reply; the
    /// replies are merged, keeping the newest `max_replies` still live.
    pub fn absorb(&mut self, mut pieces: PhoneRecord, keeping: Keeping, now_ms: u64) {
        if let Some(mut session) = pieces.session.take() {
            if let Some(last) = session.last_reply.take() {
                pieces.replies.push(RememberedReply {
                    message_sid: last.message_sid,
                    twiml: last.twiml.into(),
                    expires_at_ms: session
                        .last_activity_ms
                        .saturating_add(keeping.dedupe_ttl_ms),
                });
            }
            self.session = Some(session);
        }
        for (name, at) in pieces.limits.times() {
            if let Some(time) = self.limits.time_mut(name).filter(|_| at != 0) {
                *time = at;
            }
        }
        if pieces.opted_out_at_ms.is_some() {
            self.opted_out_at_ms = pieces.opted_out_at_ms;
        }
        for reply in pieces.replies {
            if !self
                .replies
                .iter()
                .any(|r| r.message_sid == reply.message_sid)
            {
                self.replies.push(reply);
            }
        }
        self.replies.retain(|r| r.expires_at_ms > now_ms);
        self.replies.sort_by_key(|r| r.expires_at_ms);
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

    /// The stored bytes: [`codec::RECORD_V2`], the length of the bincode
    /// form (u32 LE), and that form compressed with LZ4. A record repeats
    /// itself (the same names, places and member listings in its exchanges
    /// and replies), so it shrinks to a fraction, and sled, which copies
    /// every value into its log and again whenever it rewrites a leaf,
    /// moves that much less. The oldest exchanges of the session (and then
    /// the oldest replies) are dropped if it would not otherwise be
    /// readable again ([`codec::MAX_DECODE_BYTES`]): a record written is
    /// one that can be read.
    pub fn encode(&mut self) -> Vec<u8> {
        let plain = loop {
            let bytes = self.encode_plain();
            let history = self.session.as_ref().map_or(0, |s| s.history.len());
            if bytes.len() <= codec::MAX_DECODE_BYTES || (history == 0 && self.replies.len() <= 1) {
                break bytes;
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
        };
        compress(&plain).unwrap_or(plain)
    }

    /// [`codec::RECORD_V1`] ‖ bincode, the same bytes as encoding the whole
    /// record, with each exchange of the session taken from its stored form
    /// ([`crate::conversation::RecordedEntry::stored`]), worked out once per exchange rather
    /// than on every message: a full session was most of the encoding.
    fn encode_plain(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_hint().max(1));
        out.push(codec::RECORD_V1);
        // Every field in declaration order (bincode is by position); the
        // patterns name them all, so a new field fails to compile here.
        let PhoneRecord {
            session,
            limits,
            opted_out_at_ms,
            replies,
        } = self;
        match session {
            None => codec::append(&mut out, &None::<()>),
            Some(session) => {
                let Session {
                    phone,
                    member_id,
                    member_name,
                    role,
                    history,
                    created_at_ms,
                    last_activity_ms,
                    expires_at_ms,
                    message_count,
                    search_count,
                    last_reply,
                } = session;
                codec::append(&mut out, &Some(()));
                codec::append(&mut out, phone);
                codec::append(&mut out, member_id);
                codec::append(&mut out, member_name);
                codec::append(&mut out, role);
                // A sequence is its length (as a u64), then its elements.
                codec::append(&mut out, &(history.len() as u64));
                for entry in history {
                    out.extend_from_slice(entry.stored(|entry| {
                        let mut bytes = Vec::with_capacity(entry.query.len() + 96);
                        codec::append(&mut bytes, entry);
                        bytes
                    }));
                }
                codec::append(&mut out, created_at_ms);
                codec::append(&mut out, last_activity_ms);
                codec::append(&mut out, expires_at_ms);
                codec::append(&mut out, message_count);
                codec::append(&mut out, search_count);
                codec::append(&mut out, last_reply);
            }
        }
        codec::append(&mut out, limits);
        codec::append(&mut out, opted_out_at_ms);
        codec::append(&mut out, replies);
        out
    }

    /// About how many bytes the bincode form takes, so that it is encoded
    /// into one buffer without growing it.
    fn size_hint(&self) -> usize {
        let replies: usize = self
            .replies
            .iter()
            .map(|r| r.twiml.len() + r.message_sid.len() + 16)
            .sum();
        let history = self.session.as_ref().map_or(0, |s| {
            s.history
                .iter()
                .map(|e| {
                    e.query.len()
                        + 40
                        + e.result_ids.iter().map(|id| id.len() + 1).sum::<usize>()
                        + 64
                })
                .sum::<usize>()
                + 128
        });
        replies + history + 64
    }

    /// Reads a record of either format.
    pub fn decode(bytes: &[u8]) -> Result<PhoneRecord, CodecError> {
        const WHAT: &str = "phone record";
        match bytes.first() {
            Some(&codec::RECORD_V2) => codec::decode(WHAT, codec::RECORD_V1, &decompress(bytes)?),
            Some(&found) if found > codec::RECORD_V2 => Err(CodecError::NewerVersion {
                what: WHAT,
                found,
                newest: codec::RECORD_V2,
            }),
            _ => codec::decode(WHAT, codec::RECORD_V1, bytes),
        }
    }
}

/// `plain` ([`codec::RECORD_V1`] ‖ bincode) as [`codec::RECORD_V2`].
fn compress(plain: &[u8]) -> Option<Vec<u8>> {
    let body = plain.get(1..)?;
    let length = u32::try_from(body.len()).ok()?;
    let mut out = vec![0u8; 5 + lz4_flex::block::get_maximum_output_size(body.len())];
    out[0] = codec::RECORD_V2;
    out[1..5].copy_from_slice(&length.to_le_bytes());
    let written = lz4_flex::block::compress_into(body, &mut out[5..]).ok()?;
    out.truncate(5 + written);
    Some(out)
}

/// The [`codec::RECORD_V1`] form of a [`codec::RECORD_V2`] value.
fn decompress(bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
    let corrupt = |reason: String| CodecError::Corrupt {
        what: "phone record",
        reason,
    };
    let length = bytes
        .get(1..5)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| corrupt(format!("{} bytes", bytes.len())))? as usize;
    if length > codec::MAX_DECODE_BYTES {
        return Err(corrupt(format!("it claims {length} bytes")));
    }
    let mut plain = vec![0u8; 1 + length];
    plain[0] = codec::RECORD_V1;
    let written = lz4_flex::block::decompress_into(&bytes[5..], &mut plain[1..])
        .map_err(|e| corrupt(e.to_string()))?;
    if written != length {
        return Err(corrupt(format!("{written} of {length} bytes")));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> PhoneRecord {
        let mut record = PhoneRecord::default();
        let keeping = Keeping {
            max_replies: 3,
            dedupe_ttl_ms: 60_000,
        };
        for i in 0..5 {
            let twiml = format!("<Response><Message>reply {i}</Message></Response>");
            record.remember(&format!("SM{i}"), &twiml, 1_000 + i, keeping);
        }
        record.limits.messages.tat_ns = 7;
        record.opted_out_at_ms = Some(9);
        record
    }

    #[test]
    fn records_are_written_compressed_and_read_in_both_formats() {
        let mut written = record();
        let bytes = written.encode();
        assert_eq!(bytes[0], codec::RECORD_V2);
        assert_eq!(PhoneRecord::decode(&bytes), Ok(written.clone()));
        // Only the last three replies are kept, newest last.
        let sids: Vec<_> = written
            .replies
            .iter()
            .map(|r| r.message_sid.as_str())
            .collect();
        assert_eq!(sids, ["SM2", "SM3", "SM4"]);
        let plain = codec::encode(codec::RECORD_V1, &written);
        assert_eq!(PhoneRecord::decode(&plain), Ok(written));
    }

    /// A record with a session of `entries` exchanges, every kind of field
    /// set somewhere.
    fn with_session(entries: usize) -> PhoneRecord {
        use crate::conversation::{Entities, Entry, Intent, SentReply};
        let mut record = record();
        let mut session = Session {
            phone: crate::phone::PhoneNumber::parse("+919845000007", Default::default())
                .expect("a valid number"),
            member_id: "M7".into(),
            member_name: "Meera Iyer".into(),
            role: crate::directory::MemberRole::Member,
            history: Vec::new(),
            created_at_ms: 1_700_000_000_000,
            last_activity_ms: 1_700_000_060_000,
            expires_at_ms: 1_700_001_860_000,
            message_count: u64::from(u32::MAX) + 3,
            search_count: 250,
            last_reply: Some(SentReply {
                message_sid: "SM9".into(),
                twiml: "<Response/>".into(),
            }),
        };
        for n in 0..entries {
            let entry = Entry {
                query: format!("find doctors in bengaluru, café nº{n}"),
                timestamp_ms: 1_700_000_000_000 + n as u64,
                intent: [Intent::Search, Intent::More, Intent::Contact][n % 3],
                entities: Entities {
                    profession: Some("Doctor".into()),
                    city: (n % 2 == 0).then(|| "Bengaluru".into()),
                    graduation_year: Some(2001 + n as u16),
                    keywords: vec!["paediatric".into(); n % 4],
                    ..Entities::default()
                },
                result_count: 300 * n as u32,
                result_ids: (0..n % 6).map(|k| format!("M{k}")).collect(),
                page: n as u32,
            };
            session.push_entry(entry, 10);
        }
        record.session = Some(session);
        record
    }

    #[test]
    fn a_record_encoded_from_its_exchanges_stored_forms_is_the_whole_records_bincode() {
        let mut no_session = record();
        no_session.session = None;
        for record in [
            no_session,
            with_session(0),
            with_session(1),
            with_session(12),
        ] {
            let whole = codec::encode(codec::RECORD_V1, &record);
            // Twice: the second time every exchange's stored form is reused.
            assert_eq!(record.encode_plain(), whole);
            assert_eq!(record.encode_plain(), whole);
            let mut copy = record.clone();
            assert_eq!(PhoneRecord::decode(&copy.encode()), Ok(record));
        }
    }

    #[test]
    fn damaged_or_newer_records_are_errors_that_say_so() {
        let bytes = record().encode();
        let mut newer = bytes.clone();
        newer[0] = 9;
        assert!(matches!(
            PhoneRecord::decode(&newer),
            Err(CodecError::NewerVersion { found: 9, .. })
        ));
        for cut in [3, 6, bytes.len() - 1] {
            assert!(
                matches!(
                    PhoneRecord::decode(&bytes[..cut]),
                    Err(CodecError::Corrupt { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut huge = bytes;
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            PhoneRecord::decode(&huge),
            Err(CodecError::Corrupt { .. })
        ));
    }
}
