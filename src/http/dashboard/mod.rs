//! The organisers' dashboard under `/dashboard`: pages rendered on the
//! server (askama templates, checked at compile time), one embedded
//! stylesheet, SVG charts drawn here, and no JavaScript.
//!
//! It is on when `admin.token` is set, and organisers sign in with that
//! token ([`auth`]). Every POST checks the session's CSRF token and, when
//! the browser sends one, the Origin. The pages read the figures that the
//! webhook counts ([`figures`]), the directory in use, the session store
//! and the limits; the directory can be reloaded, or replaced by an
//! uploaded file that is checked in full first and swapped in only when the
//! organiser confirms.

pub(crate) mod auth;
pub(crate) mod figures;
mod pages;
mod svg;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::http::AppState;

pub use figures::Figures;

/// The dashboard's own state: sign-ins and uploads waiting for a confirm.
pub struct Dashboard {
    pub(crate) auth: auth::Auth,
    uploads: Mutex<HashMap<String, PendingUpload>>,
    /// The key that turns a phone into the opaque reference in page links.
    link_key: String,
    /// Why the last reload or replacement from the dashboard failed, if it did.
    last_failure: Mutex<Option<String>>,
}

/// An uploaded file that was checked and may replace the directory.
struct PendingUpload {
    path: PathBuf,
    file_name: String,
    members: usize,
}

/// Most uploads kept waiting for a confirm; older ones are dropped.
const MAX_PENDING_UPLOADS: usize = 4;

impl Dashboard {
    pub(crate) fn new(config: &Config, clock: SharedClock) -> Dashboard {
        Dashboard {
            auth: auth::Auth::new(config.dashboard.login_attempts, clock),
            uploads: Mutex::new(HashMap::new()),
            link_key: auth::random_token(),
            last_failure: Mutex::new(None),
        }
    }

    fn keep_upload(&self, id: String, upload: PendingUpload) {
        let Ok(mut uploads) = self.uploads.lock() else {
            remove_quietly(&upload.path);
            return;
        };
        if uploads.len() >= MAX_PENDING_UPLOADS {
            for (_, old) in uploads.drain() {
                remove_quietly(&old.path);
            }
        }
        uploads.insert(id, upload);
    }

    fn take_upload(&self, id: &str) -> Option<PendingUpload> {
        self.uploads.lock().ok()?.remove(id)
    }

    fn set_failure(&self, failure: Option<String>) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = failure;
        }
    }

    fn failure(&self) -> Option<String> {
        self.last_failure.lock().ok()?.clone()
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if let Ok(uploads) = self.uploads.get_mut() {
            for (_, upload) in uploads.drain() {
                remove_quietly(&upload.path);
            }
        }
    }
}

fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), "cannot remove an uploaded file: {e}");
    }
}

/// The `/dashboard` routes: the pages when `admin.token` is set, else a
/// page saying the dashboard is off.
pub fn routes(config: &Config) -> Router<AppState> {
    if config.admin.token().is_none() {
        return Router::new()
            .route("/dashboard", get(pages::off))
            .route("/dashboard/", get(pages::off))
            .route("/dashboard/{*rest}", get(pages::off).post(pages::off));
    }
    let upload_limit = config.dashboard.max_upload_bytes.saturating_add(64 * 1024);
    Router::new()
        .route("/dashboard", get(pages::overview))
        .route("/dashboard/", get(pages::overview))
        .route("/dashboard/style.css", get(pages::stylesheet))
        .route(
            "/dashboard/login",
            get(pages::login_form).post(pages::login),
        )
        .route("/dashboard/logout", post(pages::logout))
        .route("/dashboard/searches", get(pages::searches))
        .route("/dashboard/searches/forget", post(pages::forget_texts))
        .route("/dashboard/directory", get(pages::directory))
        .route("/dashboard/directory/reload", post(pages::reload))
        .route(
            "/dashboard/directory/upload",
            post(pages::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/dashboard/directory/confirm", post(pages::confirm))
        .route("/dashboard/sessions", get(pages::sessions))
        .route("/dashboard/sessions/lookup", post(pages::lookup))
        .route("/dashboard/sessions/{reference}", get(pages::session))
        .route(
            "/dashboard/sessions/{reference}/delete",
            post(pages::delete_session),
        )
        .route("/dashboard/{*rest}", get(pages::not_found))
}
