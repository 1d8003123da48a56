//! Conversation sessions: what Roster remembers of each member's recent
//! exchanges, so that follow-ups ("more", "their contact info") work.
//!
//! A [`Session`] is keyed by phone and expires `session.ttl` after its last
//! activity (a sliding TTL, as the old Redis design had). The
//! [`SessionStore`] keeps sessions in sled behind a moka cache
//! ([`store`]), checks expiry on every read so an expired session is absent
//! even before the [`sweeper`] removes it, and makes each exchange durable
//! before the webhook answers in strict mode. [`PhoneLocks`] give each phone
//! one message at a time. The store also remembers which phones opted out
//! (STOP), in a tree of their own (`optouts`), since that outlives sessions.
//!
//! The stored form is bincode in a versioned envelope ([`codec`]); the JSON
//! form ([`crate::conversation::SessionView`]) is what the admin API and CLI show, with the field
//! names the old service's operators know.

pub mod codec;
mod disk;
mod locks;
mod optouts;
pub mod replies;
pub mod store;
pub mod sweeper;

use std::sync::Arc;

pub use locks::{PhoneLocks, PhoneTurn};
pub use store::{SessionStore, StoreError, StoreStats};

use crate::conversation::{Entry, SentReply, Session, SessionStats};
use crate::directory::Member;
use crate::phone::PhoneNumber;

// The types this store keeps are encoded under `codec::SESSION_V1`.
const _: () = assert!(codec::SESSION_V1 == crate::conversation::STORED_VERSION);

/// The old service's operations, each taking the phone's turn itself.
///
/// The webhook instead holds the turn across its whole flow and calls
/// [`SessionStore::load_in_turn`], [`SessionStore::session_for`] and
/// [`SessionStore::save`] directly.
impl SessionStore {
    /// The member's live session, created and saved if there is none.
    pub async fn get_or_create(&self, member: &Member) -> Result<Session, StoreError> {
        let _turn = self.lock(member.phone).await;
        if let Some(session) = self.load_in_turn(&member.phone).await? {
            return Ok(Session::clone(&session));
        }
        let session = self.session_for(member, None);
        self.save(session.clone(), None, None).await?;
        Ok(session)
    }

    /// Applies `change` to the live session and refreshes its TTL.
    pub async fn update(
        &self,
        phone: &PhoneNumber,
        change: impl FnOnce(&mut Session),
    ) -> Result<Option<Session>, StoreError> {
        let _turn = self.lock(*phone).await;
        let Some(stored) = self.load_in_turn(phone).await? else {
            return Ok(None);
        };
        let mut session = Session::clone(&stored);
        change(&mut session);
        session.touch(self.now_ms(), self.ttl_ms());
        self.save(session.clone(), Some(&stored), None).await?;
        Ok(Some(session))
    }

    /// Appends an exchange (keeping the last `session.max_history`).
    pub async fn add_entry(
        &self,
        phone: &PhoneNumber,
        entry: Entry,
    ) -> Result<Option<Session>, StoreError> {
        let max_history = self.max_history();
        self.update(phone, |session| session.push_entry(entry, max_history))
            .await
    }

    /// The live session's exchanges, oldest first; empty when there is none.
    pub async fn history(&self, phone: &PhoneNumber) -> Result<Vec<Arc<Entry>>, StoreError> {
        Ok(self
            .get(phone)
            .await?
            .map(|s| s.history)
            .unwrap_or_default())
    }

    /// Remaining TTL, counts and times of the live session.
    pub async fn session_stats(
        &self,
        phone: &PhoneNumber,
    ) -> Result<Option<SessionStats>, StoreError> {
        let now = self.now_ms();
        Ok(self.get(phone).await?.map(|s| s.stats(now)))
    }

    /// Deletes the session; whether a live one existed.
    pub async fn delete(&self, phone: &PhoneNumber) -> Result<bool, StoreError> {
        let _turn = self.lock(*phone).await;
        self.delete_in_turn(phone).await
    }
}
