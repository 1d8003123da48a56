//! Memory under a flood of strangers: the once-an-hour refusal is remembered
//! for at most `limits.max_strangers` numbers, the least recently seen
//! forgotten first.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use roster::clock::ManualClock;
use roster::http::{App, Options};
use roster::limits::StrangerLimiter;
use roster::phone::{PhoneNumber, Region};
use tower::ServiceExt;

use crate::common::*;

/// Distinct valid Indian mobile numbers that are not in the directory.
fn stranger(n: u32) -> String {
    format!("+9199{n:08}")
}

/// How many strangers the router test sends: `ROSTER_TEST_STRANGERS`, else
/// 10,000. A debug build validates about a thousand new numbers a second
/// (libphonenumber), so 200,000 is for `cargo test --release`.
fn strangers_to_send() -> u32 {
    std::env::var("ROSTER_TEST_STRANGERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_strangers_through_the_router_is_remembered_up_to_the_bound() {
    const BOUND: u64 = 2_500;
    let strangers = strangers_to_send();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.limits.max_strangers = BOUND;
    // In-process through the real router, signatures off (--dev): the
    // signature is not what a flood of strangers costs.
    let app = App::build(
        config,
        Options {
            dev: true,
            clock: ManualClock::starting_now(),
        },
    )
    .unwrap();
    let router = app.router();
    let state = app.state().clone();
    let started = Instant::now();
    let tasks = 2;
    let peak = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (router, state, peak) = (router.clone(), state.clone(), Arc::clone(&peak));
        handles.push(tokio::spawn(async move {
            for n in (task..strangers).step_by(tasks as usize) {
                let form = whatsapp_form(&stranger(n), "hi", &format!("SM{n:032}"));
                let request = Request::post("/whatsapp/webhook")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(encode_form(&form)))
                    .unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), 200, "stranger {n}");
                if n % 500 == 0 {
                    peak.fetch_max(state.limits.strangers.len(), Ordering::Relaxed);
                }
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let remembered = state.limits.strangers.len();
    let peak = peak.load(Ordering::Relaxed).max(remembered);
    println!(
        "{strangers} strangers through the router in {:?}: {remembered} remembered, peak {peak}",
        started.elapsed()
    );
    assert_eq!(remembered as u64, BOUND.min(u64::from(strangers)));
    assert!(peak as u64 <= BOUND, "peak {peak}");
    let metrics = state.metrics.render();
    assert!(
        metrics.contains(&format!("roster_strangers_remembered {remembered}\n")),
        "{metrics}"
    );
}

#[test]
fn two_hundred_thousand_strangers_stay_at_the_bound_oldest_forgotten_first() {
    const BOUND: usize = 100_000;
    let clock = ManualClock::starting_now();
    let limiter = StrangerLimiter::new(clock.clone(), BOUND);
    let phones: Vec<PhoneNumber> = (0..200_000u32)
        .map(|n| PhoneNumber::from_stored(&stranger(n)).unwrap())
        .collect();
    let mut peak = 0;
    for (n, phone) in phones.iter().enumerate() {
        assert!(limiter.may_reply(phone), "a new stranger is told once");
        if n % 1000 == 0 {
            peak = peak.max(limiter.len());
        }
    }
    assert_eq!(limiter.len(), BOUND);
    assert!(peak <= BOUND);
    // The newest are remembered (silence), the oldest were forgotten (told
    // again: the cost of the bound is one more polite refusal).
    assert!(!limiter.may_reply(&phones[199_999]));
    assert!(limiter.may_reply(&phones[0]));
    assert_eq!(limiter.len(), BOUND);
    // Their hour over, strangers are dropped by the idle sweep.
    clock.advance(Duration::from_secs(3601));
    limiter.forget_idle();
    assert!(limiter.is_empty());
    let again = PhoneNumber::parse(STRANGER, Region::default()).unwrap();
    assert!(limiter.may_reply(&again));
    assert!(!limiter.may_reply(&again), "one refusal an hour still");
}
