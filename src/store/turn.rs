//! A phone's turn: one message (or operator action) at a time per phone,
//! with the phone's record loaded, changed in memory and committed once.
//!
//! [`Turn`] is the only way to read or change a record, so "in turn" is
//! enforced by the type: it holds the phone's lock for as long as it lives.
//! What the webhook needs is a method here: the remembered reply for a
//! MessageSid, the opt-out, the limits, the session for a member, and
//! [`Turn::commit`], which writes the record once if anything changed.

use std::sync::Arc;

use super::record::{Bucket, LimitState, PhoneRecord};
use super::shared::Lease;
use super::{PhoneTurn, Store, StoreError};
use crate::conversation::Session;
use crate::directory::Member;
use crate::phone::PhoneNumber;

/// The phone's turn, holding its loaded record.
pub struct Turn<'a> {
    store: &'a Store,
    phone: PhoneNumber,
    _lock: PhoneTurn<'a>,
    now_ms: u64,
    /// The record as stored (and cached), if there is one.
    stored: Option<Arc<PhoneRecord>>,
    /// The changed record, once something changed.
    changed: Option<PhoneRecord>,
    /// The MessageSid whose reply this turn remembers.
    message_sid: Option<String>,
    /// With a shared store, the phone's lease in it.
    lease: Option<Lease>,
}

impl std::fmt::Debug for Turn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("phone", &self.phone.masked())
            .field("changed", &self.changed.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> Turn<'a> {
    /// The turn of `phone`, whose lock is held, at `now_ms` (the store's
    /// time: the shared store's server clock, or this process's).
    pub(super) fn new(
        store: &'a Store,
        phone: PhoneNumber,
        lock: PhoneTurn<'a>,
        stored: Option<Arc<PhoneRecord>>,
        lease: Option<Lease>,
        now_ms: u64,
    ) -> Turn<'a> {
        Turn {
            store,
            phone,
            _lock: lock,
            now_ms,
            stored,
            changed: None,
            message_sid: None,
            lease,
        }
    }

    /// The turn's time (ms since the epoch): what its expiries and limits
    /// are reckoned from.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn phone(&self) -> PhoneNumber {
        self.phone
    }

    /// The record as it stands in this turn.
    fn record(&self) -> Option<&PhoneRecord> {
        self.changed.as_ref().or(self.stored.as_deref())
    }

    /// The record to change: a copy of the stored one, or a new one.
    fn record_mut(&mut self) -> &mut PhoneRecord {
        let stored = &self.stored;
        self.changed
            .get_or_insert_with(|| stored.as_deref().cloned().unwrap_or_default())
    }

    /// The reply already sent to this phone for `message_sid`, while it is
    /// among the phone's last `session.max_history` replies and within
    /// `session.dedupe_ttl`. Refused (503) for an exchange that was written
    /// but never confirmed durable.
    pub fn remembered(&self, message_sid: &str) -> Result<Option<String>, StoreError> {
        self.store.refuse_unconfirmed(message_sid)?;
        Ok(self
            .record()
            .and_then(|r| r.remembered(message_sid, self.now_ms))
            .map(str::to_owned))
    }

    /// When this phone opted out (STOP), if it has.
    pub fn opted_out_since(&self) -> Option<u64> {
        self.record().and_then(|r| r.opted_out_at_ms)
    }

    /// The live session, if any (an expired one is absent).
    pub fn session(&self) -> Option<&Session> {
        self.record().and_then(|r| r.live_session(self.now_ms))
    }

    /// What the webhook works on: the live session, or a new one for `member`.
    pub fn session_for(&self, member: &Member) -> Session {
        match self.session() {
            Some(session) => session.clone(),
            None => Session::new(member, self.now_ms, self.store.ttl_ms),
        }
    }

    /// The phone's rate-limit state.
    pub fn limit_state(&self) -> LimitState {
        self.record().map(|r| r.limits).unwrap_or_default()
    }

    /// Runs a limit's check on one of the phone's buckets; the record
    /// changes only if the bucket did.
    pub fn check<T>(
        &mut self,
        pick: fn(&mut LimitState) -> &mut Bucket,
        check: impl FnOnce(&mut Bucket) -> T,
    ) -> T {
        let mut limits = self.limit_state();
        let before = limits;
        let verdict = check(pick(&mut limits));
        if limits != before {
            self.record_mut().limits = limits;
        }
        verdict
    }

    /// Records the exchange: the session as it is now, and the reply sent
    /// for the message's MessageSid, if Twilio sent one.
    pub fn record_exchange(&mut self, session: Session, reply: Option<(&str, &str)>) {
        self.record_mut().session = Some(session);
        self.remember(reply);
    }

    /// Remembers the reply sent for a MessageSid without a session change
    /// (STOP, START).
    fn remember(&mut self, reply: Option<(&str, &str)>) {
        let Some((message_sid, twiml)) = reply else {
            return;
        };
        let now = self.now_ms;
        let keeping = self.store.keeping();
        self.record_mut().remember(message_sid, twiml, now, keeping);
        self.message_sid = Some(message_sid.to_owned());
    }

    /// The phone opts out (STOP) now, with the reply sent.
    pub fn opt_out(&mut self, reply: Option<(&str, &str)>) {
        let now = self.now_ms;
        self.record_mut().opted_out_at_ms = Some(now);
        self.remember(reply);
    }

    /// The phone opts back in (START), with the reply sent; whether it had
    /// opted out.
    pub fn opt_in(&mut self, reply: Option<(&str, &str)>) -> bool {
        let was = self.opted_out_since().is_some();
        self.record_mut().opted_out_at_ms = None;
        self.remember(reply);
        was
    }

    /// Merges restored pieces into the record ([`PhoneRecord::absorb`]).
    pub(super) fn absorb(&mut self, pieces: PhoneRecord, keeping: super::record::Keeping) {
        let now = self.now_ms;
        self.record_mut().absorb(pieces, keeping, now);
    }

    /// Forgets the session (an operator's delete); limits, opt-out and
    /// remembered replies stay.
    pub fn forget_session(&mut self) {
        if self.record().is_some_and(|r| r.session.is_some()) {
            self.record_mut().session = None;
        }
    }

    /// Writes the record once if anything changed in this turn; in strict
    /// mode, returns once it is on disk. Nothing changed, nothing written.
    /// The turn goes on: later changes are committed against what this wrote.
    pub async fn commit(&mut self) -> Result<(), StoreError> {
        let Some(record) = self.changed.take() else {
            return Ok(());
        };
        if self.stored.is_none() && record == PhoneRecord::default() {
            return Ok(());
        }
        let committed = self
            .store
            .commit(
                self.phone,
                self.stored.as_deref(),
                record,
                self.message_sid.take().as_deref(),
                self.lease.as_mut(),
                self.now_ms,
            )
            .await?;
        self.stored = Some(committed);
        Ok(())
    }
}

/// A turn that wrote nothing gives its shared lease back, in the
/// background: the answer need not wait for it.
impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take().filter(|l| !l.is_released()) else {
            return;
        };
        let Some(shared) = self.store.shared.clone() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = shared.release(&lease).await {
                    tracing::warn!("a turn's lease was not released (it runs out by itself): {e}");
                }
            });
        }
    }
}
