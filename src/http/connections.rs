//! Accepting and keeping HTTP connections: the accept loop, the cap on open
//! connections, the header and idle timeouts, overload shedding and the
//! open-file limit.
//!
//! # What a connection is doing
//!
//! Every accepted connection has a [`Conn`] entry in the [`Tracker`] with
//! one of three states:
//!
//! - **idle**: no byte of an unanswered request has arrived (a fresh
//!   connection, or a keep-alive one after its response was written). Closed
//!   after `server.idle_timeout`, and the first to go when the cap is hit.
//! - **head**: the first byte of a request arrived, its header is not
//!   complete. Closed after `server.header_timeout` (a slow-header sender).
//! - **busy**: a request is being handled or its response written; bounded
//!   by `server.request_timeout`.
//!
//! The state moves from idle to head in the socket's read (the first byte),
//! to busy when hyper hands the request over, and back to idle when the
//! response body has been written (or dropped).
//!
//! # The cap
//!
//! At most `server.max_connections` are open. A connection accepted at the
//! cap closes the longest-idle connection to make room, or, with none idle,
//! the connection whose request head has been arriving longest, if for over
//! [`SLOW_HEAD`] (a slow sender: a client's head takes milliseconds). Only
//! when every open connection is busy or began its head just now is the new
//! one refused: it gets a `503` with `Retry-After` and is closed at once. So
//! an attacker holding idle or slow sockets cannot keep Twilio out, and the
//! process never reaches its open-file limit: the cap is lowered, with a
//! warning, to what the limit leaves after [`FD_HEADROOM`] descriptors for
//! the data dir and the rest.
//!
//! Closing an idle connection races with a request arriving on it; the
//! tracker settles that race atomically (idle → closing), and a request that
//! lost it sees the connection closed before any byte was read, which HTTP
//! clients retry on keep-alive connections. A slow head closed just as it
//! completed is answered `503` with `Retry-After` and never handled.
//!
//! # Shedding
//!
//! [`shed_overload`] answers `503` with `Retry-After: 1` at once when more
//! than `server.max_pending` requests are in flight, so an overload is
//! refused fast (Twilio retries, dedupe keeps the retry safe) instead of
//! timing out slowly. Health and readiness probes and `/metrics` are never
//! shed.
//!
//! Only HTTP/1.1 is served (what Twilio speaks), with request heads of at
//! most [`MAX_HEADER_BYTES`].

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::clock::duration_ms;
use crate::config::ServerConfig;
use crate::shutdown::Shutdown;

/// File descriptors kept free of connections: sled's files, the directory
/// and synonyms files, exports, the runtime's own.
pub const FD_HEADROOM: u64 = 256;

/// The largest request head (request line and headers) accepted; larger
/// gets 431. Twilio's are about 1 KB; this bounds what a slow sender of a
/// huge header holds (hyper's default would buffer about 400 KB).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A request head that has been arriving this long is a slow sender's: at
/// the cap it may be closed to make room (a client's head takes
/// milliseconds; one that has only just begun is left alone).
pub const SLOW_HEAD: Duration = Duration::from_secs(1);

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
const CLOSING: u8 = 3;

/// How many victims one scan of the open connections finds (see
/// `Tracker::make_room`).
const VICTIM_BATCH: usize = 256;

/// A connection that may be closed at the cap, as it was when found.
#[derive(Debug)]
struct Victim {
    /// (idle 0 or slow head 1, since, id): the smallest closes first.
    key: (u8, u64, u64),
    state: u8,
    since: u64,
    conn: Arc<Conn>,
}

/// One open connection, shared by its task and the tracker.
#[derive(Debug)]
struct Conn {
    id: u64,
    state: AtomicU8,
    /// When the current state began, in ms since the tracker's start.
    since_ms: AtomicU64,
    /// Woken when the state changes or the tracker closes the connection,
    /// so its task looks at its deadline again.
    wake: Notify,
    base: Instant,
}

impl Conn {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Moves to `state`; false (and no move) if the connection is closing.
    fn set(&self, state: u8) -> bool {
        // A connection being closed stays closing.
        let moved = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current != CLOSING).then_some(state)
            })
            .is_ok();
        self.since_ms.store(self.now_ms(), Ordering::Release);
        self.wake.notify_one();
        moved
    }

    /// Idle → head, on the first byte of a request; false if it is closing.
    fn start_request(&self) -> bool {
        match self
            .state
            .compare_exchange(IDLE, HEAD, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                self.since_ms.store(self.now_ms(), Ordering::Release);
                self.wake.notify_one();
                true
            }
            Err(current) => current != CLOSING,
        }
    }

    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// When the current state times out, given the timeouts.
    fn deadline(&self, settings: &Settings) -> Option<Instant> {
        let limit = match self.state() {
            IDLE => settings.idle_timeout,
            HEAD => settings.header_timeout,
            _ => return None,
        };
        let since = Duration::from_millis(self.since_ms.load(Ordering::Acquire));
        Some(self.base + since + limit)
    }
}

/// What the accept loop and its connections are told.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// After lowering to the open-file limit.
    pub max_connections: usize,
    /// How long a head must have been arriving to be closed at the cap
    /// ([`SLOW_HEAD`]).
    pub slow_head: Duration,
}

/// The open connections.
#[derive(Debug)]
pub struct Tracker {
    settings: Settings,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    /// At the cap: the next connections to close, oldest last, found by one
    /// scan for many admissions (a scan of every open connection for each
    /// one would cost the accept loop O(n) a connection under a flood).
    victims: Mutex<Vec<Victim>>,
    next_id: AtomicU64,
    base: Instant,
    /// Woken whenever a connection ends.
    ended: Notify,
    evicted: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
    last_refusal_log_ms: AtomicU64,
}

/// Counts of what the tracker did, for tests and `/admin/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStats {
    pub open: usize,
    pub idle: usize,
    pub max: usize,
    /// Idle connections and slow heads closed to make room at the cap.
    pub evicted: u64,
    /// New connections refused at the cap, every open one busy (or its
    /// head only just begun).
    pub refused: u64,
    /// Closed by the header or idle timeout.
    pub timed_out: u64,
}

impl Tracker {
    pub fn new(settings: Settings) -> Tracker {
        Tracker {
            settings,
            open: Mutex::new(HashMap::new()),
            victims: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            base: Instant::now(),
            ended: Notify::new(),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            last_refusal_log_ms: AtomicU64::new(0),
        }
    }

    /// The tracker for `config`, its cap lowered to what the process's
    /// open-file limit allows (logged when it is).
    pub fn for_config(config: &ServerConfig) -> Tracker {
        let mut max = config.max_connections;
        if let Some(soft) = open_file_limit() {
            let allowed =
                usize::try_from(soft.saturating_sub(FD_HEADROOM).max(1)).unwrap_or(usize::MAX);
            if max > allowed {
                tracing::warn!(
                    open_file_limit = soft,
                    "server.max_connections {max} lowered to {allowed}: the open-file limit \
                     leaves no more (raise `LimitNOFILE` / `ulimit -n`)"
                );
                max = allowed;
            }
        }
        Tracker::new(Settings {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: max.max(1),
            slow_head: SLOW_HEAD,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a new connection: free, or made by closing the
    /// longest-idle one, or else the oldest slow head (`slow_head`);
    /// `None` when every open one is busy or began its head just now.
    fn admit(&self) -> Option<Arc<Conn>> {
        let mut open = self.lock();
        if open.len() >= self.settings.max_connections && !self.make_room(&mut open) {
            return None;
        }
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            state: AtomicU8::new(IDLE),
            since_ms: AtomicU64::new(0),
            wake: Notify::new(),
            base: self.base,
        });
        conn.since_ms.store(conn.now_ms(), Ordering::Release);
        open.insert(conn.id, Arc::clone(&conn));
        Some(conn)
    }

    /// Closes the next victim: the longest-idle connection, or else the
    /// oldest slow head. Victims come in batches of [`VICTIM_BATCH`] from
    /// one scan; one whose state changed since (it began a request) is
    /// skipped. A connection that went idle after the scan is younger than
    /// every victim of that batch, so the order holds.
    fn make_room(&self, open: &mut HashMap<u64, Arc<Conn>>) -> bool {
        let mut victims = self.victims.lock().unwrap_or_else(|p| p.into_inner());
        // A second scan finds what changed since the first; no more.
        for _ in 0..2 {
            while let Some(victim) = victims.pop() {
                let unchanged = victim.conn.since_ms.load(Ordering::Acquire) == victim.since;
                if unchanged
                    && victim
                        .conn
                        .state
                        .compare_exchange(
                            victim.state,
                            CLOSING,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_ok()
                    && open.remove(&victim.conn.id).is_some()
                {
                    victim.conn.wake.notify_one();
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
            }
            *victims = self.find_victims(open);
            if victims.is_empty() {
                return false;
            }
        }
        false
    }

    /// Up to [`VICTIM_BATCH`] connections that may be closed at the cap,
    /// the first to close last: idle ones by how long they have been idle,
    /// then slow heads by how long they have been arriving.
    fn find_victims(&self, open: &HashMap<u64, Arc<Conn>>) -> Vec<Victim> {
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        let slow_head = duration_ms(self.settings.slow_head);
        let mut found: Vec<Victim> = open
            .values()
            .filter_map(|conn| {
                let since = conn.since_ms.load(Ordering::Acquire);
                let state = conn.state();
                let rank = match state {
                    IDLE => 0,
                    HEAD if now.saturating_sub(since) >= slow_head => 1,
                    _ => return None,
                };
                Some(Victim {
                    key: (rank, since, conn.id),
                    state,
                    since,
                    conn: Arc::clone(conn),
                })
            })
            .collect();
        if found.len() > VICTIM_BATCH {
            found.select_nth_unstable_by_key(VICTIM_BATCH, |v| v.key);
            found.truncate(VICTIM_BATCH);
        }
        found.sort_unstable_by_key(|v| std::cmp::Reverse(v.key));
        found
    }

    fn remove(&self, conn: &Conn) {
        self.lock().remove(&conn.id);
        self.ended.notify_waiters();
    }

    pub fn stats(&self) -> ConnectionStats {
        let open = self.lock();
        ConnectionStats {
            open: open.len(),
            idle: open.values().filter(|c| c.state() == IDLE).count(),
            max: self.settings.max_connections,
            evicted: self.evicted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
        }
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Counts a refusal; logs at most one a second.
    fn note_refusal(&self) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_refusal_log_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .last_refusal_log_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                max_connections = self.settings.max_connections,
                refused,
                "connection refused: every open connection is busy"
            );
        }
    }

    /// Waits until no connection is open.
    async fn wait_empty(&self) {
        loop {
            let ended = self.ended.notified();
            if self.lock().is_empty() {
                return;
            }
            ended.await;
        }
    }
}

/// Raises the soft open-file limit to the hard one; returns the new soft
/// limit (`None` where it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
        if soft < hard
            && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
        {
            tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
            return Some(soft);
        }
        open_file_limit()
    }
    #[cfg(not(unix))]
    None
}

/// The soft open-file limit, if there is one.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit};
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
        (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft)
    }
    #[cfg(not(unix))]
    None
}

/// Serves `router` on `listener` until `shutdown` fires, then lets busy
/// connections finish their request and returns when none is left. The
/// listener stays open (connections wait in its backlog) for the caller to
/// serve on again or drop.
pub async fn serve(
    listener: &TcpListener,
    router: Router,
    tracker: Arc<Tracker>,
    mut shutdown: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.recv() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // A connection reset before it was accepted is not ours to
                // report; anything else (EMFILE) is, and is retried shortly.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) {
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match tracker.admit() {
            Some(conn) => {
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    router.clone(),
                    Arc::clone(&tracker),
                    conn,
                    shutdown.clone(),
                ));
            }
            None => {
                tracker.note_refusal();
                refuse(stream);
            }
        }
    }
    tracker.wait_empty().await;
}

/// The answer to a request whose connection was closed to make room.
fn closed_to_make_room() -> hyper::Response<Body> {
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        [
            (axum::http::header::RETRY_AFTER, "1"),
            (axum::http::header::CONNECTION, "close"),
        ],
        "connection closed to make room; retry\n",
    )
        .into_response()
}

/// Tells a connection there is no room and closes it, without waiting.
fn refuse(stream: TcpStream) {
    const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
        connection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 28\r\n\r\n\
        too many connections; retry\n";
    let _ = stream.try_write(BUSY_RESPONSE);
    drop(stream);
}

/// One connection, from accept to close.
async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    router: Router,
    tracker: Arc<Tracker>,
    conn: Arc<Conn>,
    mut shutdown: Shutdown,
) {
    let settings = tracker.settings();
    let io = TokioIo::new(TrackedIo {
        inner: stream,
        conn: Arc::clone(&conn),
    });
    let service = hyper::service::service_fn({
        let conn = Arc::clone(&conn);
        move |request: hyper::Request<hyper::body::Incoming>| {
            let conn = Arc::clone(&conn);
            let router = router.clone();
            async move {
                if !conn.set(BUSY) {
                    // Closed to make room while its head was still arriving
                    // (a slow sender's): not handled, and safe to retry.
                    return Ok(closed_to_make_room());
                }
                // The client's address, as axum's `ConnectInfo` gives it:
                // the dashboard limits failed sign-ins per address.
                let mut request = request.map(Body::new);
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let response = tower::ServiceExt::oneshot(router, request).await;
                response.map(|response| {
                    response.map(|body| {
                        Body::new(TrackedBody {
                            inner: body,
                            _idle: IdleWhenDone(conn),
                        })
                    })
                })
            }
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // The header timeout is ours (see the module docs): hyper's would
        // also run while a keep-alive connection waits for its next request.
        .header_read_timeout(None)
        .max_header_size(MAX_HEADER_BYTES)
        .keep_alive(true)
        .serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut draining = false;
    loop {
        let deadline = conn.deadline(&settings);
        let timer = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection ended: {e}");
                }
                break;
            }
            () = timer => {
                // Still in the state that timed out: nothing of ours is in
                // flight, so the connection is simply dropped.
                if conn.deadline(&settings).is_some_and(|at| at <= Instant::now()) {
                    tracker.timed_out.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            // A new state, a new deadline; or closed to make room.
            () = conn.wake.notified() => {
                if conn.state() == CLOSING {
                    break;
                }
            }
            () = shutdown.recv(), if !draining => {
                draining = true;
                if conn.state() != BUSY {
                    break;
                }
                // Finish the request in flight, then close.
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    tracker.remove(&conn);
}

/// The socket, watched for the first byte of each request.
struct TrackedIo {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
            && !self.conn.start_request()
        {
            // Closed to make room before this request began: as if the
            // peer had found the connection closed.
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        polled
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Marks its connection idle when dropped: when the response body is done.
struct IdleWhenDone(Arc<Conn>);

impl Drop for IdleWhenDone {
    fn drop(&mut self) {
        let _ = self.0.set(IDLE);
    }
}

/// A response body that marks its connection idle once written.
struct TrackedBody {
    inner: Body,
    _idle: IdleWhenDone,
}

impl http_body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Requests in flight, for [`shed_overload`].
#[derive(Debug)]
pub struct Pending {
    in_flight: AtomicUsize,
    max: usize,
    shed: AtomicU64,
}

impl Pending {
    pub fn new(max: usize) -> Pending {
        Pending {
            in_flight: AtomicUsize::new(0),
            max: max.max(1),
            shed: AtomicU64::new(0),
        }
    }

    /// Requests answered 503 so far.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// One request counted in flight until dropped.
struct InFlight<'a>(&'a Pending);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Middleware: 503 at once while more than `max_pending` requests are in
/// flight; probes and `/metrics` are always answered.
pub async fn shed_overload(
    State(pending): State<Arc<Pending>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let before = pending.in_flight.fetch_add(1, Ordering::AcqRel);
    let guard = InFlight(&pending);
    if before >= pending.max {
        drop(guard);
        let shed = pending.shed.fetch_add(1, Ordering::Relaxed) + 1;
        if shed.is_power_of_two() {
            tracing::warn!(
                max_pending = pending.max,
                shed,
                "overloaded: answering 503 (Retry-After: 1)"
            );
        }
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "overloaded; please retry",
        )
            .into_response();
    }
    let response = next.run(request).await;
    drop(guard);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(max_connections: usize, slow_head: Duration) -> Tracker {
        Tracker::new(Settings {
            header_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections,
            slow_head,
        })
    }

    #[test]
    fn at_the_cap_the_longest_idle_goes_first_then_the_oldest_slow_head() {
        let tracker = tracker(3, Duration::ZERO);
        let first = tracker.admit().expect("room");
        let second = tracker.admit().expect("room");
        let third = tracker.admit().expect("room");
        assert!(first.start_request() && second.start_request());
        // One idle (the third): it goes, though it is the newest.
        let _fourth = tracker.admit().expect("an idle one makes room");
        assert_eq!(third.state(), CLOSING);
        assert_eq!(first.state(), HEAD);
        // None idle now (the fourth is busy): the oldest head goes.
        assert!(_fourth.set(BUSY));
        let _fifth = tracker.admit().expect("a slow head makes room");
        assert_eq!(first.state(), CLOSING);
        assert_eq!(second.state(), HEAD);
        // A head closed this way is never handled.
        assert!(!first.set(BUSY));
        assert_eq!(tracker.stats().evicted, 2);
    }

    #[test]
    fn a_head_only_just_begun_is_not_closed_and_busy_ones_never_are() {
        let tracker = tracker(2, Duration::from_secs(3600));
        let head = tracker.admit().expect("room");
        let busy = tracker.admit().expect("room");
        assert!(head.start_request());
        assert!(busy.set(BUSY));
        assert!(tracker.admit().is_none(), "no idle one, no slow head");
        assert_eq!((head.state(), busy.state()), (HEAD, BUSY));
        assert_eq!(tracker.stats().evicted, 0);
    }
}
