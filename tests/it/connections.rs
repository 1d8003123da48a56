//! Connection hygiene over real loopback sockets: the header and idle
//! timeouts, the cap on connections (idle ones make room, busy ones do not),
//! overload shedding, and a member answered while thousands of idle and
//! slow connections are held. Timeouts are configured short; no test sleeps
//! through a default.

use std::time::{Duration, Instant};

use roster::http::connections::ConnectionStats;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Polls until `done` holds for the app's connection stats (at most 10 s).
async fn wait_for(app: &TestApp, what: &str, done: impl Fn(&ConnectionStats) -> bool) {
    let started = Instant::now();
    loop {
        let stats = app.state.connections.stats();
        if done(&stats) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited 10 s for {what}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads until the peer closes (EOF or reset); how long that took, or
/// `None` if it was still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one small response (status line through the end of what arrived).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("a response within 5 s")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: roster\r\n\r\n";

#[tokio::test]
async fn a_header_sent_a_byte_a_second_is_cut_off_after_the_header_timeout() {
    let app = spawn_app_with(|c| {
        c.server.header_timeout = Duration::from_millis(500);
        c.server.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for byte in b"POST /whatsapp/webhook HTTP/1.1\r\nhost: roster\r\n" {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf)).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "still open after 5 s: {closed:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(400),
        "closed too early: {elapsed:?}"
    );
    println!("slow header closed after {elapsed:?} (header_timeout 500ms)");
    trickle.abort();
    assert!(app.state.connections.stats().timed_out >= 1);
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(|c| {
        c.server.header_timeout = Duration::from_secs(30);
        c.server.idle_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let closed = closed_within(&mut stream, Duration::from_secs(5)).await;
    let closed = closed.expect("an idle keep-alive connection is closed");
    assert!(closed >= Duration::from_millis(400), "{closed:?}");
    // A connection that never sends anything is idle too.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let closed = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "a silent connection is closed");
    println!("idle connection closed after {closed:?} (idle_timeout 500ms)");
    app.stop().await;
}

#[tokio::test]
async fn at_the_cap_an_idle_connection_makes_room_for_a_member() {
    let app = spawn_app_with(|c| {
        c.server.max_connections = 50;
        c.server.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    wait_for(&app, "50 idle connections", |s| {
        s.open == 50 && s.idle == 50
    })
    .await;
    let (status, body) = app.send_text(MEMBER, "Find doctors in Bangalore").await;
    assert_eq!(status, 200);
    assert!(
        messages(&body).join("").contains("doctors in Bengaluru"),
        "{body}"
    );
    let stats = app.state.connections.stats();
    assert!(stats.open <= 50, "{stats:?}");
    assert!(stats.evicted >= 1, "{stats:?}");
    assert_eq!(stats.refused, 0, "{stats:?}");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("roster_connections_max 50\n"), "{metrics}");
    assert!(
        !metrics.contains("roster_connections_evicted_total 0\n"),
        "{metrics}"
    );
    // The oldest idle connection was the one closed.
    let closed = closed_within(&mut idle[0], Duration::from_secs(2)).await;
    assert!(closed.is_some(), "the oldest idle connection is closed");
    app.stop().await;
}

#[tokio::test]
async fn at_the_cap_with_every_connection_busy_a_new_one_is_refused_at_once() {
    let app = spawn_app_with(|c| {
        c.server.max_connections = 50;
        c.server.request_timeout = Duration::from_secs(30);
    })
    .await;
    // Busy: a request whose head is complete, its body still to come.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(
                b"POST /whatsapp/webhook HTTP/1.1\r\nhost: roster\r\n\
                  content-type: application/x-www-form-urlencoded\r\n\
                  content-length: 1000\r\n\r\nFrom=",
            )
            .await
            .unwrap();
        slow.push(stream);
    }
    wait_for(&app, "50 busy connections", |s| s.open == 50 && s.idle == 0).await;
    wait_for(&app, "the 50 requests to be handled", |_| {
        app.state.pending.in_flight() == 50
    })
    .await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let _ = stream.write_all(HEALTHZ).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    let elapsed = started.elapsed();
    assert!(read.is_ok(), "not closed within 2 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );
    if !answer.is_empty() {
        assert!(
            answer.to_ascii_lowercase().contains("retry-after: 1"),
            "{answer}"
        );
    }
    println!("refused in {elapsed:?}: {:?}", answer.lines().next());
    assert!(app.state.connections.stats().refused >= 1);
    // Once they go, members get in again.
    drop(slow);
    wait_for(&app, "the slow connections to go", |s| s.open == 0).await;
    let (status, _) = app.send_text(MEMBER, "hi").await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn more_requests_in_flight_than_max_pending_get_503_at_once() {
    let app = spawn_app_with(|c| c.server.max_pending = 1).await;
    // One request in flight: its body never completes.
    let mut held = TcpStream::connect(app.addr).await.unwrap();
    held.write_all(
        b"POST /whatsapp/webhook HTTP/1.1\r\nhost: roster\r\n\
          content-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nBody=",
    )
    .await
    .unwrap();
    let started = Instant::now();
    while app.state.pending.in_flight() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never in flight"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let response = app.send(MEMBER, "hi").await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(app.state.pending.shed(), 1);
    // Probes and metrics are never shed.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("roster_requests_shed_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roster_requests_in_flight 1\n"),
        "{metrics}"
    );
    drop(held);
    let started = Instant::now();
    while app.state.pending.in_flight() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still in flight"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, _) = app.send_text(MEMBER, "hi").await;
    assert_eq!(status, 200);
    app.stop().await;
}

/// How many connections the attackers hold, in all.
const HELD: usize = 20_000;
/// How many attacker processes hold them (one process's open-file limit may
/// not hold them all).
const HOLDERS: usize = 2;
/// Set in the attacker processes, which run this test binary with only the
/// 20,000-connection test, which then holds connections ([`hold`]):
/// `<addr> <count>`.
const HOLD: &str = "ROSTER_TEST_HOLD_CONNECTIONS";
/// The test's name, as the attacker processes are told to run it.
const HELD_TEST: &str =
    "connections::a_member_is_answered_while_20000_idle_and_slow_connections_are_held";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_answered_while_20000_idle_and_slow_connections_are_held() {
    use crate::common::process::{RosterProcess, roster_command};
    if let Ok(spec) = std::env::var(HOLD) {
        // In an attacker process: hold, and that is all.
        hold(&spec);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The real binary with its default cap (10,000 connections) and
    // timeouts longer than the test: only the cap protects the members.
    let mut command = roster_command(dir.path());
    command
        .arg("serve")
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("ROSTER_SERVER__HEADER_TIMEOUT", "300s")
        .env("ROSTER_SERVER__IDLE_TIMEOUT", "300s")
        .env("ROSTER_LIMITS__MESSAGES_PER_HOUR", "1000")
        .env("ROSTER_LIMITS__SEARCHES_PER_HOUR", "1000");
    let server = RosterProcess::start(command);
    let ready: serde_json::Value = server
        .startup
        .iter()
        .filter(|line| line.contains("roster is ready"))
        .find_map(|line| serde_json::from_str(line).ok())
        .expect("a ready line");
    let cap = ready["fields"]["max_connections"].as_u64().unwrap();
    assert!(
        (cap as usize) < HELD,
        "the test must go past the cap ({cap})"
    );

    let mut sid = 0;
    let mut member_latency = || {
        sid += 1;
        let form = whatsapp_form(
            MEMBER,
            "Find doctors in Bangalore",
            &format!("SMheld{sid:026}"),
        );
        let server = &server;
        async move {
            // A new connection each time, as Twilio's may be.
            let started = Instant::now();
            let response = server.post_signed(&form).await;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert_eq!(status, 200, "{body}");
            assert!(
                messages(&body).join("").contains("doctors in Bengaluru"),
                "{body}"
            );
            started.elapsed()
        }
    };
    let mut usual = Vec::new();
    for _ in 0..5 {
        usual.push(member_latency().await);
    }

    // The attackers: half of each one's connections idle, half a request
    // head begun and never finished.
    let started = Instant::now();
    let holders: Vec<Holder> = (0..HOLDERS)
        .map(|_| Holder::start(server.addr, HELD / HOLDERS))
        .collect();
    for holder in &holders {
        holder.wait_until_holding();
    }
    println!("{HELD} connections held after {:?}", started.elapsed());

    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(member_latency().await);
    }
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = server.metrics().await;
    let series = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let (open, evicted) = (
        series("roster_connections_open"),
        series("roster_connections_evicted_total"),
    );
    usual.sort();
    held.sort();
    println!(
        "member latency, median of 5: {:?} before, {:?} with {HELD} connections held \
         (cap {cap}: {open} open, {evicted} closed to make room)",
        usual[2], held[2]
    );
    assert!(open <= cap, "{open} open, cap {cap}");
    assert!(
        evicted >= (HELD as u64) - cap,
        "{evicted} evicted: the attackers' connections past the cap made room"
    );
    // Within the usual latency: the same order, not seconds.
    assert!(
        held[2] < usual[4] * 3 + Duration::from_millis(250),
        "{held:?} against {usual:?}"
    );
    for holder in holders {
        holder.finish();
    }
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// A child process holding connections ([`hold`]), killed if the test
/// fails part way.
struct Holder {
    child: std::process::Child,
    said: std::sync::mpsc::Receiver<String>,
}

impl Holder {
    fn start(addr: std::net::SocketAddr, count: usize) -> Holder {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([HELD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(HOLD, format!("{addr} {count}"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Read to the end, so the child never writes into a closed pipe.
        let stdout = child.stdout.take().unwrap();
        let (sender, said) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        Holder { child, said }
    }

    fn wait_until_holding(&self) {
        let count = self
            .said
            .iter()
            // libtest may print the test's name on the same line first.
            .find_map(|line| Some(line.split_once("holding ")?.1.to_owned()))
            .expect("the holder says it holds its connections");
        assert_eq!(count, (HELD / HOLDERS).to_string());
    }

    /// Lets the connections go and checks the child ended well.
    fn finish(mut self) {
        drop(self.child.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// In an attacker process: opens the connections `spec` asks for
/// (`<addr> <count>`), half idle and half a request head begun, says so, and
/// holds them until standard input closes.
fn hold(spec: &str) {
    let (addr, count) = spec.split_once(' ').expect("<addr> <count>");
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let count: usize = count.parse().unwrap();
    roster::http::connections::raise_open_file_limit();
    let mut streams = Vec::with_capacity(count);
    for n in 0..count {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        if n % 2 == 1 {
            std::io::Write::write_all(&mut stream, b"POST /whatsapp/webhook HTTP/1.1\r\nhost: ro")
                .unwrap();
        }
        streams.push(stream);
    }
    println!("holding {count}");
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    drop(streams);
}

#[tokio::test]
async fn a_huge_header_is_refused_instead_of_buffered() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let mut request = b"GET /healthz HTTP/1.1\r\nhost: roster\r\n".to_vec();
    // About 100 KB: within hyper's default buffer, beyond the 16 KiB limit.
    // (in 20 headers: hyper refuses more than 100 of them anyway).
    for n in 0..20 {
        request.extend_from_slice(format!("x-padding-{n}: {}\r\n", "a".repeat(5000)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    // The server answers and closes part way; later writes may fail.
    let _ = stream.write_all(&request).await;
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    app.stop().await;
}

#[test]
fn the_binary_raises_its_open_file_limit_and_caps_connections_below_it() {
    use crate::common::process::{RosterProcess, roster_command};
    let dir = tempfile::tempdir().unwrap();
    let roster_env = roster_command(dir.path());
    // Started with a soft limit of 1024 (a shell lowers it, then execs
    // roster), it raises the limit to the hard one and caps connections
    // below it.
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", "ulimit -S -n 1024 && exec \"$0\" serve"])
        .arg(env!("CARGO_BIN_EXE_roster"))
        .current_dir(dir.path())
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in roster_env.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    command
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("ROSTER_SERVER__MAX_CONNECTIONS", "1000000");
    let roster = RosterProcess::start(command);
    let startup = roster.startup.clone();
    let (status, _) = roster.terminate();
    assert!(status.success());
    let ready: serde_json::Value = startup
        .iter()
        .filter(|line| line.contains("roster is ready"))
        .find_map(|line| serde_json::from_str(line).ok())
        .expect("a ready line");
    let Some(limit) = ready["fields"]["open_file_limit"].as_u64() else {
        assert!(
            startup.iter().any(|l| l.contains("no open-file limit")),
            "{startup:?}"
        );
        return;
    };
    let hard = nix_hard_limit();
    assert_eq!(limit, hard, "the soft limit is raised to the hard one");
    let max = ready["fields"]["max_connections"]
        .as_u64()
        .expect("max_connections");
    assert_eq!(
        max,
        1_000_000.min(limit - roster::http::connections::FD_HEADROOM)
    );
    if max < 1_000_000 {
        assert!(
            startup
                .iter()
                .any(|l| l.contains("server.max_connections 1000000 lowered to")),
            "{startup:?}"
        );
    }
}

/// This process's hard open-file limit (raising the soft one to it).
fn nix_hard_limit() -> u64 {
    roster::http::connections::raise_open_file_limit().expect("an open-file limit")
}
