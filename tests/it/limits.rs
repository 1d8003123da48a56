//! Rate limits: quotas, refusals, refill, concurrency, persistence and a
//! clock that goes backwards. Time is injected; nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use crate::common::process::{RosterProcess, roster_command};
use crate::common::*;
use roster::clock::ManualClock;
use roster::config::LimitsConfig;
use roster::limits::{Limits, Verdict};
use roster::phone::{PhoneNumber, Region};

/// The data dir's database, as `roster serve` opens it.
fn open_db(path: &std::path::Path) -> sled::Db {
    let config = roster::config::StorageConfig {
        data_dir: path.to_owned(),
        ..Default::default()
    };
    roster::store::open(&config).expect("the data dir opens")
}

/// A store and the limits, checked as the webhook checks them: in the
/// phone's turn, committed.
struct Stored {
    store: roster::store::Store,
    limits: Limits,
}

impl Stored {
    fn open(db: &sled::Db, clock: Arc<ManualClock>) -> Stored {
        // No flusher runs here: writes reach disk with sled's own flush
        // (and the flush each test makes before reopening).
        let mut config = roster::config::Config::default();
        config.storage.durability = roster::config::Durability::Relaxed;
        Stored {
            store: roster::store::Store::open(db, &config, clock.clone()).unwrap(),
            limits: Limits::new(&LimitsConfig::default(), clock),
        }
    }

    async fn check(&self, phone: &PhoneNumber, searches: bool) -> Verdict {
        let mut turn = self.store.turn(*phone).await.unwrap();
        let now = self.limits.now_ns();
        let verdict = if searches {
            turn.check(|l| &mut l.searches, |b| self.limits.searches.check(b, now))
        } else {
            turn.check(|l| &mut l.messages, |b| self.limits.messages.check(b, now))
        };
        turn.commit().await.unwrap();
        verdict
    }

    async fn messages(&self, phone: &PhoneNumber) -> Verdict {
        self.check(phone, false).await
    }

    async fn searches(&self, phone: &PhoneNumber) -> Verdict {
        self.check(phone, true).await
    }

    async fn view(&self, phone: &PhoneNumber) -> roster::limits::LimitsView {
        let state = self.store.phone_state(phone).await.unwrap();
        self.limits.view_at(&state.limits, state.now_ms)
    }
}

fn phone(text: &str) -> PhoneNumber {
    PhoneNumber::parse(text, Region::default()).unwrap()
}

/// The text of the reply, or `None` for an empty `<Response/>`.
async fn reply(app: &TestApp, from: &str, body: &str) -> Option<String> {
    let (status, twiml) = app.send_text(from, body).await;
    assert_eq!(status, 200, "{twiml}");
    let messages = messages(&twiml);
    (!messages.is_empty()).then(|| messages.join("\n"))
}

#[tokio::test]
async fn the_51st_message_is_refused_kindly_then_silently_until_the_quota_returns() {
    let app = spawn_app().await;
    for i in 0..50 {
        let text = reply(&app, MEMBER, "hi")
            .await
            .unwrap_or_else(|| panic!("message {i} answered"));
        assert!(text.contains("Hello Sanjay"), "{text}");
    }
    let refusal = reply(&app, MEMBER, "hi").await.expect("one refusal");
    assert_eq!(
        refusal,
        "You've reached the limit of 50 messages per hour. Please try again in 2 minutes."
    );
    assert_eq!(
        reply(&app, MEMBER, "hi").await,
        None,
        "silence after the refusal"
    );
    app.clock.advance(Duration::from_secs(71));
    assert_eq!(
        reply(&app, MEMBER, "hello?").await,
        None,
        "not yet: one message every 72 s"
    );
    app.clock.advance(Duration::from_secs(1));
    let back = reply(&app, MEMBER, "hi")
        .await
        .expect("allowed again after 72 s");
    assert!(back.contains("Hello Sanjay"), "{back}");
    // Spent again at once: refused, and told again since this is a new stretch.
    let again = reply(&app, MEMBER, "hi")
        .await
        .expect("a new stretch gets a new notice");
    assert!(again.contains("try again in 2 minutes"), "{again}");
    app.stop().await;
}

#[tokio::test]
async fn the_31st_search_is_refused_while_greetings_still_answer() {
    let app = spawn_app().await;
    for _ in 0..30 {
        let text = reply(&app, MEMBER, "doctors in Bengaluru").await.unwrap();
        assert!(text.starts_with("Found 3 doctors"), "{text}");
    }
    let refusal = reply(&app, MEMBER, "doctors in Chennai").await.unwrap();
    assert_eq!(
        refusal,
        "You've reached the limit of 30 searches per hour. Please try again in 2 minutes."
    );
    assert_eq!(reply(&app, MEMBER, "lawyers in Mumbai").await, None);
    let greeting = reply(&app, MEMBER, "hi").await.unwrap();
    assert!(
        greeting.contains("Hello"),
        "greetings spend no search: {greeting}"
    );
    let help = reply(&app, MEMBER, "help").await.unwrap();
    assert!(help.contains("Find doctors"), "{help}");
    app.clock.advance(Duration::from_secs(120));
    let text = reply(&app, MEMBER, "doctors in Chennai").await.unwrap();
    assert!(
        text.contains("Meera Nair"),
        "one search back after 120 s: {text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_hundred_simultaneous_messages_let_exactly_the_quota_through() {
    let app = Arc::new(spawn_app().await);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { reply(&app, MEMBER, "hi").await })
        })
        .collect();
    let mut answered = 0;
    let mut refusals = 0;
    let mut silent = 0;
    for task in tasks {
        match task.await.unwrap() {
            Some(text) if text.contains("Hello") => answered += 1,
            Some(text) if text.contains("reached the limit") => refusals += 1,
            Some(other) => panic!("unexpected reply {other}"),
            None => silent += 1,
        }
    }
    assert_eq!((answered, refusals, silent), (50, 1, 49));
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_and_consume_are_atomic_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let clock = ManualClock::starting_now();
    let limits = Arc::new(Stored::open(&db, clock));
    let member = phone(MEMBER);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let limits = limits.clone();
            tokio::spawn(async move {
                let mut allowed = 0;
                for _ in 0..25 {
                    if limits.messages(&member).await == Verdict::Allowed {
                        allowed += 1;
                    }
                }
                allowed
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap();
    }
    assert_eq!(allowed, 50);
}

#[tokio::test]
async fn spent_quotas_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let member = phone(MEMBER);
    {
        let db = open_db(dir.path());
        let limits = Stored::open(&db, clock.clone());
        for _ in 0..50 {
            assert_eq!(limits.messages(&member).await, Verdict::Allowed);
        }
        for _ in 0..30 {
            assert_eq!(limits.searches(&member).await, Verdict::Allowed);
        }
        db.flush().unwrap();
    }
    clock.advance(Duration::from_secs(10));
    let db = open_db(dir.path());
    let limits = Stored::open(&db, clock.clone());
    match limits.messages(&member).await {
        Verdict::Refused { wait, notify } => {
            assert!(notify);
            assert_eq!(
                wait,
                Duration::from_secs(62),
                "72 s after the first, minus the 10 s elapsed"
            );
        }
        Verdict::Allowed => panic!("the quota was reset by a restart"),
    }
    assert!(matches!(
        limits.searches(&member).await,
        Verdict::Refused { .. }
    ));
    let view = limits.view(&member).await;
    assert_eq!(view.messages.remaining, 0);
    assert_eq!(view.messages.next_in_secs, 62);
    assert_eq!(view.searches.remaining, 0);
}

#[tokio::test]
async fn a_clock_going_backwards_grants_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let member = phone(MEMBER);
    let db = open_db(dir.path());
    let limits = Stored::open(&db, clock.clone());
    for _ in 0..50 {
        assert_eq!(limits.messages(&member).await, Verdict::Allowed);
    }
    clock.rewind(Duration::from_secs(3 * 3600));
    assert!(
        matches!(limits.messages(&member).await, Verdict::Refused { .. }),
        "within the process"
    );
    drop(limits);
    db.flush().unwrap();
    drop(db);
    // Restarted with the wall clock still three hours behind.
    let db = open_db(dir.path());
    let limits = Stored::open(&db, clock.clone());
    assert!(
        matches!(limits.messages(&member).await, Verdict::Refused { .. }),
        "after a restart"
    );
    assert_eq!(limits.view(&member).await.messages.remaining, 0);
}

#[tokio::test]
async fn peeking_spends_nothing_and_idle_state_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let db = open_db(dir.path());
    let limits = Stored::open(&db, clock.clone());
    let member = phone(MEMBER);
    assert_eq!(limits.view(&member).await.messages.remaining, 50);
    for _ in 0..3 {
        limits.messages(&member).await;
    }
    for _ in 0..10 {
        assert_eq!(
            limits.view(&member).await.messages.remaining,
            47,
            "peeking is free"
        );
    }
    assert_eq!(limits.view(&member).await.messages.full_in_secs, 3 * 72);
    clock.advance(Duration::from_secs(72));
    assert_eq!(limits.view(&member).await.messages.remaining, 48);
    limits.store.sweep().await.unwrap();
    assert_eq!(limits.store.records().count(), 1, "not yet refilled");
    clock.advance(Duration::from_secs(2 * 72 + 60));
    assert_eq!(limits.view(&member).await.messages.remaining, 50);
    limits.store.sweep().await.unwrap();
    assert_eq!(
        limits.store.records().count(),
        0,
        "a refilled bucket is dropped with its record"
    );
}

#[tokio::test]
async fn quotas_and_bursts_come_from_configuration() {
    let app = spawn_app_with(|c| {
        c.limits.messages_per_hour = 3;
        c.limits.searches_per_hour = 60;
        c.limits.searches_burst = 2;
    })
    .await;
    assert!(
        reply(&app, MEMBER, "doctors in Bengaluru")
            .await
            .unwrap()
            .starts_with("Found")
    );
    assert!(
        reply(&app, MEMBER, "doctors in Chennai")
            .await
            .unwrap()
            .starts_with("Found")
    );
    let refusal = reply(&app, MEMBER, "doctors in Mumbai").await.unwrap();
    assert_eq!(
        refusal,
        "You've reached the limit of 60 searches per hour. Please try again in 1 minute."
    );
    let refusal = reply(&app, MEMBER, "hi").await.unwrap();
    assert_eq!(
        refusal,
        "You've reached the limit of 3 messages per hour. Please try again in 20 minutes."
    );
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_shows_what_is_left() {
    let app = spawn_admin_app().await;
    reply(&app, MEMBER, "doctors in Bengaluru").await;
    reply(&app, MEMBER, "hi").await;
    let limits = app.admin_json(&format!("/admin/limits/{MEMBER}")).await;
    assert_eq!(limits["limits"]["messages"]["remaining"], 48);
    assert_eq!(limits["limits"]["messages"]["limit"], 50);
    assert_eq!(limits["limits"]["searches"]["remaining"], 29);
    let again = app.admin_json(&format!("/admin/limits/{MEMBER}")).await;
    assert_eq!(again, limits, "looking spends nothing");
    let session = app.admin_json(&format!("/admin/sessions/{MEMBER}")).await;
    assert_eq!(session["stats"]["limits"]["searches"]["remaining"], 29);
    let unauthorised = app
        .client
        .get(app.url(&format!("/admin/limits/{MEMBER}")))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
    app.stop().await;
}

/// The real binary with the legacy env name, killed with -9 mid-stretch.
#[tokio::test]
async fn limits_from_legacy_env_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut command = roster_command(dir.path());
        command
            .arg("serve")
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .env("RATE_LIMIT_MESSAGES_PER_HOUR", "5");
        RosterProcess::start(command)
    };
    async fn send(server: &RosterProcess, n: usize) -> String {
        let fields = whatsapp_form(MEMBER, "hi", &format!("SMlimit{n:026}"));
        messages(&server.post_signed(&fields).await.text().await.unwrap()).join("")
    }
    let server = start();
    for n in 0..5 {
        assert!(send(&server, n).await.contains("Hello"));
    }
    server.crash();
    let server = start();
    let refusal = send(&server, 5).await;
    assert!(
        refusal.contains("limit of 5 messages per hour"),
        "{refusal}"
    );
    server.terminate();
}
