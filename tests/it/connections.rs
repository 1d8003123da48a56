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
        c.server.header_timeout = Duration::from_secs(30);
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"POST /whatsapp/webhook HTTP/1.1\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    wait_for(&app, "50 slow-header connections", |s| {
        s.open == 50 && s.idle == 0
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_answered_while_thousands_of_idle_and_slow_connections_are_held() {
    // It takes nearly the whole open-file limit: beside the other tests of
    // this binary (one process) it or they would run out of descriptors, so
    // it runs alone in a child process.
    if !in_own_process(concat!(
        module_path!(),
        "::a_member_is_answered_while_thousands_of_idle_and_slow_connections_are_held"
    )) {
        return;
    }
    // Both ends of each connection live in this process, so it holds two
    // descriptors per connection: 20,000, or as many as the limit allows.
    let limit = roster::http::connections::raise_open_file_limit().unwrap_or(4096);
    let held = 20_000.min(usize::try_from(limit.saturating_sub(1_000) / 2).unwrap_or(0));
    let app = spawn_app_with(|c| {
        c.server.max_connections = held + 100;
        c.server.header_timeout = Duration::from_secs(60);
        c.server.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let started = Instant::now();
    let mut streams = Vec::with_capacity(held);
    for n in 0..held {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        // Half idle, half a header begun and never finished.
        if n % 2 == 1 {
            stream
                .write_all(b"POST /whatsapp/webhook HTTP/1.1\r\nhost: ro")
                .await
                .unwrap();
        }
        streams.push(stream);
    }
    wait_for(&app, "every connection accepted", |s| s.open == held).await;
    println!(
        "{held} connections held (open-file limit {limit}) after {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let (status, body) = app.send_text(MEMBER, "Find doctors in Bangalore").await;
    let latency = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        messages(&body).join("").contains("doctors in Bengaluru"),
        "{body}"
    );
    println!("member answered in {latency:?} with {held} connections held");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    drop(streams);
    app.stop().await;
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
