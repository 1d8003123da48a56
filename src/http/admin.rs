//! The admin API: what an operator needs to inspect and fix state while the
//! server holds the sled lock.
//!
//! Mounted only when `admin.token` is set; every route wants
//! `Authorization: Bearer <token>`, compared in constant time, and answers
//! 401 otherwise. Phones in paths accept any writing `PhoneNumber` parses.

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::http::AppState;
use crate::http::views::{ErrorBody, LimitsOf, SessionDetail, SessionList, SessionRow, Stats};
use crate::phone::PhoneNumber;
use crate::store::StoreError;

/// The `/admin` routes, guarded by `token`.
pub fn routes(state: AppState, token: &str) -> Router<AppState> {
    let token = token.to_owned();
    Router::new()
        .route("/admin/sessions", get(list_sessions))
        .route(
            "/admin/sessions/{phone}",
            get(show_session).delete(delete_session),
        )
        .route("/admin/limits/{phone}", get(show_limits))
        .route("/admin/stats", get(stats))
        .route("/admin/directory/reload", post(reload_directory))
        .route("/admin/export", get(export))
        .route_layer(middleware::from_fn_with_state(
            state,
            move |_: State<AppState>, request: Request, next: Next| {
                let token = token.clone();
                async move { require_token(&token, request, next).await }
            },
        ))
}

async fn require_token(token: &str, request: Request, next: Next) -> Response {
    if bearer_matches(request.headers(), token) {
        next.run(request).await
    } else {
        unauthorized()
    }
}

/// Whether the request carries `Authorization: Bearer <token>`; constant time.
pub fn bearer_matches(headers: &axum::http::HeaderMap, token: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    !token.is_empty() && bool::from(presented.as_bytes().ct_eq(token.as_bytes()))
}

/// 401 with a message that says what is wanted.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(ErrorBody {
            error: "a valid admin token is required (Authorization: Bearer <admin.token>)"
                .to_owned(),
        }),
    )
        .into_response()
}

/// An admin request that could not be answered.
enum AdminError {
    BadPhone(String),
    NotFound,
    Storage(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Storage(e)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AdminError::BadPhone(reason) => (StatusCode::BAD_REQUEST, reason),
            AdminError::NotFound => (
                StatusCode::NOT_FOUND,
                "no live session for that phone".to_owned(),
            ),
            AdminError::Storage(e) => {
                tracing::error!("admin request failed: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        };
        (status, Json(ErrorBody { error: message })).into_response()
    }
}

fn parse_phone(app: &AppState, text: &str) -> Result<PhoneNumber, AdminError> {
    PhoneNumber::parse(text, app.config.directory.default_region)
        .map_err(|e| AdminError::BadPhone(e.to_string()))
}

/// The live session with its limits and opt-out ([`SessionDetail`]).
async fn show_session(
    State(app): State<AppState>,
    Path(phone): Path<String>,
) -> Result<Json<SessionDetail>, AdminError> {
    let phone = parse_phone(&app, &phone)?;
    let state = app.sessions.phone_state(&phone).await?;
    // A phone that opted out is worth showing without a session too
    // (strangers opt out, and an opt-out outlives the session).
    SessionDetail::new(
        &phone,
        state.session.as_ref(),
        app.limits.view_at(&state.limits, state.now_ms),
        state.opted_out_at_ms,
        state.now_ms,
    )
    .map(Json)
    .ok_or(AdminError::NotFound)
}

/// What a phone has left, without spending anything; works for any phone.
async fn show_limits(
    State(app): State<AppState>,
    Path(phone): Path<String>,
) -> Result<Json<LimitsOf>, AdminError> {
    let phone = parse_phone(&app, &phone)?;
    let state = app.sessions.phone_state(&phone).await?;
    Ok(Json(LimitsOf {
        phone_number: phone.e164(),
        limits: app.limits.view_at(&state.limits, state.now_ms).into(),
    }))
}

async fn delete_session(
    State(app): State<AppState>,
    Path(phone): Path<String>,
) -> Result<Response, AdminError> {
    let phone = parse_phone(&app, &phone)?;
    if app.sessions.delete(&phone).await? {
        tracing::info!(phone = %phone.masked(), "session deleted by admin");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(AdminError::NotFound)
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn list_sessions(
    State(app): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, AdminError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let cursor = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(text) => Some(parse_phone(&app, text)?),
        None => None,
    };
    let sessions = app.sessions.list(cursor.as_ref(), limit).await?;
    let next_cursor = (sessions.len() == limit)
        .then(|| sessions.last().map(|s| s.phone.e164()))
        .flatten();
    Ok(Json(SessionList {
        sessions: sessions.iter().map(SessionRow::from).collect(),
        next_cursor,
    })
    .into_response())
}

async fn stats(State(app): State<AppState>) -> Json<Stats> {
    let assistant = app.assistant();
    Json(Stats {
        sessions: app.sessions.stats(),
        members: Some(assistant.directory().len()),
        strangers_remembered: Some(app.limits.strangers.len()),
        connections: Some(app.connections.stats()),
        shed_requests: Some(app.pending.shed()),
    })
}

/// Reloads the directory file; the old one stays when the new one fails.
async fn reload_directory(State(app): State<AppState>) -> Response {
    match app.reload_directory().await {
        Ok(assistant) => {
            let directory = assistant.directory();
            Json(json!({
                "members": directory.len(),
                "rejectedRows": directory.rejected(),
            }))
            .into_response()
        }
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(ErrorBody {
                error: format!("{e}; the directory in use was kept"),
            }),
        )
            .into_response(),
    }
}

/// Streams every live session, rate-limit entry and opt-out as JSON lines.
///
/// The status line goes out before the export is done, so a failure part way
/// cannot change it: the body ends with an error instead, which aborts the
/// response (no final chunk), and the client sees a broken body, never a
/// clean but truncated one.
async fn export(State(app): State<AppState>) -> Response {
    let now = app.sessions.now_ms();
    let body = export_body(move |out| crate::store::export::export(&app.sessions, now, out));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

/// Runs `write` on a blocking thread and streams what it writes as a body
/// that ends cleanly only if `write` succeeded; an error or a panic ends it
/// with an error.
fn export_body<F>(write: F) -> axum::body::Body
where
    F: FnOnce(
            &mut ChannelWriter,
        ) -> Result<crate::store::export::Counts, crate::store::export::BackupError>
        + Send
        + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let task = tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            sender,
            buffer: Vec::with_capacity(64 * 1024),
        };
        let result = write(&mut out);
        match &result {
            Ok(counts) => tracing::info!(
                sessions = counts.sessions,
                limits = counts.limits,
                opt_outs = counts.opt_outs,
                "exported"
            ),
            Err(e) => tracing::error!("export failed: {e}"),
        }
        result
    });
    // The channel closes when the task is done with the writer; only then
    // does the task's result say whether the body is complete.
    let stream = futures_util::stream::unfold(Some((receiver, task)), |state| async move {
        let (mut receiver, task) = state?;
        if let Some(chunk) = receiver.recv().await {
            return Some((Ok(chunk), Some((receiver, task))));
        }
        let failure = match task.await {
            Ok(Ok(_)) => return None,
            Ok(Err(e)) => format!("export failed part way: {e}"),
            Err(e) => format!("export task failed: {e}"),
        };
        Some((Err(std::io::Error::other(failure)), None))
    });
    axum::body::Body::from_stream(stream)
}

/// A `Write` that hands 64 KiB chunks to the response body.
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(64 * 1024));
        self.sender.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::store::export::{BackupError, Counts};

    /// Serves `body` once on 127.0.0.1:0 and returns its URL.
    async fn serve(body: impl Fn() -> axum::body::Body + Clone + Send + Sync + 'static) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/export", get(move || async move { body() }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/export")
    }

    /// Holds a test's export, after what it has written, until the client has
    /// the response's status: a failure before that would fail the request
    /// itself rather than break the body under test.
    #[derive(Clone, Default)]
    struct Gate(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

    impl Gate {
        fn open(&self) {
            let (open, opened) = &*self.0;
            *open.lock().unwrap() = true;
            opened.notify_all();
        }

        /// Bounded, so a test that fails before opening it cannot hang on
        /// the export's blocking thread.
        fn wait(&self) {
            let (open, opened) = &*self.0;
            let open = open.lock().unwrap();
            let limit = std::time::Duration::from_secs(30);
            drop(
                opened
                    .wait_timeout_while(open, limit, |open| !*open)
                    .unwrap(),
            );
        }
    }

    /// Reads the whole body the way `roster export` does, chunk by chunk,
    /// opening `gate` once the status is in.
    async fn fetch(url: &str, gate: &Gate) -> (StatusCode, Vec<u8>, Result<(), reqwest::Error>) {
        let mut response = reqwest::get(url).await.unwrap();
        let status = response.status();
        gate.open();
        let mut received = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => received.extend_from_slice(&chunk),
                Ok(None) => return (status, received, Ok(())),
                Err(e) => return (status, received, Err(e)),
            }
        }
    }

    /// `{"line":0}` to `{"line":count-1}`, one a line: over 64 KiB, so more
    /// than one chunk, for 20,000.
    fn write_lines(out: &mut impl Write, count: usize) -> std::io::Result<()> {
        for i in 0..count {
            writeln!(out, "{{\"line\":{i}}}")?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_complete_export_ends_cleanly_with_every_byte() {
        let url = serve(|| {
            export_body(|out| {
                write_lines(out, 20_000)?;
                out.flush()?;
                Ok(Counts::default())
            })
        })
        .await;
        let (status, received, end) = fetch(&url, &Gate::default()).await;
        assert_eq!(status, StatusCode::OK);
        end.expect("a complete export ends cleanly");
        let text = String::from_utf8(received).unwrap();
        assert_eq!(text.lines().count(), 20_000);
        assert!(text.ends_with("{\"line\":19999}\n"));
    }

    #[tokio::test]
    async fn a_failed_export_breaks_the_body_instead_of_ending_it() {
        let gate = Gate::default();
        let held = gate.clone();
        let url = serve(move || {
            let held = held.clone();
            export_body(move |out| {
                // More than one 64 KiB chunk goes out before the failure.
                write_lines(out, 20_000)?;
                out.flush()?;
                held.wait();
                Err(BackupError::Invalid {
                    line: 0,
                    reason: "storage broke".to_owned(),
                })
            })
        })
        .await;
        let (status, received, end) = fetch(&url, &gate).await;
        assert_eq!(status, StatusCode::OK, "the status went out first");
        assert!(
            end.is_err(),
            "a partial export ({} bytes) must not end cleanly",
            received.len()
        );
    }

    #[tokio::test]
    async fn a_panicking_export_breaks_the_body_too() {
        let gate = Gate::default();
        let held = gate.clone();
        let url = serve(move || {
            let held = held.clone();
            export_body(move |out| {
                writeln!(out, "{{\"type\":\"header\"}}")?;
                out.flush()?;
                held.wait();
                panic!("storage panicked");
            })
        })
        .await;
        let (_, _, end) = fetch(&url, &gate).await;
        assert!(end.is_err(), "a panicked export must not end cleanly");
    }
}
