//! Replies that missed Twilio's deadline, sent through the Messages API
//! (`POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json`, form `To`,
//! `From`, `Body`, basic auth with the account SID and auth token).
//!
//! - [`Handoff`] settles, once, whether a webhook answers in time or gives
//!   up at `twilio.reply_deadline` (and answers `<Response/>`): the message
//!   in progress then claims it as late and puts its reply in the outbox.
//! - [`Outbox`] keeps each pending reply in the `outbox` tree (flushed to
//!   disk) until Twilio accepted every part, so a crash or a restart sends
//!   it afterwards; parts already accepted are not sent again. 429 and 5xx
//!   are retried with backoff (honouring `Retry-After`) for at most
//!   [`GIVE_UP_AFTER`]; then the reply is dropped and logged. Keyed by the
//!   inbound MessageSid, so a redelivery neither queues nor sends twice.
//! - With a shared store the outbox is a Redis stream that every instance
//!   reads in one consumer group (`store::shared::SharedOutbox`): one
//!   instance sends each reply, telling the others it is still on it while
//!   it waits to retry, and a reply an instance left for
//!   `twilio.outbox_takeover` (it stopped or died) is sent by another.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::{SharedClock, duration_ms};
use crate::config::TwilioConfig;
use crate::shutdown::Shutdown;
use crate::store::StorageError;
use crate::store::trees::OutboxTree;

/// How long a reply is retried before it is dropped.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(10 * 60);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the outbox is scanned without being woken.
const SCAN_EVERY: Duration = Duration::from_secs(5);
const VERSION: u8 = 1;

/// Whether a webhook answered in time or gave up; decided once.
#[derive(Debug, Default)]
pub struct Handoff {
    state: Mutex<State>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Waiting,
    /// The webhook answered `<Response/>`; the reply goes to the outbox.
    GaveUp,
    /// The reply is the webhook's answer.
    InTime,
    /// The reply went to the outbox.
    Queued,
}

impl Handoff {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// At the deadline: gives up unless the reply was already claimed in
    /// time (the webhook then waits the moment it needs).
    pub fn give_up(&self) -> bool {
        let mut state = self.state();
        if *state == State::Waiting {
            *state = State::GaveUp;
        }
        *state != State::InTime
    }

    /// With the reply in hand: `true` when it is late and must be queued
    /// (the caller queues it), `false` when the webhook answers with it.
    pub fn claim_late(&self) -> bool {
        let mut state = self.state();
        match *state {
            State::Waiting => {
                *state = State::InTime;
                false
            }
            State::GaveUp => {
                *state = State::Queued;
                true
            }
            State::InTime | State::Queued => false,
        }
    }
}

/// One reply waiting to be sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    version: u8,
    /// The member (`whatsapp:+…`), the inbound `From`.
    to: String,
    /// Our sender, the inbound `To`.
    from: String,
    /// Messages of at most 1,600 characters each.
    parts: Vec<String>,
    /// Parts Twilio accepted already.
    sent: usize,
    created_ms: u64,
}

/// Why one REST call did not go through.
enum SendError {
    /// 429, 5xx or no connection: try again after this long.
    Retry(Duration),
    /// Any other refusal: never going to work.
    Refused(u16, String),
}

/// The durable outbox and its sender.
pub struct Outbox {
    tree: OutboxTree,
    http: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: String,
    wake: Notify,
    clock: SharedClock,
    /// `twilio.outbox_takeover`.
    takeover: Duration,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("url", &self.url).finish()
    }
}

impl Outbox {
    /// The outbox, when `twilio.account_sid` (and an auth token) is set.
    pub fn new(tree: OutboxTree, config: &TwilioConfig, clock: SharedClock) -> Option<Outbox> {
        let account_sid = config.account_sid()?.to_owned();
        let auth_token = config.auth_token()?.to_owned();
        let base = config.api_base.trim().trim_end_matches('/');
        Some(Outbox {
            tree,
            // Shorter than the takeover, so that no call outlives this
            // instance's hold on a shared entry.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15).min(config.outbox_takeover / 2))
                .build()
                .unwrap_or_default(),
            url: format!("{base}/2010-04-01/Accounts/{account_sid}/Messages.json"),
            account_sid,
            auth_token,
            wake: Notify::new(),
            clock,
            takeover: config.outbox_takeover,
        })
    }

    /// Queues `parts` for `to` (durably) and wakes the sender; a second
    /// reply for the same MessageSid is ignored.
    pub async fn enqueue(
        &self,
        message_sid: &str,
        to: &str,
        from: &str,
        parts: Vec<String>,
    ) -> Result<(), StorageError> {
        if parts.is_empty() {
            return Ok(());
        }
        let pending = Pending {
            version: VERSION,
            to: to.to_owned(),
            from: from.to_owned(),
            parts,
            sent: 0,
            created_ms: self.clock.now_ms(),
        };
        let value = serde_json::to_vec(&pending).map_err(|e| StorageError::Other {
            path: "outbox".into(),
            reason: e.to_string(),
        })?;
        if self.tree.add(message_sid, &value).await? {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Sends what is pending (first what a previous run left), until
    /// `shutdown`.
    pub async fn run(self: std::sync::Arc<Self>, mut shutdown: Shutdown) {
        loop {
            let entries = match self.tree.take().await {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::warn!("cannot read the outbox (trying again): {e}");
                    Vec::new()
                }
            };
            // A shared outbox hands out one entry at a time: ask again at
            // once while it has more. (Locally every entry came at once.)
            let more = !entries.is_empty() && self.tree.is_shared();
            for (key, value) in entries {
                if shutdown.is_shutdown() {
                    return;
                }
                match serde_json::from_slice::<Pending>(&value) {
                    Ok(pending) => self.deliver(&key, pending, &mut shutdown).await,
                    Err(e) => {
                        tracing::error!("unreadable outbox entry dropped: {e}");
                        let _ = self.tree.done(&key).await;
                    }
                }
            }
            if more {
                continue;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(SCAN_EVERY) => {}
                () = shutdown.recv() => return,
            }
        }
    }

    /// Sends the parts not yet accepted, in order; removes the entry when
    /// all are, or when it gives up.
    async fn deliver(&self, key: &[u8], mut pending: Pending, shutdown: &mut Shutdown) {
        let mut backoff = FIRST_BACKOFF;
        while let Some(body) = pending.parts.get(pending.sent).cloned() {
            // With a shared outbox, another instance may have taken it over
            // (this one stalled): then it is that one's to send.
            if !self.tree.hold(key).await {
                tracing::info!("another instance took over a late reply; leaving it to it");
                return;
            }
            match self.post(&pending.to, &pending.from, &body).await {
                Ok(()) => {
                    pending.sent += 1;
                    backoff = FIRST_BACKOFF;
                    if pending.sent < pending.parts.len()
                        && let Ok(value) = serde_json::to_vec(&pending)
                    {
                        match self.tree.progress(key, &value).await {
                            Ok(true) => {}
                            Ok(false) => return,
                            Err(e) => tracing::warn!("cannot record a sent part: {e}"),
                        }
                    }
                }
                Err(SendError::Refused(status, reason)) => {
                    tracing::error!(status, "Twilio refused a late reply, dropped: {reason}");
                    break;
                }
                Err(SendError::Retry(after)) => {
                    let age = self.clock.now_ms().saturating_sub(pending.created_ms);
                    if age >= duration_ms(GIVE_UP_AFTER) {
                        tracing::error!(
                            "a late reply was not accepted by Twilio in {}s; dropped",
                            GIVE_UP_AFTER.as_secs()
                        );
                        break;
                    }
                    let wait = after.max(backoff).min(MAX_BACKOFF);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    // Still on it: with a shared outbox, say so often enough
                    // that no other instance takes it over meanwhile.
                    let until = tokio::time::Instant::now() + wait;
                    loop {
                        if !self.tree.hold(key).await {
                            return;
                        }
                        let now = tokio::time::Instant::now();
                        if now >= until {
                            break;
                        }
                        let slice = (until - now).min(self.takeover / 3);
                        tokio::select! {
                            () = tokio::time::sleep(slice) => {}
                            // Still pending: the next start (or another
                            // instance) sends it.
                            () = shutdown.recv() => return,
                        }
                    }
                }
            }
        }
        if let Err(e) = self.tree.done(key).await {
            tracing::warn!("cannot remove a sent reply from the outbox: {e}");
        }
    }

    async fn post(&self, to: &str, from: &str, body: &str) -> Result<(), SendError> {
        let response = self
            .http
            .post(&self.url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&[("To", to), ("From", from), ("Body", body)])
            .send()
            .await
            .map_err(|_| SendError::Retry(FIRST_BACKOFF))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_secs);
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(SendError::Retry(retry_after));
        }
        let text = response.text().await.unwrap_or_default();
        Err(SendError::Refused(
            status.as_u16(),
            text.chars().take(300).collect(),
        ))
    }
}
