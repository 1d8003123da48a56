//! Building the application and running it: the router, middleware,
//! background tasks and graceful shutdown.
//!
//! [`App::build`] turns a [`Config`] into everything that lives across
//! requests ([`AppState`], a set of `Arc`s) and fails with an operator-facing
//! message when something is wrong (no auth token, a locked data dir, an
//! unreadable directory). [`App::run`] serves until the shutdown fires, lets
//! requests in flight finish (bounded by `server.shutdown_timeout`), stops
//! the background tasks, and flushes storage.
//!
//! After a storage failure, once the disk takes writes again, [`App::run`]
//! reopens the data dir in-process: it stops serving (new connections wait
//! in the listen backlog), closes everything built on the failed store,
//! builds the application afresh from the configuration and what is on disk,
//! and serves again on the same listener. No supervisor is needed.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

use super::admin;
use super::state::{AppState, load_assistant, log_rejections};
use crate::clock::SharedClock;
use crate::config::{Backend, Config};
use crate::directory::LoadError;
use crate::http::connections::{self, Pending, Tracker};
use crate::http::dashboard::{self, Dashboard, Figures};
use crate::http::metrics::Metrics;
use crate::http::webhook;
use crate::limits::Limits;
use crate::models::{ModelMetrics, Models};
use crate::shutdown::{Shutdown, ShutdownTrigger};
use crate::store::shared::SharedRecords;
use crate::store::{self as storage, StorageError};
use crate::store::{Store, StoreError};
use crate::twilio::SignatureVerifier;
use crate::twilio::outbox::Outbox;

/// How the process was started, beyond the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--dev`: no signature verification; loopback binds only.
    pub dev: bool,
    pub clock: SharedClock,
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "no Twilio auth token is configured, so webhook signatures cannot be verified. \
         Set TWILIO_AUTH_TOKEN (or twilio.auth_token in config.toml, or ROSTER_TWILIO__AUTH_TOKEN) \
         to the auth token of your Twilio account, or pass --dev to run locally without verification"
    )]
    NoAuthToken,
    #[error(
        "--dev turns off signature verification, so it only binds to loopback addresses; \
         server.bind is {0}. Use 127.0.0.1 or ::1, or configure twilio.auth_token and drop --dev"
    )]
    DevNotLoopback(SocketAddr),
    #[error(transparent)]
    Directory(#[from] LoadError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "cannot read the sessions in the data dir: {0}; keep the data dir as it is, run \
         `roster check-data` to see what can be read, and restore a backup (roster import) \
         only if it cannot"
    )]
    Sessions(#[from] StoreError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
}

/// A built application, ready to serve.
pub struct App {
    state: AppState,
    options: Options,
    /// The application serving now, for what outlives one build (the
    /// SIGHUP handler); `None` while the store is being reopened.
    current: Arc<tokio::sync::watch::Sender<Option<AppState>>>,
}

/// How one build's serving ended.
enum Ended {
    /// The shutdown fired; the result is the last flush's.
    Stopped(anyhow::Result<()>),
    /// The disk takes writes again after a failure: build afresh.
    Reopen,
}

/// How long a reopen waits for the failed store's last holders (requests
/// and tasks still finishing) to release the data dir.
const REOPEN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long requests in flight may take when the store is reopened: they
/// can write nothing anyway (the store failed), and members wait meanwhile.
const REOPEN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

impl App {
    /// Loads the directory, opens storage and prepares the shared state.
    pub fn build(config: Config, options: Options) -> Result<App, StartError> {
        let state = Self::build_state(config, options.clone())?;
        Ok(App {
            current: Arc::new(tokio::sync::watch::Sender::new(Some(state.clone()))),
            state,
            options,
        })
    }

    /// Everything one build shares across requests.
    fn build_state(config: Config, options: Options) -> Result<AppState, StartError> {
        let verifier = match (config.twilio.auth_token(), options.dev) {
            (_, true) => {
                if !config.server.bind.ip().is_loopback() {
                    return Err(StartError::DevNotLoopback(config.server.bind));
                }
                None
            }
            (Some(token), false) => Some(SignatureVerifier::new(token)),
            (None, false) => return Err(StartError::NoAuthToken),
        };
        let assistant = load_assistant(&config)?;
        let sessions = Store::open(
            &storage::open_when_space(&config.storage)?,
            &config,
            options.clock.clone(),
        )?;
        let sessions = match config.storage.backend {
            Backend::Sled => sessions,
            Backend::Redis => sessions.with_shared(SharedRecords::connect(
                &config.storage,
                config.longest_turn(),
            )?),
        };
        let limits = Limits::new(&config.limits, options.clock.clone());
        let sessions = Arc::new(sessions);
        let figures = Figures::open(
            sessions.hour_tree()?,
            &config.dashboard,
            options.clock.clone(),
        )?;
        let dashboard = Dashboard::new(&config, options.clock.clone());
        let model_metrics = ModelMetrics::new();
        let metrics = Metrics::new(Arc::clone(&sessions), &model_metrics);
        metrics.directory_loaded(assistant.directory().len(), options.clock.now_ms() / 1000);
        let connections = Arc::new(Tracker::for_config(&config.server));
        let pending = Arc::new(Pending::new(config.server.max_pending));
        let limits = Arc::new(limits);
        let metrics = Arc::new(metrics.with_load(
            Arc::clone(&connections),
            Arc::clone(&pending),
            Arc::clone(&limits),
        ));
        let vector_cache = match config.embeddings.base_url() {
            Some(_) => Some(sessions.vector_cache()?),
            None => None,
        };
        let models = Models::new(&config, vector_cache, model_metrics, options.clock.clone());
        let outbox = match config.twilio.account_sid() {
            Some(_) => Outbox::new(
                sessions.outbox_tree(config.twilio.outbox_takeover)?,
                &config.twilio,
                options.clock.clone(),
            )
            .map(Arc::new),
            None => None,
        };
        Ok(AppState {
            config: Arc::new(config),
            verifier,
            assistant: Arc::new(ArcSwap::from_pointee(assistant)),
            limits,
            sessions,
            metrics,
            models: Arc::new(models),
            outbox,
            clock: options.clock,
            connections,
            pending,
            figures: Arc::new(figures),
            dashboard: Arc::new(dashboard),
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The state of the build serving now, which changes when the store is
    /// reopened after a failure (`None` meanwhile). Hold a state only as
    /// long as needed: a held one keeps its store, and the data dir, open.
    pub fn current(&self) -> tokio::sync::watch::Receiver<Option<AppState>> {
        self.current.subscribe()
    }

    /// The HTTP routes with their middleware.
    pub fn router(&self) -> Router {
        let server = &self.state.config.server;
        let mut router = Router::new()
            .route("/whatsapp/webhook", post(webhook::whatsapp_webhook))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text));
        if let Some(token) = self.state.config.admin.token() {
            router = router.merge(admin::routes(self.state.clone(), token));
        }
        router
            .merge(dashboard::routes(&self.state.config))
            .layer(DefaultBodyLimit::max(server.max_body_bytes))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                server.request_timeout,
            ))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&self.state.pending),
                connections::shed_overload,
            ))
            .with_state(self.state.clone())
    }

    /// Logs what an operator wants to know at start-up.
    pub fn log_summary(&self, bind: SocketAddr) {
        let state = &self.state;
        let assistant = state.assistant();
        let directory = assistant.directory();
        tracing::info!(
            bind = %bind,
            members = directory.len(),
            rejected_rows = directory.rejected().len(),
            members_csv = %state.config.directory.members_csv.display(),
            data_dir = %state.config.storage.data_dir.display(),
            durability = ?state.config.storage.durability,
            signatures_verified = state.verifier.is_some(),
            max_connections = state.connections.settings().max_connections,
            open_file_limit = connections::open_file_limit(),
            "roster is ready"
        );
        log_rejections(directory);
        if state.verifier.is_none() {
            tracing::warn!(
                "DEV MODE: Twilio signatures are NOT verified; anyone who can reach {bind} can use the assistant"
            );
        }
    }

    /// Serves on `listener` until `shutdown` fires, then stops cleanly:
    /// requests in flight finish (bounded), background tasks stop, and
    /// storage is flushed. After a storage failure, once the disk takes
    /// writes again, the store is reopened in-process (see the module docs).
    pub async fn run(mut self, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
        loop {
            let current = Arc::clone(&self.current);
            let options = self.options.clone();
            let config = (*self.state.config).clone();
            match self.serve(&listener, shutdown.clone()).await {
                Ended::Stopped(result) => {
                    current.send_replace(None);
                    return result;
                }
                Ended::Reopen => {
                    current.send_replace(None);
                    let mut stop = shutdown.clone();
                    let state = tokio::select! {
                        state = reopen(config, options.clone()) => state?,
                        // A stop is never held up by a data dir that will
                        // not open (a disk full again, a holder that lingers).
                        () = stop.recv() => anyhow::bail!(
                            "stopped while the data dir was being reopened after a storage \
                             failure; what was written since its last successful flush may \
                             not be on disk (in strict durability none of it was acknowledged)"
                        ),
                    };
                    current.send_replace(Some(state.clone()));
                    self = App {
                        state,
                        options,
                        current,
                    };
                    if let Ok(addr) = listener.local_addr() {
                        self.log_summary(addr);
                    }
                }
            }
        }
    }

    /// One build's serving, until the shutdown or a reopen.
    async fn serve(self, listener: &TcpListener, shutdown: Shutdown) -> Ended {
        let state = self.state.clone();
        state.models.index_directory(state.assistant());
        // Background tasks outlive the HTTP server: requests in flight may
        // still wait on the flusher.
        let (tasks_trigger, tasks_shutdown) = ShutdownTrigger::new();
        let store = tokio::spawn(Arc::clone(&state.sessions).run(
            state.config.session.sweep_interval,
            state.config.storage.check_every,
            tasks_shutdown.clone(),
        ));
        let outbox = state
            .outbox
            .clone()
            .map(|outbox| tokio::spawn(outbox.run(tasks_shutdown.clone())));
        let directory = tokio::spawn(super::directory_sync::follow(
            state.clone(),
            tasks_shutdown.clone(),
        ));
        let figures = tokio::spawn(Arc::clone(&state.figures).run(tasks_shutdown));
        let health = Arc::clone(state.sessions.health());
        // A storage failure ends in a reopen once the disk takes writes.
        let stopping = shutdown.clone();
        let shutdown = shutdown.or_else(async move { health.wait_for_reopen().await });

        let server = connections::serve(
            listener,
            self.router(),
            Arc::clone(&state.connections),
            shutdown.clone(),
        );
        let mut deadline = shutdown.clone();
        let served: anyhow::Result<()> = tokio::select! {
            () = server => Ok(()),
            grace = async {
                deadline.recv().await;
                let grace = state.config.server.shutdown_timeout;
                let grace = if state.sessions.health().reopen_requested() {
                    grace.min(REOPEN_GRACE)
                } else {
                    grace
                };
                tokio::time::sleep(grace).await;
                grace
            } => {
                tracing::warn!("requests still in flight after {grace:?}; stopping anyway");
                Ok(())
            }
        };
        tasks_trigger.fire();
        for task in [store, figures, directory] {
            if let Err(e) = task.await {
                tracing::error!("background task failed: {e}");
            }
        }
        if let Some(Err(e)) = match outbox {
            Some(task) => Some(task.await),
            None => None,
        } {
            tracing::error!("the outbox sender failed: {e}");
        }
        let closed = state.sessions.close().await;
        // A shutdown that fired during a reopen is a stop all the same.
        if state.sessions.health().reopen_requested() && !stopping.is_shutdown() {
            if let Err(e) = &closed {
                tracing::warn!("reopening the data dir; the failed store's last flush: {e}");
            }
            return Ended::Reopen;
        }
        match &closed {
            Ok(()) => tracing::info!("state flushed; bye"),
            Err(e) => tracing::error!("{e}"),
        }
        Ended::Stopped(served.and(closed.map_err(Into::into)))
    }
}

/// Builds the application again on the data dir after a storage failure,
/// once whatever still held the failed store has let it go.
async fn reopen(config: Config, options: Options) -> anyhow::Result<AppState> {
    tracing::warn!("reopening the data dir in-process, from what is on disk");
    let started = std::time::Instant::now();
    loop {
        let (config, options) = (config.clone(), options.clone());
        let built = tokio::task::spawn_blocking(move || App::build_state(config, options)).await;
        match built {
            Ok(Ok(state)) => {
                tracing::info!(
                    took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "the data dir is open again; serving"
                );
                return Ok(state);
            }
            Ok(Err(StartError::Storage(StorageError::Locked(_))))
                if started.elapsed() < REOPEN_LOCK_WAIT =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Ok(Err(e)) => {
                return Err(anyhow::Error::new(e).context(
                    "cannot reopen the data dir after a storage failure; \
                     roster exits (status 1) for its supervisor to start it again",
                ));
            }
            Err(e) => anyhow::bail!("reopening the data dir failed: {e}"),
        }
    }
}

/// `roster serve`: builds the app, binds, and serves until SIGINT/SIGTERM.
pub async fn serve(config: Config, options: Options) -> anyhow::Result<()> {
    let bind = config.server.bind;
    match connections::raise_open_file_limit() {
        Some(limit) => tracing::info!(open_file_limit = limit, "open-file limit"),
        None => tracing::info!("no open-file limit"),
    }
    let app = App::build(config, options)?;
    let listener = listen(bind).map_err(|e| StartError::Bind {
        addr: bind,
        reason: e.to_string(),
    })?;
    let local_addr = listener.local_addr().unwrap_or(bind);
    let (trigger, shutdown) = ShutdownTrigger::new();
    let stop_signals = crate::shutdown::StopSignals::listen()?;
    tokio::spawn(async move {
        stop_signals.recv().await;
        trigger.fire();
    });
    reload_on_sighup(app.current());
    app.log_summary(local_addr);
    app.run(listener, shutdown).await
}

/// How many connections the kernel may queue before `accept` (it caps this
/// at `net.core.somaxconn`). A burst, or the moment the store is reopened,
/// waits here rather than having its SYNs dropped and retried a second
/// later, as with the usual 128.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind`: a restart may bind again at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// SIGHUP reloads the directory, as daemons conventionally do. The listener
/// is installed before this returns, so a SIGHUP never kills the process.
fn reload_on_sighup(current: tokio::sync::watch::Receiver<Option<AppState>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /admin/directory/reload");
            return;
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                // Not held between signals: a held state keeps its store open.
                let state = current.borrow().clone();
                match state {
                    Some(state) => {
                        tracing::info!("SIGHUP received: reloading the directory");
                        let _ = state.reload_directory().await;
                    }
                    None => tracing::warn!(
                        "SIGHUP received while the data dir is being reopened; send it again"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = current;
}

/// `GET /metrics`, behind the admin token when `metrics.require_token`.
async fn metrics_text(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    if app.config.metrics.require_token
        && !admin::bearer_matches(&headers, app.config.admin.token().unwrap_or_default())
    {
        return admin::unauthorized();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let members = app.assistant().directory().len();
    // A read proves the store answers; sled keeps it open until we drop it.
    let failure = app.sessions.health().failure();
    let shared_failure = app.sessions.shared_failure();
    let storage_ok = failure.is_none() && shared_failure.is_none() && app.sessions.readable();
    let ready = members > 0 && storage_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "members": members,
        "storage": if storage_ok { "open" } else { "failing" },
    });
    if let Some(reason) = shared_failure {
        body["storageFailure"] = serde_json::json!({ "kind": "redis", "reason": reason });
    }
    if let Some(failure) = failure {
        body["storageFailure"] = serde_json::json!({
            "kind": failure.kind.as_str(),
            "reason": failure.to_string(),
        });
    }
    (status, Json(body))
}
