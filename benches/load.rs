//! End-to-end load: Roster's real router against a bare "ceiling" route, in
//! one process, on loopback.
//!
//! `cargo bench --bench load -- [--members N] [--clients K] [--seconds T]
//! [--rounds R] [--sweep N] [--only ceiling|relaxed|strict|hot|sweep]`
//!
//! For each round it runs the ceiling (an axum route that parses the same
//! form and returns a fixed TwiML reply), then Roster in relaxed mode, then
//! in strict mode, each on a fresh data dir, each driven by K keep-alive
//! clients for T seconds with correctly signed requests from many member
//! phones (about 70% searches, 20% follow-ups, 10% greetings/help), plus a
//! "hot" run where 20 phones send everything, so rate limits refuse most.
//! With `--sweep N`, a relaxed run also preloads N sessions that fall due in
//! the middle of the run, to show what a large sweep does to p99.
//!
//! With `--pinned`, the real `roster` binary is the server instead, pinned
//! to CPU 0 with the clients on CPU 1, and then unpinned: see `load/pinned.rs`.
//!
//! Server and clients run on separate tokio runtimes; CPU time per message
//! is the server threads' CPU (from /proc) divided by requests answered.

#[path = "load/pinned.rs"]
mod pinned;
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use roster::clock::{Clock, SystemClock};
use roster::config::{Config, Durability};
use roster::directory::synthetic;
use roster::http::{App, Options};
use roster::shutdown::ShutdownTrigger;
use roster::twilio::{SignatureVerifier, parse_form};

const TOKEN: &str = "load-bench-auth-token";
const CLIENT_THREAD: &str = "load-client";

struct Settings {
    members: usize,
    clients: usize,
    seconds: u64,
    rounds: usize,
    sweep: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Ceiling,
    Relaxed,
    Strict,
    RelaxedHot,
    RelaxedSweep,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Ceiling => "ceiling",
            Target::Relaxed => "relaxed",
            Target::Strict => "strict",
            Target::RelaxedHot => "relaxed, 20 hot phones",
            Target::RelaxedSweep => "relaxed + 100k sweep",
        }
    }
}

/// What one run measured.
struct RunResult {
    target: Target,
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    server_cpu: Duration,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }

    fn cpu_us_per_message(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
}

/// The `p` quantile of sorted latencies in µs, in ms (NaN when empty).
fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted_us[index]) / 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Some(addr) = support::text_arg("--ceiling-server") {
        pinned::ceiling_server(&addr);
        return;
    }
    if std::env::args().any(|a| a == "--pinned") {
        pinned::main();
        return;
    }
    let settings = Settings {
        members: support::arg("--members", 10_000),
        clients: support::arg("--clients", 32),
        seconds: support::arg("--seconds", 10),
        rounds: support::arg("--rounds", 2),
        sweep: support::arg("--sweep", 0),
    };
    println!(
        "load: {} members, {} keep-alive clients, {} s per run, {} rounds{}",
        settings.members,
        settings.clients,
        settings.seconds,
        settings.rounds,
        if settings.sweep > 0 {
            format!(", sweep of {}", settings.sweep)
        } else {
            String::new()
        }
    );
    let work = tempfile::tempdir().expect("temp dir");
    let csv_path = work.path().join("members.csv");
    std::fs::write(&csv_path, synthetic::synthetic_csv(settings.members, 42))
        .expect("write directory");
    let phones: Arc<Vec<String>> = Arc::new(
        (0..settings.members)
            .map(synthetic::synthetic_phone)
            .collect(),
    );

    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("roster-server")
        .enable_all()
        .build()
        .expect("server runtime");
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .build()
        .expect("client runtime");

    let mut plan = Vec::new();
    for round in 1..=settings.rounds {
        for target in [Target::Ceiling, Target::Relaxed, Target::Strict] {
            plan.push((round, target));
        }
    }
    plan.push((0, Target::RelaxedHot));
    if settings.sweep > 0 {
        plan.push((0, Target::Relaxed));
        plan.push((0, Target::RelaxedSweep));
    }
    // `--only relaxed` (or ceiling, strict, hot, sweep) runs just that target.
    if let Some(name) = support::text_arg("--only") {
        plan.retain(|(_, target)| {
            target.name().starts_with(&name) && (name != "relaxed" || *target == Target::Relaxed)
        });
    }
    let mut results: Vec<(usize, RunResult)> = Vec::new();
    for (index, (round, target)) in plan.iter().enumerate() {
        let run_dir = work.path().join(format!("run-{index}"));
        let result = run_one(
            *target,
            &settings,
            &csv_path,
            &run_dir,
            &phones,
            &server_runtime,
            &client_runtime,
        );
        eprintln!(
            "\r[{}/{}] {:<24} {:>8.0} req/s  p99 {:>6.2} ms",
            index + 1,
            plan.len(),
            target.name(),
            result.rate(),
            result.percentile(0.99)
        );
        results.push((*round, result));
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    print_table(&results);
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    target: Target,
    settings: &Settings,
    csv_path: &std::path::Path,
    data_dir: &std::path::Path,
    phones: &Arc<Vec<String>>,
    server_runtime: &tokio::runtime::Runtime,
    client_runtime: &tokio::runtime::Runtime,
) -> RunResult {
    let (trigger, shutdown) = ShutdownTrigger::new();
    let (addr, server) = server_runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = match target {
            Target::Ceiling => {
                let mut shutdown = shutdown.clone();
                tokio::spawn(async move {
                    axum::serve(listener, ceiling_router())
                        .with_graceful_shutdown(async move { shutdown.recv().await })
                        .await
                        .map_err(anyhow::Error::from)
                })
            }
            _ => {
                let mut config = Config::default();
                config.twilio.auth_token = TOKEN.to_owned();
                config.directory.members_csv = csv_path.to_owned();
                config.storage.data_dir = data_dir.to_owned();
                config.storage.durability = if target == Target::Strict {
                    Durability::Strict
                } else {
                    Durability::Relaxed
                };
                config.log.level = "warn".to_owned();
                if target == Target::RelaxedSweep || settings.sweep > 0 {
                    config.session.sweep_interval =
                        Duration::from_secs(settings.seconds.max(2) / 2);
                }
                if target == Target::RelaxedSweep {
                    preload_due_sessions(&config, settings.sweep, settings.seconds).await;
                }
                let app = App::build(
                    config,
                    Options {
                        dev: false,
                        clock: Arc::new(SystemClock),
                    },
                )
                .expect("roster builds");
                let sessions = Arc::clone(&app.state().sessions);
                let run = app.run(listener, shutdown.clone());
                tokio::spawn(async move {
                    let result = run.await;
                    let swept = sessions.stats().swept_sessions;
                    if swept > 0 {
                        eprintln!("\n  the sweeper removed {swept} sessions during the run");
                    }
                    result
                })
            }
        };
        (addr, handle)
    });

    let hot = target == Target::RelaxedHot;
    let phones = if hot {
        Arc::new(phones.iter().take(20).cloned().collect::<Vec<_>>())
    } else {
        phones.clone()
    };
    let cpu_before = server_cpu();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(settings.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let progress = {
        let (stop, total) = (stop.clone(), total.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let secs = started.elapsed().as_secs_f64();
                eprint!(
                    "\r  {:<24} {:>5.1} s  {:>8} requests  {:>8.0} req/s",
                    target.name(),
                    secs,
                    total.load(Ordering::Relaxed),
                    total.load(Ordering::Relaxed) as f64 / secs
                );
            }
        })
    };
    let outcomes: Vec<(u64, u64, Vec<u32>)> = client_runtime.block_on(async {
        let tasks: Vec<_> = (0..settings.clients)
            .map(|client| {
                let phones = phones.clone();
                let total = total.clone();
                let clients = settings.clients;
                tokio::spawn(async move {
                    drive(addr, client, clients, &phones, deadline, &total).await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("client task"));
        }
        outcomes
    });
    let elapsed = started.elapsed();
    let server_cpu = server_cpu().saturating_sub(cpu_before);
    stop.store(true, Ordering::Relaxed);
    let _ = progress.join();
    trigger.fire();
    server_runtime.block_on(async {
        let _ = server.await;
    });

    let mut latencies_us = Vec::new();
    let (mut requests, mut errors) = (0, 0);
    for (ok, failed, latencies) in outcomes {
        requests += ok;
        errors += failed;
        latencies_us.extend(latencies);
    }
    latencies_us.sort_unstable();
    RunResult {
        target,
        requests,
        errors,
        elapsed,
        latencies_us,
        server_cpu,
    }
}

/// Sessions that fall due halfway through the run, for the sweep test.
async fn preload_due_sessions(config: &Config, count: usize, run_seconds: u64) {
    let db = roster::store::open(&config.storage).expect("open");
    let store = roster::store::Store::open(&db, config, Arc::new(SystemClock)).expect("store");
    let directory =
        roster::directory::Directory::from_csv(&synthetic::synthetic_csv(1, 1), Default::default())
            .expect("dir");
    let template = directory.members()[0].clone();
    let ttl = config.session.ttl.as_millis() as u64;
    // Active long enough ago that they expire a third of the way in.
    let at = SystemClock.now_ms() + run_seconds * 1000 / 3 - ttl;
    let sessions = (0..count).map(|i| {
        let mut member = template.clone();
        member.phone =
            roster::phone::PhoneNumber::parse(&format!("+918{:09}", i), Default::default())
                .unwrap_or(template.phone);
        roster::conversation::Session::new(&member, at, ttl)
    });
    store.import_sessions(sessions).await.expect("preload");
    store.flush().await.expect("flush");
}

/// The ceiling: parse the same form, answer a fixed TwiML reply.
fn ceiling_router() -> Router {
    Router::new().route(
        "/whatsapp/webhook",
        post(|body: Bytes| async move {
            let fields = parse_form(&body).unwrap_or_default();
            let _ = std::hint::black_box(fields);
            (
                [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>ok</Message></Response>"#,
            )
        }),
    )
}

const SEARCHES: &[&str] = &[
    "Find doctors in Bangalore",
    "lawyers in Chennai",
    "any software engineers in Pune?",
    "cardiology doctors in Bengaluru",
    "Architects in Mumbai",
    "chartered accountants in Delhi",
    "teachers in Kolkata",
    "mechanical engineers in Hyderabad",
];
const FOLLOW_UPS: &[&str] = &["more", "contact", "MORE", "2"];
const CHATTER: &[&str] = &["hi", "help", "thanks"];

/// The text of a phone's `seq`th message: about 70% searches, 20%
/// follow-ups (a search when the phone has not searched yet), 10% chatter.
fn message_text(seq: u64, searched: bool) -> &'static str {
    match roll(seq) {
        0..=6 => SEARCHES[(seq as usize / 3) % SEARCHES.len()],
        7 | 8 if searched => FOLLOW_UPS[(seq as usize) % FOLLOW_UPS.len()],
        7 | 8 => SEARCHES[(seq as usize) % SEARCHES.len()],
        _ => CHATTER[(seq as usize) % CHATTER.len()],
    }
}

fn roll(seq: u64) -> u64 {
    (seq.wrapping_mul(2_654_435_761) >> 7) % 10
}

/// Whether message `seq` is a search whatever came before.
fn is_search(seq: u64) -> bool {
    roll(seq) <= 6
}

/// One webhook request as Twilio sends it, signed for `url`, with a
/// MessageSid unique to (`client`, `seq`).
fn signed_request(
    verifier: &SignatureVerifier,
    host: &str,
    url: &str,
    client: usize,
    seq: u64,
    phone: &str,
    body_text: &str,
) -> String {
    let sid = format!("SM{client:08x}{seq:024x}");
    let fields: Vec<(String, String)> = vec![
        ("MessageSid".into(), sid.clone()),
        ("SmsMessageSid".into(), sid),
        (
            "AccountSid".into(),
            "AC00000000000000000000000000000000".into(),
        ),
        ("From".into(), format!("whatsapp:{phone}")),
        ("To".into(), "whatsapp:+14155238886".into()),
        ("Body".into(), body_text.into()),
        ("NumMedia".into(), "0".into()),
        ("ProfileName".into(), "Load".into()),
        ("WaId".into(), phone.trim_start_matches('+').into()),
        ("SmsStatus".into(), "received".into()),
        ("ApiVersion".into(), "2010-04-01".into()),
    ];
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let signature = verifier.sign(url, &fields);
    format!(
        "POST /whatsapp/webhook HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One keep-alive client: signed requests until the deadline.
async fn drive(
    addr: SocketAddr,
    client: usize,
    clients: usize,
    phones: &[String],
    deadline: Instant,
    total: &AtomicU64,
) -> (u64, u64, Vec<u32>) {
    let verifier = SignatureVerifier::new(TOKEN);
    let url = format!("http://{addr}/whatsapp/webhook");
    let mut latencies = Vec::with_capacity(100_000);
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut stream = connect(addr).await;
    let mut buffer = Vec::with_capacity(8192);
    let mut seq: u64 = 0;
    // Each client speaks for its own slice of phones, so one phone's
    // messages stay in order, as they would from one WhatsApp user.
    let mine: Vec<&String> = phones
        .iter()
        .skip(client % phones.len())
        .step_by(clients.max(1))
        .collect();
    let mine: Vec<&String> = if mine.is_empty() {
        phones.iter().take(1).collect()
    } else {
        mine
    };
    let mut last_searched: HashMap<usize, bool> = HashMap::new();
    while Instant::now() < deadline {
        let slot = (seq as usize) % mine.len();
        let phone = mine[slot];
        let searched = last_searched.get(&slot).copied().unwrap_or(false);
        let body_text = message_text(seq, searched);
        last_searched.insert(slot, is_search(seq) || searched);
        let request = signed_request(
            &verifier,
            &addr.to_string(),
            &url,
            client,
            seq,
            phone,
            body_text,
        );
        let sent = Instant::now();
        let status = exchange(&mut stream, request.as_bytes(), &mut buffer).await;
        let latency = sent.elapsed();
        match status {
            Some(200) => {
                ok += 1;
                latencies.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            }
            Some(_) => failed += 1,
            None => {
                failed += 1;
                stream = connect(addr).await;
            }
        }
        total.fetch_add(1, Ordering::Relaxed);
        seq += 1;
    }
    (ok, failed, latencies)
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.set_nodelay(true);
    stream
}

/// Writes one request and reads one response; its status, or None if the
/// connection broke.
async fn exchange(stream: &mut TcpStream, request: &[u8], buffer: &mut Vec<u8>) -> Option<u16> {
    stream.write_all(request).await.ok()?;
    buffer.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let Some(head_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buffer[..head_end]).ok()?;
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        if buffer.len() >= head_end + 4 + length {
            return Some(status);
        }
    }
}

/// CPU time of every thread but the clients' (server workers, blocking
/// pool, sled's threads), from /proc.
fn server_cpu() -> Duration {
    let ticks_per_second = 100.0;
    let mut ticks = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if name.trim().starts_with(CLIENT_THREAD) || name.trim() == "load" {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let after = stat.rsplit(')').next().unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    Duration::from_secs_f64(ticks as f64 / ticks_per_second)
}

fn print_table(results: &[(usize, RunResult)]) {
    println!();
    println!(
        "| round | target | req/s | vs ceiling | p50 ms | p99 ms | p99.9 ms | errors | server CPU µs/msg |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let ceiling_of = |round: usize| {
        results
            .iter()
            .find(|(r, result)| *r == round && result.target == Target::Ceiling)
            .map(|(_, result)| result.rate())
    };
    let mean_ceiling = {
        let rates: Vec<f64> = results
            .iter()
            .filter(|(_, r)| r.target == Target::Ceiling)
            .map(|(_, r)| r.rate())
            .collect();
        rates.iter().sum::<f64>() / rates.len().max(1) as f64
    };
    for (round, result) in results {
        let ceiling = ceiling_of(*round).unwrap_or(mean_ceiling);
        println!(
            "| {} | {} | {:.0} | {:.0}% | {:.2} | {:.2} | {:.2} | {} | {:.0} |",
            if *round == 0 {
                "-".to_owned()
            } else {
                round.to_string()
            },
            result.target.name(),
            result.rate(),
            100.0 * result.rate() / ceiling,
            result.percentile(0.50),
            result.percentile(0.99),
            result.percentile(0.999),
            result.errors,
            result.cpu_us_per_message(),
        );
    }
    println!("(rows without a round compare with the mean ceiling)");
}
