//! `--pinned`: the real `roster` binary as the server, over HTTP, pinned to
//! CPU 0 with this client pinned to CPU 1, then both unpinned, in one run.
//!
//! `cargo bench --bench load -- --pinned [--requests N] [--members N]
//! [--clients K] [--rounds R] [--redis]`
//!
//! `--redis` adds a target: Roster with `storage.backend = "redis"` on a
//! fresh `redis-server` (Debian's; a Unix socket, `appendfsync always`, the
//! durability of strict mode), pinned to the server's CPU; its CPU is shown
//! beside the server's.
//!
//! Each round runs, pinned and then unpinned: the ceiling (this bench's bare
//! axum route, in a child process started like `roster`), Roster relaxed and
//! Roster strict, each server a fresh process on a fresh data dir. Every run
//! sends the same N (default 300,000) distinct requests, built and signed
//! before the clock starts: every MessageSid distinct, each from a member of
//! the directory the server loads, signed as Twilio signs them for the URL
//! the server rebuilds from `Host`. The members (default 10,000, 30 messages
//! each) stay under the default hourly quotas (50 messages, 30 searches), so
//! rate limits do not shape the figures; the table shows the share the
//! server counted as answered, from its `/metrics`.
//!
//! Server CPU is the server process's utime + stime (from /proc/<pid>/stat,
//! all its threads) between the first request and the last answer, divided
//! by the requests answered. The server is configured only through its
//! environment and talked to only over HTTP, so this keeps working whatever
//! the storage inside it becomes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use roster::directory::synthetic;
use roster::twilio::SignatureVerifier;

/// The `Host` every request names; the server rebuilds the signed URL from it.
const HOST: &str = "roster-load.bench";
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

struct Settings {
    requests: usize,
    members: usize,
    clients: usize,
    rounds: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pinned,
    Unpinned,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Pinned => "pinned",
            Mode::Unpinned => "unpinned",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Ceiling,
    Relaxed,
    Strict,
    Redis,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Ceiling => "ceiling",
            Server::Relaxed => "relaxed",
            Server::Strict => "strict",
            Server::Redis => "redis",
        }
    }
}

struct Run {
    mode: Mode,
    round: usize,
    server: Server,
    answered_http: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    server_cpu: Duration,
    client_cpu: Duration,
    /// redis-server's CPU over the run (the Redis target only).
    redis_cpu: Option<Duration>,
    /// Webhook outcomes the server counted (empty for the ceiling).
    outcomes: BTreeMap<String, u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.answered_http as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        super::percentile_ms(&self.latencies_us, p)
    }

    fn cpu_share(&self, cpu: Duration) -> f64 {
        100.0 * cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }
}

/// Entry point of `--pinned`.
pub fn main() {
    let settings = Settings {
        requests: super::support::arg("--requests", 300_000),
        members: super::support::arg("--members", 10_000),
        clients: super::support::arg("--clients", 32),
        rounds: super::support::arg("--rounds", 1),
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        cpus >= 2,
        "--pinned needs two CPUs (server on {SERVER_CPU}, client on {CLIENT_CPU}); this process may use {cpus}"
    );
    println!(
        "load --pinned: the roster binary over HTTP; {} distinct signed requests per run from {} members, {} keep-alive clients, {} round(s); {} CPUs ({})",
        settings.requests,
        settings.members,
        settings.clients,
        settings.rounds,
        cpus,
        cpu_model()
    );
    let work = tempfile::Builder::new()
        .prefix("roster-load-pinned-")
        .tempdir()
        .expect("temp dir");
    let csv_path = work.path().join("members.csv");
    std::fs::write(&csv_path, synthetic::synthetic_csv(settings.members, 42))
        .expect("write directory");
    let phones: Vec<String> = (0..settings.members)
        .map(synthetic::synthetic_phone)
        .collect();
    println!("load average at start: {}", load_average());
    let started = Instant::now();
    let requests = Arc::new(build_requests(&settings, &phones));
    eprintln!(
        "built and signed {} requests in {:.1} s",
        settings.requests,
        started.elapsed().as_secs_f64()
    );

    let mut plan = Vec::new();
    for round in 1..=settings.rounds {
        for mode in [Mode::Pinned, Mode::Unpinned] {
            for server in [Server::Ceiling, Server::Relaxed, Server::Strict] {
                plan.push((round, mode, server));
            }
            if std::env::args().any(|a| a == "--redis") {
                plan.push((round, mode, Server::Redis));
            }
        }
    }
    let mut runs = Vec::new();
    for (index, &(round, mode, server)) in plan.iter().enumerate() {
        let data_dir = work.path().join(format!("run-{index}"));
        let log = work.path().join(format!("run-{index}.log"));
        let run = run_one(round, mode, server, &csv_path, &data_dir, &log, &requests);
        eprintln!(
            "\r[{}/{}] {:<8} {:<8} {:>8.0} req/s  p99 {:>6.2} ms  server {:>5.1} µs/msg",
            index + 1,
            plan.len(),
            mode.name(),
            server.name(),
            run.rate(),
            run.percentile(0.99),
            run.server_cpu.as_secs_f64() * 1e6 / run.answered_http.max(1) as f64
        );
        let _ = std::fs::remove_dir_all(&data_dir);
        runs.push(run);
    }
    set_affinity(None);
    print_table(&runs);
    println!("load average at the end: {}", load_average());
}

/// /proc/loadavg's first three fields: other work on the machine moves the
/// figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Every client's requests, in order: client `c` speaks for phones `c`,
/// `c + K`, ... in turn, so one phone's messages stay in order.
fn build_requests(settings: &Settings, phones: &[String]) -> Vec<Vec<Vec<u8>>> {
    let verifier = SignatureVerifier::new(super::TOKEN);
    let url = format!("http://{HOST}/whatsapp/webhook");
    let clients = settings.clients.max(1);
    (0..clients)
        .map(|client| {
            let count =
                settings.requests / clients + usize::from(client < settings.requests % clients);
            let mine: Vec<&String> = phones.iter().skip(client).step_by(clients).collect();
            let mine = if mine.is_empty() {
                phones.iter().take(1).collect()
            } else {
                mine
            };
            let mut searched = vec![false; mine.len()];
            (0..count as u64)
                .map(|seq| {
                    let slot = seq as usize % mine.len();
                    let text = super::message_text(seq, searched[slot]);
                    searched[slot] |= super::is_search(seq);
                    super::signed_request(&verifier, HOST, &url, client, seq, mine[slot], text)
                        .into_bytes()
                })
                .collect()
        })
        .collect()
}

/// Restricts the calling thread (and the threads and processes it starts
/// from now on) to `cpu`, or lets it run anywhere with `None`.
fn set_affinity(cpu: Option<usize>) {
    let mut set = CpuSet::new();
    let cpus = match cpu {
        Some(cpu) => vec![cpu],
        None => (0..num_online_cpus()).collect(),
    };
    for cpu in cpus {
        set.set(cpu).expect("cpu index");
    }
    sched_setaffinity(Pid::from_raw(0), &set).expect("sched_setaffinity");
}

fn num_online_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|text| {
            let last = text
                .trim()
                .rsplit([',', '-'])
                .next()?
                .parse::<usize>()
                .ok()?;
            Some(last + 1)
        })
        .unwrap_or(2)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// A server child process.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// The Redis target's redis-server.
    redis: Option<Child>,
}

/// utime + stime of process `pid` (every thread), from /proc.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_secs_f64((utime + stime) as f64 / 100.0)
}

/// A redis-server on a Unix socket in `dir`, as durable as strict mode.
fn start_redis(dir: &Path) -> (Child, PathBuf) {
    let socket = dir.join("redis.sock");
    let child = Command::new("redis-server")
        .args(["--port", "0", "--unixsocket"])
        .arg(&socket)
        .args(["--unixsocketperm", "700", "--dir"])
        .arg(dir)
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts (apt-get install redis-server)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, socket)
}

impl ServerProcess {
    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    /// utime + stime of the whole process (every thread), from /proc.
    fn cpu(&self) -> Duration {
        process_cpu(self.child.id())
    }

    /// The same of its redis-server, if it has one.
    fn redis_cpu(&self) -> Option<Duration> {
        self.redis.as_ref().map(|r| process_cpu(r.id()))
    }

    /// SIGTERM (a clean shutdown: roster flushes), then SIGKILL after 30 s.
    fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.pid()), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("\n  server {} did not stop within 30 s: killed", self.pid());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut redis) = self.redis.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
    }
}

/// CPU time of this process (the clients), from /proc.
fn own_cpu() -> Duration {
    process_cpu(std::process::id())
}

/// Starts the server for `server`, on CPU 0 when pinned, and waits until it
/// answers `/readyz`.
fn start(mode: Mode, server: Server, csv: &Path, data_dir: &Path, log: &Path) -> ServerProcess {
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe");
        probe.local_addr().expect("probe address")
    };
    let mut command = match server {
        Server::Ceiling => {
            let mut command = Command::new(std::env::current_exe().expect("own path"));
            command.args(["--ceiling-server", &addr.to_string()]);
            command
        }
        Server::Relaxed | Server::Strict | Server::Redis => {
            // ROSTER_LOAD_BIN runs another build (an older one, to compare).
            let binary = std::env::var_os("ROSTER_LOAD_BIN").map_or_else(
                || env!("CARGO_BIN_EXE_roster").into(),
                std::path::PathBuf::from,
            );
            let mut command = Command::new(binary);
            command.arg("serve");
            command
        }
    };
    let durability = if server == Server::Strict {
        "strict"
    } else {
        "relaxed"
    };
    // A child inherits the affinity of the thread that starts it.
    if mode == Mode::Pinned {
        set_affinity(Some(SERVER_CPU));
    }
    command
        .current_dir(data_dir.parent().expect("work dir"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TWILIO_AUTH_TOKEN", super::TOKEN)
        .env("ROSTER_SERVER__BIND", addr.to_string())
        .env("ROSTER_DIRECTORY__MEMBERS_CSV", csv)
        .env(
            "ROSTER_DIRECTORY__SYNONYMS_CSV",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("data/synonyms.csv"),
        )
        .env("ROSTER_STORAGE__DATA_DIR", data_dir)
        .env("ROSTER_STORAGE__DURABILITY", durability)
        .env("ROSTER_LOG__LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("server log"));
    let redis = (server == Server::Redis).then(|| {
        let redis_dir = data_dir.join("redis");
        std::fs::create_dir_all(&redis_dir).expect("redis dir");
        let (child, socket) = start_redis(&redis_dir);
        command.env("ROSTER_STORAGE__BACKEND", "redis").env(
            "ROSTER_STORAGE__REDIS_URL",
            format!("unix://{}", socket.display()),
        );
        child
    });
    let child = command.spawn().expect("server starts");
    if mode == Mode::Pinned {
        set_affinity(Some(CLIENT_CPU));
    }
    let mut child = ServerProcess {
        child,
        addr,
        log: log.to_owned(),
        redis,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((200, _)) = http_get(addr, "/readyz") {
            return child;
        }
        let exited = child.child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.child.kill();
            let said = std::fs::read_to_string(&child.log).unwrap_or_default();
            panic!(
                "{} did not become ready ({exited:?}); it said:\n{said}",
                server.name()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_one(
    round: usize,
    mode: Mode,
    server: Server,
    csv: &Path,
    data_dir: &Path,
    log: &Path,
    requests: &Arc<Vec<Vec<Vec<u8>>>>,
) -> Run {
    std::fs::create_dir_all(data_dir).expect("data dir");
    // This thread, and so the client runtime's threads, on CPU 1 when pinned.
    set_affinity(match mode {
        Mode::Pinned => Some(CLIENT_CPU),
        Mode::Unpinned => None,
    });
    let child = start(mode, server, csv, data_dir, log);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(super::CLIENT_THREAD)
        .enable_all()
        .build()
        .expect("client runtime");
    let addr = child.addr;
    let total = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let server_before = child.cpu();
    let redis_before = child.redis_cpu();
    let client_before = own_cpu();
    let started = Instant::now();
    let progress = {
        let (stop, total) = (stop.clone(), total.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let done = total.load(Ordering::Relaxed);
                eprint!(
                    "\r  {:<8} {:<8} {:>8} requests  {:>8.0} req/s",
                    mode.name(),
                    server.name(),
                    done,
                    done as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let outcomes: Vec<(u64, u64, Vec<u32>)> = runtime.block_on(async {
        let tasks: Vec<_> = (0..requests.len())
            .map(|client| {
                let (requests, total) = (requests.clone(), total.clone());
                tokio::spawn(async move { drive(addr, &requests[client], &total).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("client task"));
        }
        outcomes
    });
    let elapsed = started.elapsed();
    let server_cpu = child.cpu().saturating_sub(server_before);
    let redis_cpu = child
        .redis_cpu()
        .zip(redis_before)
        .map(|(after, before)| after.saturating_sub(before));
    let client_cpu = own_cpu().saturating_sub(client_before);
    stop.store(true, Ordering::Relaxed);
    let _ = progress.join();
    drop(runtime);
    let outcomes_counted = if server == Server::Ceiling {
        BTreeMap::new()
    } else {
        webhook_outcomes(addr)
    };
    child.stop();

    let mut latencies_us = Vec::new();
    let (mut answered_http, mut errors) = (0, 0);
    for (ok, failed, latencies) in outcomes {
        answered_http += ok;
        errors += failed;
        latencies_us.extend(latencies);
    }
    latencies_us.sort_unstable();
    Run {
        mode,
        round,
        server,
        answered_http,
        errors,
        elapsed,
        latencies_us,
        server_cpu,
        client_cpu,
        redis_cpu,
        outcomes: outcomes_counted,
    }
}

/// One keep-alive client: its requests in order, one at a time.
async fn drive(addr: SocketAddr, requests: &[Vec<u8>], total: &AtomicU64) -> (u64, u64, Vec<u32>) {
    let mut latencies = Vec::with_capacity(requests.len());
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut stream = super::connect(addr).await;
    let mut buffer = Vec::with_capacity(8192);
    for request in requests {
        let sent = Instant::now();
        let status = super::exchange(&mut stream, request, &mut buffer).await;
        let latency = sent.elapsed();
        match status {
            Some(200) => {
                ok += 1;
                latencies.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            }
            Some(_) => failed += 1,
            None => {
                failed += 1;
                stream = super::connect(addr).await;
            }
        }
        total.fetch_add(1, Ordering::Relaxed);
    }
    (ok, failed, latencies)
}

/// `GET path` over a fresh connection: status and body.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_owned()))
}

/// The server's webhook outcome counters, from `/metrics`.
fn webhook_outcomes(addr: SocketAddr) -> BTreeMap<String, u64> {
    let Some((200, text)) = http_get(addr, "/metrics") else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("roster_webhook_requests_total{outcome=\"")?;
            let (outcome, value) = rest.split_once("\"}")?;
            let value: f64 = value.trim().parse().ok()?;
            Some((outcome.to_owned(), value as u64))
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

fn print_table(runs: &[Run]) {
    println!();
    println!(
        "| round | mode | target | req/s | vs ceiling | p50 ms | p99 ms | errors | answered | server CPU µs/msg | server CPU | client CPU |"
    );
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for run in runs {
        let ceiling = runs
            .iter()
            .find(|c| c.server == Server::Ceiling && c.mode == run.mode && c.round == run.round)
            .map_or(f64::NAN, Run::rate);
        let answered = if run.server == Server::Ceiling {
            "-".to_owned()
        } else {
            let counted: u64 = run.outcomes.values().sum();
            let answered = run.outcomes.get("answered").copied().unwrap_or(0);
            format!("{:.1}%", 100.0 * answered as f64 / counted.max(1) as f64)
        };
        println!(
            "| {} | {} | {} | {:.0} | {:.1}% | {:.2} | {:.2} | {} | {} | {:.1} | {:.0}% | {:.0}% |",
            run.round,
            run.mode.name(),
            run.server.name(),
            run.rate(),
            100.0 * run.rate() / ceiling,
            run.percentile(0.50),
            run.percentile(0.99),
            run.errors,
            answered,
            run.server_cpu.as_secs_f64() * 1e6 / run.answered_http.max(1) as f64,
            run.cpu_share(run.server_cpu),
            run.cpu_share(run.client_cpu),
        );
    }
    println!(
        "(server/client CPU: % of one CPU over the run; answered: the server's webhook outcomes counted \"answered\")"
    );
    for run in runs {
        if let Some(redis) = run.redis_cpu {
            println!(
                "round {} {} redis: redis-server {:.1} µs/msg ({:.0}% of a CPU); roster + redis {:.1} µs/msg",
                run.round,
                run.mode.name(),
                redis.as_secs_f64() * 1e6 / run.answered_http.max(1) as f64,
                run.cpu_share(redis),
                (run.server_cpu + redis).as_secs_f64() * 1e6 / run.answered_http.max(1) as f64
            );
        }
    }
    for run in runs {
        let others: Vec<String> = run
            .outcomes
            .iter()
            .filter(|(outcome, _)| *outcome != "answered")
            .map(|(outcome, count)| format!("{outcome} {count}"))
            .collect();
        if !others.is_empty() {
            println!(
                "round {} {} {}: {}",
                run.round,
                run.mode.name(),
                run.server.name(),
                others.join(", ")
            );
        }
    }
}

/// `--ceiling-server ADDR`: the ceiling route in a process of its own, on a
/// runtime built as `roster` builds its own (`Runtime::new`).
pub fn ceiling_server(addr: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let router =
            super::ceiling_router().route("/readyz", axum::routing::get(|| async { "ready" }));
        axum::serve(listener, router).await.expect("serve");
    });
}
