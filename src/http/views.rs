//! The JSON the admin API answers with, as types: the server serializes
//! them, and the CLI (`roster sessions`, `limits`, `stats`) deserializes the
//! same types, or builds them itself from a stopped data dir, so both sides
//! agree on every field by construction.
//!
//! Field names are camelCase, the ones the old service's operators know.

use serde::{Deserialize, Serialize};

use crate::conversation::{EntryView, Session, SessionStats};
use crate::directory::MemberRole;
use crate::http::connections::ConnectionStats;
use crate::limits::{LimitsView, Remaining};
use crate::phone::PhoneNumber;
use crate::store::StoreStats;

/// `GET /admin/sessions`: one page of live sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionList {
    pub sessions: Vec<SessionRow>,
    /// The phone to pass as `cursor` for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// One line of [`SessionList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    pub phone_number: String,
    pub member_name: String,
    /// ms since the Unix epoch.
    pub last_activity: u64,
    pub message_count: u64,
}

impl From<&Session> for SessionRow {
    fn from(s: &Session) -> SessionRow {
        SessionRow {
            phone_number: s.phone.e164(),
            member_name: s.member_name.clone(),
            last_activity: s.last_activity_ms,
            message_count: s.message_count,
        }
    }
}

/// `GET /admin/sessions/{phone}`: the live session with its limits, and the
/// opt-out. A phone that opted out but has no session has only
/// `phoneNumber` and the opt-out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionDetail {
    pub phone_number: String,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub session: Option<LiveSession>,
    pub opted_out: bool,
    /// When the phone sent STOP, in ms since the Unix epoch.
    pub opted_out_at: Option<u64>,
}

impl SessionDetail {
    /// What to show of `phone`: `None` when it has neither a live session
    /// nor an opt-out.
    pub(crate) fn new(
        phone: &PhoneNumber,
        session: Option<&Session>,
        limits: LimitsView,
        opted_out_at: Option<u64>,
        now_ms: u64,
    ) -> Option<SessionDetail> {
        if session.is_none() && opted_out_at.is_none() {
            return None;
        }
        Some(SessionDetail {
            phone_number: phone.e164(),
            session: session.map(|s| LiveSession::new(s, limits, now_ms)),
            opted_out: opted_out_at.is_some(),
            opted_out_at,
        })
    }
}

/// The session part of [`SessionDetail`]: the session's JSON view
/// ([`crate::conversation::SessionView`]) with the phone's limits in its stats.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSession {
    pub user_id: String,
    pub member_name: String,
    pub role: MemberRole,
    pub conversation_history: Vec<EntryView>,
    pub last_activity: u64,
    pub message_count: u64,
    pub search_count: u64,
    pub created_at: u64,
    pub stats: LiveStats,
}

impl LiveSession {
    fn new(session: &Session, limits: LimitsView, now_ms: u64) -> LiveSession {
        let view = session.view(now_ms);
        LiveSession {
            user_id: view.user_id,
            member_name: view.member_name,
            role: view.role,
            conversation_history: view.conversation_history,
            last_activity: view.last_activity,
            message_count: view.message_count,
            search_count: view.search_count,
            created_at: view.created_at,
            stats: LiveStats {
                session: view.stats,
                limits: limits.into(),
            },
        }
    }
}

/// A session's stats and what its phone has left.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveStats {
    #[serde(flatten)]
    pub session: SessionStats,
    pub limits: PhoneLimits,
}

/// `GET /admin/limits/{phone}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsOf {
    pub phone_number: String,
    pub limits: PhoneLimits,
}

/// What a phone has left of each limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneLimits {
    pub messages: Quota,
    pub searches: Quota,
}

impl PhoneLimits {
    /// Each limit with its name, in the order they are shown.
    pub fn named(&self) -> [(&'static str, &Quota); 2] {
        [("messages", &self.messages), ("searches", &self.searches)]
    }
}

impl From<LimitsView> for PhoneLimits {
    fn from(view: LimitsView) -> PhoneLimits {
        PhoneLimits {
            messages: view.messages.into(),
            searches: view.searches.into(),
        }
    }
}

/// One limit of a phone, without spending anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until one more is available (0 when some are left).
    pub next_in_secs: u64,
    /// Seconds until the full burst is available again.
    pub full_in_secs: u64,
}

impl From<Remaining> for Quota {
    fn from(r: Remaining) -> Quota {
        Quota {
            limit: r.limit,
            remaining: r.remaining,
            next_in_secs: r.next_in_secs,
            full_in_secs: r.full_in_secs,
        }
    }
}

/// `GET /admin/stats`. Read from a stopped data dir, only `sessions` is
/// known; the rest are the running server's. (Rate-limit state is part of
/// each phone's record, and counted with them.)
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub sessions: StoreStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strangers_remembered: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shed_requests: Option<u64>,
}

/// The body of every admin error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
