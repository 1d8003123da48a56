//! What the session store costs per message: load (or create) the session,
//! record the exchange, save it (and make it durable in strict mode); on one
//! task and on 32 concurrent tasks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use roster::clock::{Clock, SystemClock};
use roster::config::{Config, Durability};
use roster::conversation::{Entities, Entry, Intent};
use roster::directory::{Directory, synthetic};
use roster::phone::Region;
use roster::shutdown::ShutdownTrigger;
use roster::store::Store;

const MEMBERS: usize = 10_000;

struct Bench {
    store: Arc<Store>,
    directory: Arc<Directory>,
    _trigger: ShutdownTrigger,
    _dir: tempfile::TempDir,
}

fn setup(runtime: &tokio::runtime::Runtime, durability: Durability) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().join("state");
    config.storage.durability = durability;
    let db = roster::store::open(&config.storage).unwrap();
    let store = Arc::new(Store::open(&db, &config, Arc::new(SystemClock)).unwrap());
    let (trigger, shutdown) = ShutdownTrigger::new();
    runtime.spawn(Arc::clone(&store).run(
        config.session.sweep_interval,
        config.storage.check_every,
        shutdown,
    ));
    let directory = Arc::new(
        Directory::from_csv(&synthetic::synthetic_csv(MEMBERS, 7), Region::default()).unwrap(),
    );
    Bench {
        store,
        directory,
        _trigger: trigger,
        _dir: dir,
    }
}

/// One message's worth of session work for member `i`.
async fn one_message(store: &Store, directory: &Directory, i: usize) {
    let member = &directory.members()[i % directory.len()];
    let mut turn = store.turn(member.phone).await.unwrap();
    let mut session = turn.session_for(member);
    let entry = Entry {
        query: "Find doctors in Bangalore".to_owned(),
        timestamp_ms: SystemClock.now_ms(),
        intent: Intent::Search,
        entities: Entities {
            profession: Some("Doctor".to_owned()),
            city: Some("Bengaluru".to_owned()),
            ..Entities::default()
        },
        result_count: 12,
        result_ids: (0..5).map(|n| format!("G{n:07}")).collect(),
        page: 0,
    };
    session.record(entry, true, store.max_history(), store.ttl_ms());
    let sid = format!("SM{i:032}");
    turn.record_exchange(session, Some((&sid, "<Response/>")));
    turn.commit().await.unwrap();
}

fn per_message(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("session/message");
    group.measurement_time(Duration::from_secs(5));
    for (name, durability) in [
        ("relaxed", Durability::Relaxed),
        ("strict", Durability::Strict),
    ] {
        let bench = setup(&runtime, durability);
        let mut next = 0usize;
        group.bench_function(format!("{name}/1 task"), |b| {
            b.to_async(&runtime).iter(|| {
                next += 1;
                one_message(&bench.store, &bench.directory, next)
            })
        });
        group.bench_function(format!("{name}/32 tasks"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (store, directory) = (bench.store.clone(), bench.directory.clone());
                async move {
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..32u64)
                        .map(|t| {
                            let (store, directory) = (store.clone(), directory.clone());
                            tokio::spawn(async move {
                                for i in (t..iters).step_by(32) {
                                    one_message(&store, &directory, (i as usize) * 31 + t as usize)
                                        .await;
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    started.elapsed()
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, per_message);
criterion_main!(benches);
