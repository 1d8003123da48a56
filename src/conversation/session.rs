//! A member's conversation as stored ([`Session`]), and the JSON views of it
//! the admin API, the CLI and exports show ([`SessionView`], [`EntryView`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Entities, Entry, Intent, RecordedEntry};
use crate::directory::{Member, MemberRole};
use crate::phone::PhoneNumber;

/// A member's conversation state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub phone: PhoneNumber,
    pub member_id: String,
    pub member_name: String,
    pub role: MemberRole,
    /// The last `session.max_history` exchanges, oldest first. An exchange
    /// never changes once recorded, so it is shared: cloning a session for
    /// the next message copies ten pointers, not ten exchanges.
    pub history: Vec<Arc<RecordedEntry>>,
    pub created_at_ms: u64,
    pub last_activity_ms: u64,
    /// `last_activity_ms + ttl`: absent from then on.
    pub expires_at_ms: u64,
    pub message_count: u64,
    pub search_count: u64,
    /// The reply to the latest message, written in the same record as the
    /// exchange: a redelivery of that message is recognised even if the
    /// process died before the separate duplicate record was written.
    pub last_reply: Option<SentReply>,
}

/// A reply as sent, with the MessageSid it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentReply {
    pub message_sid: String,
    pub twiml: String,
}

impl Session {
    /// A fresh session for `member`, starting now.
    pub fn new(member: &Member, now_ms: u64, ttl_ms: u64) -> Session {
        Session {
            phone: member.phone,
            member_id: member.id.clone(),
            member_name: member.name.clone(),
            role: member.role,
            history: Vec::new(),
            created_at_ms: now_ms,
            last_activity_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
            message_count: 0,
            search_count: 0,
            last_reply: None,
        }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms <= now_ms
    }

    /// Marks activity now: the TTL slides forward.
    pub fn touch(&mut self, now_ms: u64, ttl_ms: u64) {
        self.last_activity_ms = now_ms;
        self.expires_at_ms = now_ms.saturating_add(ttl_ms);
    }

    /// Appends an exchange, keeping the newest `max_history`.
    pub fn push_entry(&mut self, entry: Entry, max_history: usize) {
        self.history.push(Arc::new(entry.into()));
        if self.history.len() > max_history {
            let excess = self.history.len() - max_history;
            self.history.drain(..excess);
        }
    }

    /// Records one answered message: the exchange, the counts, the TTL.
    pub fn record(&mut self, entry: Entry, searched: bool, max_history: usize, ttl_ms: u64) {
        let now_ms = entry.timestamp_ms;
        self.push_entry(entry, max_history);
        self.message_count += 1;
        if searched {
            self.search_count += 1;
        }
        self.touch(now_ms, ttl_ms);
    }

    /// The latest exchange that listed results (a search, a refined search
    /// or another page of one): what "more", "2" and "contact" refer to.
    pub fn last_search(&self) -> Option<&Entry> {
        self.history
            .iter()
            .map(|e| &***e)
            .rev()
            .find(|e| e.intent.lists_results())
    }

    pub fn stats(&self, now_ms: u64) -> SessionStats {
        SessionStats {
            ttl_remaining_secs: self.expires_at_ms.saturating_sub(now_ms).div_ceil(1000),
            message_count: self.message_count,
            search_count: self.search_count,
            history_length: self.history.len(),
            created_at: self.created_at_ms,
            last_activity: self.last_activity_ms,
            expires_at: self.expires_at_ms,
        }
    }

    /// The JSON form operators read.
    pub fn view(&self, now_ms: u64) -> SessionView {
        SessionView {
            user_id: self.member_id.clone(),
            phone_number: self.phone.e164(),
            member_name: self.member_name.clone(),
            role: self.role,
            conversation_history: self
                .history
                .iter()
                .map(|e| EntryView {
                    query: e.query.clone(),
                    timestamp: e.timestamp_ms,
                    intent: e.intent,
                    entities: e.entities.clone(),
                    result_count: e.result_count,
                    result_ids: e.result_ids.clone(),
                    page: e.page,
                })
                .collect(),
            last_activity: self.last_activity_ms,
            message_count: self.message_count,
            search_count: self.search_count,
            created_at: self.created_at_ms,
            stats: self.stats(now_ms),
        }
    }
}

/// What `stats` reports of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStats {
    /// Seconds until the session expires if nothing happens (rounded up).
    pub ttl_remaining_secs: u64,
    pub message_count: u64,
    pub search_count: u64,
    pub history_length: usize,
    pub created_at: u64,
    pub last_activity: u64,
    pub expires_at: u64,
}

/// The JSON view of a session (admin API, CLI, export).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub user_id: String,
    pub phone_number: String,
    pub member_name: String,
    pub role: MemberRole,
    pub conversation_history: Vec<EntryView>,
    pub last_activity: u64,
    pub message_count: u64,
    pub search_count: u64,
    pub created_at: u64,
    pub stats: SessionStats,
}

/// The JSON view of one exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    pub query: String,
    pub timestamp: u64,
    pub intent: Intent,
    pub entities: Entities,
    pub result_count: u32,
    pub result_ids: Vec<String>,
    pub page: u32,
}
