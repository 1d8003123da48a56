//! The assistant per message: understand + search + reply, on generated
//! directories of 1,000 and 100,000 members, for a spread of messages (a
//! structured search with an alias, an alumni question, a name, typos,
//! free words over a quarter of the directory, a follow-up page, a role
//! noun, an organisation by another writing, a surname, Hinglish, a
//! profession no one has, a narrowing follow-up); the index build at
//! 100,000 members; semantic ranking (cosine over one contiguous array of
//! 384-dimension vectors) at 100,000 members, all of them and a 10% city
//! subset. After criterion, a plain timing loop
//! prints p50/p99/max per message (criterion reports means).
//!
//! `cargo bench --bench assistant`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group};
use roster::assistant::{Assistant, Synonyms};
use roster::conversation::Session;
use roster::directory::{Directory, synthetic};
use roster::models::semantic::SemanticIndex;
use roster::phone::Region;

const SIZES: [usize; 2] = [1_000, 100_000];
const SEED: u64 = 42;
const TTL_MS: u64 = 30 * 60 * 1000;

/// (label, message); "more" follows a search for doctors in Bengaluru.
const MESSAGES: &[(&str, &str)] = &[
    ("structured", "cardiologists in Bangalore"),
    ("alumni", "Find 1995 passout mechanical engineers"),
    ("name", "is there a Priya Sharma"),
    ("typos", "docter in Banglore"),
    ("free-words", "engineers in Pune"),
    ("follow-up", "more"),
    ("role-noun", "orthopaedic surgeons in Pune"),
    ("organisation", "anyone at Sharma and Co"),
    ("surname", "anyone with the surname Pillai"),
    ("hinglish", "koi doctor hai kya Pune mein"),
    ("no-such-role", "any plumbers in Pune?"),
    ("narrowing", "the one in Koramangala"),
];

struct Fixture {
    directory: Arc<Directory>,
    assistant: Assistant,
    /// A session whose last exchange searched doctors in Bengaluru.
    session: Session,
}

fn fixture(members: usize) -> Fixture {
    let csv = synthetic::synthetic_csv(members, SEED);
    let directory = Arc::new(Directory::from_csv(&csv, Region::default()).expect("generated CSV"));
    let assistant =
        Assistant::with_synonyms(directory.clone(), "Bench Network", &Synonyms::default());
    let sender = &directory.members()[0];
    let mut session = Session::new(sender, 0, TTL_MS);
    let first = "doctors in Bengaluru";
    let understanding = assistant.understand(first, &session, sender);
    let answer = assistant.answer(&understanding, sender);
    session.record(answer.entry(first, 0, &understanding), true, 10, TTL_MS);
    Fixture {
        directory,
        assistant,
        session,
    }
}

/// One message, end to end; returns the reply length so nothing is elided.
fn handle(f: &Fixture, message: &str) -> usize {
    let sender = &f.directory.members()[0];
    let understanding = f.assistant.understand(message, &f.session, sender);
    f.assistant.answer(&understanding, sender).text.len()
}

fn per_message(c: &mut Criterion) {
    for members in SIZES {
        let f = fixture(members);
        let mut group = c.benchmark_group(format!("assistant/message/{members}"));
        for (label, message) in MESSAGES {
            group.bench_with_input(BenchmarkId::from_parameter(label), message, |b, message| {
                b.iter(|| handle(&f, message))
            });
        }
        group.finish();
    }
}

fn index_build(c: &mut Criterion) {
    let csv = synthetic::synthetic_csv(100_000, SEED);
    let directory = Arc::new(Directory::from_csv(&csv, Region::default()).expect("generated CSV"));
    let mut group = c.benchmark_group("assistant/build");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("100000", |b| {
        b.iter(|| {
            Assistant::with_synonyms(directory.clone(), "Bench Network", &Synonyms::default())
        })
    });
    group.finish();
}

/// Unit vectors from a fixed LCG: what ranking costs does not depend on
/// what the vectors mean.
fn unit_vectors(count: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    (0..count)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim).map(|_| next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect()
}

fn semantic(c: &mut Criterion) {
    const MEMBERS: usize = 100_000;
    const DIM: usize = 384;
    let index = SemanticIndex::new(
        unit_vectors(MEMBERS, DIM, SEED)
            .into_iter()
            .map(Some)
            .collect(),
    );
    let query = unit_vectors(1, DIM, SEED + 1).remove(0);
    let city: Vec<u32> = (0..MEMBERS as u32).step_by(10).collect();
    let mut group = c.benchmark_group("assistant/semantic/100000");
    group.bench_function("all", |b| {
        b.iter(|| index.rank(&query, None, 0.0, roster::assistant::PAGE_SIZE))
    });
    group.bench_function("city-10pct", |b| {
        b.iter(|| index.rank(&query, Some(&city), 0.0, roster::assistant::PAGE_SIZE))
    });
    group.finish();
}

criterion_group!(benches, per_message, index_build, semantic);

/// p50, p99 and max of each message over many runs, printed as a table.
fn percentiles() {
    const RUNS: usize = 5_000;
    println!("\nper-message latency (understand + search + reply), {RUNS} runs each:");
    println!(
        "{:>8}  {:<12} {:>9} {:>9} {:>9}",
        "members", "message", "p50", "p99", "max"
    );
    for members in SIZES {
        let f = fixture(members);
        for (label, message) in MESSAGES {
            for _ in 0..200 {
                handle(&f, message);
            }
            let mut times: Vec<Duration> = (0..RUNS)
                .map(|_| {
                    let start = Instant::now();
                    std::hint::black_box(handle(&f, message));
                    start.elapsed()
                })
                .collect();
            times.sort_unstable();
            let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
            println!(
                "{members:>8}  {label:<12} {:>7.1}µs {:>7.1}µs {:>7.1}µs",
                at(0.50).as_secs_f64() * 1e6,
                at(0.99).as_secs_f64() * 1e6,
                at(1.0).as_secs_f64() * 1e6,
            );
        }
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench` (which passes --bench), not as a test.
    if std::env::args().any(|a| a == "--bench") {
        percentiles();
    }
}
