//! What one rate-limit check costs: governor's in-memory keyed limiter
//! against Roster's persistent one (sled state, compare-and-swap).

use std::num::NonZeroU32;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use roster::clock::SystemClock;
use roster::config::LimitsConfig;
use roster::directory::synthetic;
use roster::limits::{Limits, WallClock};
use roster::phone::{PhoneNumber, Region};

fn phones(n: usize) -> Vec<PhoneNumber> {
    (0..n)
        .map(|i| PhoneNumber::parse(&synthetic::synthetic_phone(i), Region::default()).unwrap())
        .collect()
}

fn check(c: &mut Criterion) {
    let phones = phones(10_000);
    let mut group = c.benchmark_group("limits/check");

    let quota = governor::Quota::per_hour(NonZeroU32::new(1_000_000).unwrap());
    let memory: governor::RateLimiter<
        PhoneNumber,
        _,
        _,
        governor::middleware::NoOpMiddleware<governor::nanos::Nanos>,
    > = governor::RateLimiter::dashmap_with_clock(quota, WallClock::new(Arc::new(SystemClock)));
    let mut i = 0;
    group.bench_function("in-memory", |b| {
        b.iter(|| {
            i += 1;
            memory.check_key(&phones[i % phones.len()]).is_ok()
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new().path(dir.path()).open().unwrap();
    let config = LimitsConfig {
        messages_per_hour: 1_000_000,
        ..LimitsConfig::default()
    };
    let limits = Limits::open(&db, &config, Arc::new(SystemClock)).unwrap();
    group.bench_function("persistent/allowed", |b| {
        b.iter(|| {
            i += 1;
            limits.messages.check(&phones[i % phones.len()])
        })
    });
    let spent = &phones[0];
    let strict = Limits::open(&db, &LimitsConfig::default(), Arc::new(SystemClock)).unwrap();
    while strict.searches.check(spent) == roster::limits::Verdict::Allowed {}
    group.bench_function("persistent/refused", |b| {
        b.iter(|| strict.searches.check(spent))
    });
    group.bench_function("persistent/peek", |b| {
        b.iter(|| {
            i += 1;
            limits.view(&phones[i % phones.len()])
        })
    });
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
