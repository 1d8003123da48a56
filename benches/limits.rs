//! What one rate-limit check costs: governor's in-memory keyed limiter
//! against Roster's check of a phone's bucket (the GCRA on the state kept
//! in the phone record; the record's write is the session bench's).

use std::num::NonZeroU32;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use roster::clock::SystemClock;
use roster::config::LimitsConfig;
use roster::directory::synthetic;
use roster::limits::Limits;
use roster::phone::{PhoneNumber, Region};
use roster::store::record::Bucket;

fn phones(n: usize) -> Vec<PhoneNumber> {
    (0..n)
        .map(|i| PhoneNumber::parse(&synthetic::synthetic_phone(i), Region::default()).unwrap())
        .collect()
}

fn check(c: &mut Criterion) {
    let phones = phones(10_000);
    let mut group = c.benchmark_group("limits/check");

    let quota = governor::Quota::per_hour(NonZeroU32::new(1_000_000).unwrap());
    let memory = governor::RateLimiter::dashmap(quota);
    let mut i = 0;
    group.bench_function("in-memory", |b| {
        b.iter(|| {
            i += 1;
            memory.check_key(&phones[i % phones.len()]).is_ok()
        })
    });

    let config = LimitsConfig {
        messages_per_hour: 1_000_000,
        ..LimitsConfig::default()
    };
    let limits = Limits::new(&config, Arc::new(SystemClock));
    let mut buckets = vec![Bucket::default(); phones.len()];
    group.bench_function("bucket/allowed", |b| {
        b.iter(|| {
            i += 1;
            let now = limits.now_ns();
            limits.messages.check(&mut buckets[i % phones.len()], now)
        })
    });
    let strict = Limits::new(&LimitsConfig::default(), Arc::new(SystemClock));
    let mut spent = Bucket::default();
    while strict.searches.check(&mut spent, strict.now_ns()) == roster::limits::Verdict::Allowed {}
    group.bench_function("bucket/refused", |b| {
        b.iter(|| strict.searches.check(&mut spent, strict.now_ns()))
    });
    group.bench_function("bucket/peek", |b| {
        b.iter(|| {
            i += 1;
            limits
                .messages
                .peek(&buckets[i % phones.len()], limits.now_ns())
        })
    });
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
