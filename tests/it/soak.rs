//! The crash soak: senders talk to the real binary (strict durability, so
//! acknowledged means durable) while it is killed with SIGKILL at random
//! moments and restarted on the same data dir.
//!
//! After every restart, before anyone sends again, each sender's session is
//! checked through the admin API: its message count is what was
//! acknowledged (plus, at most, the one message that was in flight at the
//! kill), and its history ends with exactly those messages, in order. Then
//! each sender re-sends its in-flight message with the same MessageSid,
//! which must count once whether or not it had been committed before the
//! kill; the next check (and the last one, after a clean stop) proves it.
//!
//! The CI form is short (3 kills, about 30 s). The same test runs longer
//! with `SOAK_KILLS` (kills), `SOAK_SECS` (seconds of sending in all),
//! `SOAK_SENDERS` and `SOAK_SEED`, e.g.
//! `SOAK_KILLS=20 SOAK_SECS=200 cargo test --test soak -- --nocapture`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::process::{RosterProcess, roster_command};
use crate::common::*;
use tokio::sync::{Mutex, watch};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: a seeded, dependency-free source of kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[low, high)` milliseconds.
    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = (high - low).as_millis().max(1) as u64;
        low + Duration::from_millis(self.next() % span)
    }
}

fn phone(sender: usize) -> String {
    format!("+9198450100{sender:02}")
}

/// A directory of `senders` active members.
fn write_directory(path: &Path, senders: usize) {
    let mut csv = String::from(
        "member_id,name,phone,email,profession,specialty,designation,organization,city,area,skills,services,graduation_year,degree,branch,bio,role,status,share_contact,languages\n",
    );
    for sender in 0..senders {
        csv.push_str(&format!(
            "S{sender:03},Soak Sender {sender},{},s{sender}@example.org,Engineer,,,,Pune,,,,2010,BE,,,member,active,true,English\n",
            phone(sender)
        ));
    }
    std::fs::write(path, csv).unwrap();
}

/// One message of one sender.
#[derive(Debug, Clone)]
struct Message {
    text: String,
    sid: String,
}

/// What one sender has sent.
#[derive(Debug, Default)]
struct Ledger {
    /// Acknowledged with a 200, in order.
    acknowledged: Vec<Message>,
    /// Sent when the server died: no answer came.
    in_flight: Option<Message>,
    next: u64,
}

/// The history a session must end with: the last `max_history` of `texts`.
fn tail(texts: &[String], max_history: usize) -> &[String] {
    &texts[texts.len().saturating_sub(max_history)..]
}

const MAX_HISTORY: usize = 1000;

/// Checks one sender's session against its ledger; returns how many of its
/// acknowledged messages were found (all of them, or it panics) and
/// whether its in-flight message had been committed before the kill.
async fn verify(server: &RosterProcess, sender: usize, ledger: &Ledger) -> (usize, bool) {
    let phone = phone(sender);
    let response = reqwest::Client::new()
        .get(server.url(&format!("/admin/sessions/{phone}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let (count, history) = if response.status() == 404 {
        (0, Vec::new())
    } else {
        let session: serde_json::Value = response.json().await.unwrap();
        let history: Vec<String> = session["conversationHistory"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["query"].as_str().unwrap().to_owned())
            .collect();
        (session["messageCount"].as_u64().unwrap() as usize, history)
    };
    let mut expected: Vec<String> = ledger.acknowledged.iter().map(|m| m.text.clone()).collect();
    let acknowledged = expected.len();
    let committed = match &ledger.in_flight {
        Some(message) if count == acknowledged + 1 => {
            expected.push(message.text.clone());
            true
        }
        _ => false,
    };
    assert_eq!(
        count,
        expected.len(),
        "sender {sender}: {acknowledged} acknowledged, in flight {:?}, found {count}",
        ledger.in_flight
    );
    assert_eq!(
        history,
        tail(&expected, MAX_HISTORY),
        "sender {sender}: the history ends with what was acknowledged"
    );
    (count - usize::from(committed), committed)
}

async fn send(client: &reqwest::Client, base: &str, from: &str, message: &Message) -> Option<u16> {
    let url = format!("{base}/whatsapp/webhook");
    let fields = whatsapp_form(from, &message.text, &message.sid);
    let signature = roster::twilio::SignatureVerifier::new(AUTH_TOKEN).sign(&url, &fields);
    let response = client
        .post(&url)
        .header("x-twilio-signature", signature)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&fields))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    // The acknowledgement is the whole answer, body included.
    response.bytes().await.ok()?;
    Some(status)
}

/// Sends one message after another (re-sending the one in flight first)
/// while a server is up; waits while none is.
async fn sender_loop(
    sender: usize,
    ledger: Arc<Mutex<Ledger>>,
    mut server: watch::Receiver<Option<String>>,
    done: Arc<AtomicBool>,
    pace: Duration,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let from = phone(sender);
    while !done.load(Ordering::Acquire) {
        let Some(base) = server.borrow_and_update().clone() else {
            if server.changed().await.is_err() {
                return;
            }
            continue;
        };
        let message = {
            let mut ledger = ledger.lock().await;
            match ledger.in_flight.take() {
                Some(message) => message,
                None => {
                    ledger.next += 1;
                    Message {
                        text: format!("soak {sender} {}", ledger.next),
                        sid: format!("SMsoak{sender:04}{:022}", ledger.next),
                    }
                }
            }
        };
        let status = send(&client, &base, &from, &message).await;
        let mut ledger = ledger.lock().await;
        match status {
            Some(200) => ledger.acknowledged.push(message),
            Some(other) => panic!("sender {sender}: status {other} for {message:?}"),
            // The server died under it: in flight until the next server.
            None => {
                ledger.in_flight = Some(message);
                drop(ledger);
                // Wait for this server to be declared gone.
                while server.borrow().as_deref() == Some(base.as_str()) {
                    if server.changed().await.is_err() {
                        return;
                    }
                }
                continue;
            }
        }
        drop(ledger);
        tokio::time::sleep(pace).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_exchanges_survive_kill_9_exactly_once() {
    let kills = env_or("SOAK_KILLS", 3) as usize;
    let secs = env_or("SOAK_SECS", 24);
    let senders = env_or("SOAK_SENDERS", 8) as usize;
    let seed = env_or("SOAK_SEED", 16);
    let pace = Duration::from_millis(env_or("SOAK_PACE_MS", 5));
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let members = dir.path().join("members.csv");
    write_directory(&members, senders);
    let start = || {
        let mut command = roster_command(dir.path());
        command
            .arg("serve")
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .env("ROSTER_ADMIN__TOKEN", ADMIN_TOKEN)
            .env("ROSTER_DIRECTORY__MEMBERS_CSV", &members)
            .env("ROSTER_STORAGE__DURABILITY", "strict")
            // Only the strict group commit may save an exchange.
            .env("ROSTER_STORAGE__FLUSH_EVERY", "1h")
            .env("ROSTER_SESSION__MAX_HISTORY", MAX_HISTORY.to_string())
            .env("ROSTER_SESSION__TTL", "24h")
            .env("ROSTER_LIMITS__MESSAGES_PER_HOUR", "1000000")
            .env("ROSTER_LIMITS__SEARCHES_PER_HOUR", "1000000");
        RosterProcess::start(command)
    };

    let ledgers: Vec<Arc<Mutex<Ledger>>> = (0..senders).map(|_| Arc::default()).collect();
    let (publish, url) = watch::channel(None::<String>);
    let done = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = ledgers
        .iter()
        .enumerate()
        .map(|(sender, ledger)| {
            tokio::spawn(sender_loop(
                sender,
                Arc::clone(ledger),
                url.clone(),
                Arc::clone(&done),
                pace,
            ))
        })
        .collect();

    let round = Duration::from_secs(secs) / (kills as u32 + 1);
    let started = Instant::now();
    let mut committed_in_flight = 0;
    let mut resent = 0;
    let mut server = start();
    for kill in 0..=kills {
        publish.send_replace(Some(server.url("")));
        let live = if kill < kills {
            rng.between(round / 2, round * 3 / 2)
        } else {
            round
        };
        tokio::time::sleep(live).await;
        publish.send_replace(None);
        if kill == kills {
            break;
        }
        server.crash();
        server = start();
        // Nobody sends while the new server is checked.
        let mut found = 0;
        for (sender, ledger) in ledgers.iter().enumerate() {
            let ledger = ledger.lock().await;
            resent += usize::from(ledger.in_flight.is_some());
            let (count, committed) = verify(&server, sender, &ledger).await;
            found += count;
            committed_in_flight += usize::from(committed);
        }
        let acknowledged: usize = futures_len(&ledgers).await;
        assert_eq!(found, acknowledged);
        println!(
            "kill {} at {:.1}s: acknowledged {acknowledged}, found {found}",
            kill + 1,
            started.elapsed().as_secs_f64()
        );
    }
    // The senders stop; the ones waiting on an answer get it.
    done.store(true, Ordering::Release);
    publish.send_replace(Some(server.url("")));
    for task in tasks {
        task.await.unwrap();
    }
    // Whatever is still in flight is re-sent once more, then all is checked.
    let client = reqwest::Client::new();
    for (sender, ledger) in ledgers.iter().enumerate() {
        let mut ledger = ledger.lock().await;
        if let Some(message) = ledger.in_flight.take() {
            assert_eq!(
                send(&client, &server.url(""), &phone(sender), &message).await,
                Some(200)
            );
            ledger.acknowledged.push(message);
        }
    }
    let (status, _) = server.terminate();
    assert_eq!(status.code(), Some(0));
    let server = start();
    let mut found = 0;
    for (sender, ledger) in ledgers.iter().enumerate() {
        let ledger = ledger.lock().await;
        let (count, committed) = verify(&server, sender, &ledger).await;
        assert!(!committed, "nothing is in flight after a clean stop");
        found += count;
    }
    let acknowledged = futures_len(&ledgers).await;
    println!(
        "soak: {kills} kills, {senders} senders, seed {seed}, {:.0}s: acknowledged {acknowledged}, found {found}; \
         {resent} in flight at a kill re-sent with their MessageSid ({committed_in_flight} had been committed before the kill, counted once)",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(found, acknowledged);
    assert!(acknowledged > 0);
    server.terminate();
}

/// Acknowledged messages over all ledgers.
async fn futures_len(ledgers: &[Arc<Mutex<Ledger>>]) -> usize {
    let mut total = 0;
    for ledger in ledgers {
        total += ledger.lock().await.acknowledged.len();
    }
    total
}
