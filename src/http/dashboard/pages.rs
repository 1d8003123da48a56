//! The dashboard's handlers and the templates they fill.
//!
//! Each GET handler signs the request in (or redirects to the login page),
//! gathers its figures and renders one askama template; each POST handler
//! checks the CSRF token and the Origin first, acts, and redirects back
//! with a notice (or renders the result, for an upload's check).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, Multipart, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

use super::auth::{self, SignedIn};
use super::figures::{NOT_KEPT, OTHERS, Totals};
use super::{PendingUpload, svg};
use crate::conversation::Session;
use crate::directory::{Directory, Rejection};
use crate::http::AppState;
use crate::http::webhook::Outcome;
use crate::phone::PhoneNumber;

const HOUR_MS: u64 = 3_600_000;
/// Sessions listed per page.
const PAGE_SIZE: usize = 25;
/// Rows shown in each list of searches.
const TOP_ROWS: usize = 20;

/// What every page shows around its content.
struct Chrome {
    org: String,
    csrf: String,
    signed_in: bool,
    notice: Option<&'static str>,
    /// Which page the menu marks as the current one.
    current: &'static str,
}

impl Chrome {
    fn new(app: &AppState, session: Option<&SignedIn>, current: &'static str) -> Chrome {
        Chrome {
            org: app.config.directory.org_name.clone(),
            csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
            signed_in: session.is_some(),
            notice: None,
            current,
        }
    }

    fn with_notice(mut self, code: Option<&str>) -> Chrome {
        self.notice = code.and_then(notice_text);
        self
    }
}

/// The text of a notice a POST redirected with.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "reloaded" => "The directory was reloaded.",
        "reload-failed" => "The reload failed; the directory in use was kept (see below).",
        "replaced" => "The directory was replaced by the uploaded file.",
        "deleted" => "The session was deleted.",
        "forgotten" => "The texts of messages not understood were forgotten; their counts stay.",
        "signed-out" => "You are signed out.",
        _ => return None,
    })
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct NoticeQuery {
    notice: Option<String>,
    page: Option<usize>,
}

fn render(template: &impl Template) -> Response {
    render_with(StatusCode::OK, template)
}

fn render_with(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!("dashboard page failed to render: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// 303 to `to`, so that a POST is not repeated by a reload of the page.
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn to_login() -> Response {
    see_other("/dashboard/login")
}

/// The signed-in organiser; `None` means redirect to the login page.
fn require(app: &AppState, headers: &HeaderMap) -> Option<SignedIn> {
    app.dashboard.auth.session(headers)
}

/// Refuses a POST without the session's CSRF token or from another site.
fn check_post(app: &AppState, session: &SignedIn, headers: &HeaderMap, csrf: &str) -> bool {
    let allowed = auth::post_allowed(session, csrf, headers, app.config.twilio.public_url());
    if !allowed {
        tracing::warn!("dashboard POST refused: bad CSRF token or foreign origin");
    }
    allowed
}

fn forbidden(app: &AppState) -> Response {
    render_with(
        StatusCode::FORBIDDEN,
        &MessagePage {
            chrome: Chrome::new(app, None, ""),
            title: "Refused".to_owned(),
            message: "This request did not come from a dashboard page of this server, so it was refused. Go back to the dashboard and try again.".to_owned(),
        },
    )
}

/// Whether the cookie gets `Secure`.
fn secure(app: &AppState) -> bool {
    app.config.dashboard.secure_cookie
        || app
            .config
            .twilio
            .public_url()
            .is_some_and(|u| u.starts_with("https://"))
}

/// "2026-12-01 10:00 UTC" for ms since the epoch.
fn time_of(ms: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    let text = humantime::format_rfc3339_seconds(at).to_string();
    format!("{} UTC", text.get(..16).unwrap_or(&text).replace('T', " "))
}

#[derive(Template)]
#[template(path = "dashboard/message.html")]
struct MessagePage {
    chrome: Chrome,
    title: String,
    message: String,
}

/// Every dashboard path while `admin.token` is unset.
pub(super) async fn off(State(app): State<AppState>) -> Response {
    render_with(
        StatusCode::NOT_FOUND,
        &MessagePage {
            chrome: Chrome::new(&app, None, ""),
            title: "The dashboard is off".to_owned(),
            message: "The dashboard is off because no admin token is configured. Set admin.token in config.toml (or ROSTER_ADMIN__TOKEN) and restart roster; then sign in here with that token.".to_owned(),
        },
    )
}

pub(super) async fn not_found(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    render_with(
        StatusCode::NOT_FOUND,
        &MessagePage {
            chrome: Chrome::new(&app, Some(&session), ""),
            title: "No such page".to_owned(),
            message: "There is no such dashboard page.".to_owned(),
        },
    )
}

pub(super) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("style.css"),
    )
        .into_response()
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginPage {
    chrome: Chrome,
    error: Option<&'static str>,
}

pub(super) async fn login_form(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    if app.dashboard.auth.session(&headers).is_some() {
        return see_other("/dashboard");
    }
    render(&LoginPage {
        chrome: Chrome::new(&app, None, "").with_notice(query.notice.as_deref()),
        error: None,
    })
}

/// The client's address, for the limit on failed sign-ins.
pub(super) struct Client(IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(
            auth::client_address(parts).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    token: String,
}

pub(super) async fn login(
    State(app): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let page = |status, error| {
        render_with(
            status,
            &LoginPage {
                chrome: Chrome::new(&app, None, ""),
                error: Some(error),
            },
        )
    };
    if !auth::same_origin(&headers, app.config.twilio.public_url()) {
        return forbidden(&app);
    }
    let auth = &app.dashboard.auth;
    if !auth.may_try(client) {
        tracing::warn!(client = %client, "dashboard sign-in refused: too many failures");
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong tokens from this address. Wait 15 minutes, then try again.",
        );
    }
    let token = app.config.admin.token().unwrap_or_default();
    if !auth::Auth::token_matches(form.token.trim(), token) {
        auth.failed(client);
        tracing::warn!(client = %client, "dashboard sign-in failed: wrong token");
        return page(
            StatusCode::UNAUTHORIZED,
            "That is not the admin token. Check admin.token in the server's configuration.",
        );
    }
    let session = auth.sign_in();
    tracing::info!(client = %client, "dashboard sign-in");
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                auth::session_cookie(&session, secure(&app)),
            ),
            (header::LOCATION, "/dashboard".to_owned()),
        ],
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    if !check_post(&app, &session, &headers, &form.csrf) {
        return forbidden(&app);
    }
    app.dashboard.auth.sign_out(&session.id);
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, auth::cleared_cookie(secure(&app))),
            (
                header::LOCATION,
                "/dashboard/login?notice=signed-out".to_owned(),
            ),
        ],
    )
        .into_response()
}

// --------------------------------------------------------------- overview

struct OutcomeRow {
    id: &'static str,
    label: &'static str,
    day: u64,
    month: u64,
}

#[derive(Template)]
#[template(path = "dashboard/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    messages_day: u64,
    messages_month: u64,
    hourly_chart: String,
    daily_chart: String,
    outcomes: Vec<OutcomeRow>,
    sessions: u64,
    members: usize,
    p50: String,
    p99: String,
}

fn latency_text(totals: &Totals, quantile: f64) -> String {
    match totals.latency_ms(quantile) {
        Some(ms) if ms < 1.0 => format!("≤ {ms:.1} ms"),
        Some(ms) => format!("≤ {ms:.0} ms"),
        None => "–".to_owned(),
    }
}

pub(super) async fn overview(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    let figures = &app.figures;
    let now = figures.current_hour();
    let day = figures.totals(now.saturating_sub(23), now);
    let month = figures.totals(now.saturating_sub(30 * 24 - 1), now);
    let hourly: Vec<(String, u64)> = figures
        .hourly(now, 24)
        .into_iter()
        .map(|(hour, count)| (format!("{:02}h", hour % 24), count))
        .collect();
    // Days in UTC: the last 30, today included.
    let today = now / 24;
    let by_hour = figures.hourly(now, 30 * 24 + now % 24);
    let daily: Vec<(String, u64)> = (today.saturating_sub(29)..=today)
        .map(|d| {
            let count = by_hour
                .iter()
                .filter(|(hour, _)| hour / 24 == d)
                .map(|(_, c)| c)
                .sum();
            let label = time_of(d * 24 * HOUR_MS);
            (label.get(5..10).unwrap_or(&label).to_owned(), count)
        })
        .collect();
    let outcomes = Outcome::ALL
        .iter()
        .map(|outcome| (outcome.as_str(), outcome.label()))
        .map(|(id, label)| OutcomeRow {
            id,
            label,
            day: day.outcomes.get(id).copied().unwrap_or(0),
            month: month.outcomes.get(id).copied().unwrap_or(0),
        })
        .collect();
    render(&OverviewPage {
        chrome: Chrome::new(&app, Some(&session), "overview").with_notice(query.notice.as_deref()),
        messages_day: day.messages,
        messages_month: month.messages,
        hourly_chart: svg::bars("Messages per hour, last 24 hours (UTC)", &hourly, 3),
        daily_chart: svg::bars("Messages per day, last 30 days (UTC)", &daily, 5),
        outcomes,
        sessions: app.sessions.stats().stored_sessions,
        members: app.assistant().directory().active_members().count(),
        p50: latency_text(&month, 0.5),
        p99: latency_text(&month, 0.99),
    })
}

// --------------------------------------------------------------- searches

struct CountRow {
    label: String,
    count: u64,
    fix: String,
}

#[derive(Template)]
#[template(path = "dashboard/searches.html")]
struct SearchesPage {
    chrome: Chrome,
    week: Vec<CountRow>,
    month: Vec<CountRow>,
    no_results: Vec<CountRow>,
    not_understood: Vec<CountRow>,
    texts_kept: bool,
    synonyms_file: String,
}

/// The most frequent first, at most [`TOP_ROWS`].
fn top(
    map: &std::collections::BTreeMap<String, u64>,
    fix: impl Fn(&str) -> String,
) -> Vec<CountRow> {
    let mut rows: Vec<(&String, &u64)> = map.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    rows.into_iter()
        .take(TOP_ROWS)
        .map(|(label, count)| CountRow {
            fix: fix(label),
            label: label.clone(),
            count: *count,
        })
        .collect()
}

/// What would make a search that found nobody find someone.
fn no_result_fix(label: &str) -> String {
    if label == OTHERS {
        return "Many different searches; see the ones above.".to_owned();
    }
    format!(
        "The assistant understood it, but no active member is {label}. The directory has no such member: add one, or mark an existing one active."
    )
}

/// The word (or short phrase) of a message not understood that a synonym
/// line would teach: the whole message when it is short, else its longest
/// word.
fn synonym_term(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphabetic()).to_lowercase())
        .filter(|w| w.chars().count() >= 2 && !w.contains(['#', '(', ')']))
        .collect();
    match words.len() {
        0 => None,
        1..=3 => Some(words.join(" ")),
        _ => words.into_iter().max_by_key(|w| w.chars().count()),
    }
}

fn not_understood_fix(text: &str, synonyms_file: &str) -> String {
    if text == NOT_KEPT || text == OTHERS {
        return "The texts are not kept, so there is nothing to suggest.".to_owned();
    }
    match synonym_term(text) {
        Some(term) => format!(
            "If members mean a profession by it, add the line “{},profession:<value>” to {synonyms_file} (the value as the directory spells it; or skill:, city:, …) and reload; if no member is one, the directory has no such member.",
            if term.contains(',') {
                format!("\"{term}\"")
            } else {
                term
            }
        ),
        None => "Nothing to learn from it.".to_owned(),
    }
}

pub(super) async fn searches(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    let figures = &app.figures;
    let now = figures.current_hour();
    let week = figures.totals(now.saturating_sub(7 * 24 - 1), now);
    let month = figures.totals(now.saturating_sub(30 * 24 - 1), now);
    let synonyms_file = app.config.directory.synonyms_csv.display().to_string();
    let none = |_: &str| String::new();
    render(&SearchesPage {
        chrome: Chrome::new(&app, Some(&session), "searches").with_notice(query.notice.as_deref()),
        week: top(&week.searches, none),
        month: top(&month.searches, none),
        no_results: top(&month.no_results, no_result_fix),
        not_understood: top(&month.not_understood, |t| {
            not_understood_fix(t, &synonyms_file)
        }),
        texts_kept: app.config.dashboard.keep_unanswered_texts,
        synonyms_file,
    })
}

pub(super) async fn forget_texts(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    if !check_post(&app, &session, &headers, &form.csrf) {
        return forbidden(&app);
    }
    let figures = std::sync::Arc::clone(&app.figures);
    match tokio::task::spawn_blocking(move || figures.forget_texts()).await {
        Ok(Ok(())) => {
            tracing::info!("dashboard: the texts of messages not understood were forgotten")
        }
        Ok(Err(e)) => tracing::error!(
            "dashboard: texts forgotten here, but not yet in the shared store ({e}); click again"
        ),
        Err(e) => tracing::error!("dashboard: forgetting the texts failed: {e}"),
    }
    see_other("/dashboard/searches?notice=forgotten")
}

// -------------------------------------------------------------- directory

struct RejectRow {
    place: String,
    reason: String,
}

fn reject_rows(rejected: &[Rejection]) -> Vec<RejectRow> {
    rejected
        .iter()
        .map(|r| RejectRow {
            place: format!("{} {}", r.unit.as_str(), r.line),
            reason: r.reason.clone(),
        })
        .collect()
}

/// What a check of an uploaded file found.
struct UploadCheck {
    file_name: String,
    /// `None` when the file may replace the directory; else why not.
    refusal: Option<String>,
    members: usize,
    inactive: usize,
    rejected: Vec<RejectRow>,
    /// Names the checked upload in the confirm form.
    token: String,
}

#[derive(Template)]
#[template(path = "dashboard/directory.html")]
struct DirectoryPage {
    chrome: Chrome,
    file: String,
    format: &'static str,
    members: usize,
    active: usize,
    inactive: usize,
    not_sharing: usize,
    loaded_at: String,
    rejected: Vec<RejectRow>,
    failure: Option<String>,
    check: Option<UploadCheck>,
    max_upload: String,
}

fn directory_page(
    app: &AppState,
    session: &SignedIn,
    notice: Option<&str>,
    check: Option<UploadCheck>,
) -> DirectoryPage {
    let assistant = app.assistant();
    let directory = assistant.directory();
    let active = directory.active_members().count();
    let loaded_at = u64::try_from(app.metrics.directory_loaded_at()).unwrap_or(0);
    DirectoryPage {
        chrome: Chrome::new(app, Some(session), "directory").with_notice(notice),
        file: app.config.directory.members_csv.display().to_string(),
        format: directory.format().as_str(),
        members: directory.len(),
        active,
        inactive: directory.len() - active,
        not_sharing: directory
            .active_members()
            .filter(|m| !m.share_contact)
            .count(),
        loaded_at: time_of(loaded_at * 1000),
        rejected: reject_rows(directory.rejected()),
        failure: app.dashboard.failure(),
        check,
        max_upload: format!(
            "{:.1} MB",
            app.config.dashboard.max_upload_bytes as f64 / 1_000_000.0
        ),
    }
}

pub(super) async fn directory(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    render(&directory_page(
        &app,
        &session,
        query.notice.as_deref(),
        None,
    ))
}

pub(super) async fn reload(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    if !check_post(&app, &session, &headers, &form.csrf) {
        return forbidden(&app);
    }
    match app.reload_directory().await {
        Ok(_) => {
            app.dashboard.set_failure(None);
            see_other("/dashboard/directory?notice=reloaded")
        }
        Err(e) => {
            app.dashboard
                .set_failure(Some(format!("{e}; the directory in use was kept")));
            see_other("/dashboard/directory?notice=reload-failed")
        }
    }
}

/// The kind of directory file a name says: `csv`, `xlsx` or `ods`.
fn kind_of(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "csv" | "txt" => Some("csv"),
        "xlsx" | "xlsm" => Some("xlsx"),
        "ods" => Some("ods"),
        _ => None,
    }
}

/// Where an upload waits beside the configured file until it is confirmed.
fn upload_path(configured: &Path, id: &str, kind: &str) -> PathBuf {
    let dir = configured
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(format!(
        ".roster-upload-{}.{kind}",
        id.get(..16).unwrap_or(id)
    ))
}

fn upload_refused(app: &AppState, session: &SignedIn, file_name: String, why: String) -> Response {
    let check = UploadCheck {
        file_name,
        refusal: Some(why),
        members: 0,
        inactive: 0,
        rejected: Vec::new(),
        token: String::new(),
    };
    render_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &directory_page(app, session, None, Some(check)),
    )
}

pub(super) async fn upload(
    State(app): State<AppState>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    let mut csrf = String::new();
    let mut file: Option<(String, axum::body::Bytes)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                let status = e.status();
                let why = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!(
                        "The file is larger than the {} the dashboard accepts (dashboard.max_upload_bytes).",
                        directory_page(&app, &session, None, None).max_upload
                    )
                } else {
                    format!("The upload could not be read: {e}")
                };
                let mut response = upload_refused(&app, &session, String::new(), why);
                *response.status_mut() = status;
                return response;
            }
        };
        match field.name() {
            Some("csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("file") => {
                let name = field.file_name().unwrap_or("upload").to_owned();
                match field.bytes().await {
                    Ok(bytes) => file = Some((name, bytes)),
                    Err(e) => {
                        let status = e.status();
                        let mut response = upload_refused(
                            &app,
                            &session,
                            name,
                            format!("The file could not be received whole: {e}"),
                        );
                        *response.status_mut() = status;
                        return response;
                    }
                }
            }
            _ => {}
        }
    }
    if !check_post(&app, &session, &headers, &csrf) {
        return forbidden(&app);
    }
    let Some((file_name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return upload_refused(
            &app,
            &session,
            String::new(),
            "Choose a file to upload first.".to_owned(),
        );
    };
    // The name only says the kind; it is shown, never used as a path.
    let shown_name: String = Path::new(&file_name)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload")
        .chars()
        .take(120)
        .collect();
    let configured = app.config.directory.members_csv.clone();
    let wanted = kind_of(&configured).unwrap_or("csv");
    match kind_of(Path::new(&shown_name)) {
        Some(kind) if kind == wanted => {}
        _ => {
            return upload_refused(
                &app,
                &session,
                shown_name,
                format!(
                    "The directory file is {} (a {} file): upload a .{wanted} file, or point directory.file at a file of the other kind first.",
                    configured.display(),
                    wanted.to_uppercase()
                ),
            );
        }
    }
    let id = auth::random_token();
    let path = upload_path(&configured, &id, wanted);
    if let Err(e) = tokio::fs::write(&path, &bytes).await {
        tracing::error!(path = %path.display(), "cannot write an uploaded directory: {e}");
        return upload_refused(
            &app,
            &session,
            shown_name,
            format!(
                "The server could not store the file beside {}: {e}",
                configured.display()
            ),
        );
    }
    let sheet = app.config.directory.sheet().map(str::to_owned);
    let region = app.config.directory.default_region;
    let checked = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || Directory::load_sheet(&path, sheet.as_deref(), region))
            .await
    };
    let directory = match checked {
        Ok(Ok(directory)) => directory,
        Ok(Err(e)) => {
            super::remove_quietly(&path);
            let why = e
                .to_string()
                .replace(&path.display().to_string(), &shown_name);
            return upload_refused(&app, &session, shown_name, why);
        }
        Err(e) => {
            super::remove_quietly(&path);
            return upload_refused(&app, &session, shown_name, format!("The check failed: {e}"));
        }
    };
    let active = directory.active_members().count();
    let refusal = (active == 0).then(|| {
        "The file has no active member that could be read, so it cannot replace the directory."
            .to_owned()
    });
    let check = UploadCheck {
        file_name: shown_name.clone(),
        members: directory.len(),
        inactive: directory.len() - active,
        rejected: reject_rows(directory.rejected()),
        token: if refusal.is_none() {
            id.clone()
        } else {
            String::new()
        },
        refusal,
    };
    tracing::info!(
        members = check.members,
        rejected_rows = check.rejected.len(),
        accepted = check.refusal.is_none(),
        "dashboard: directory upload checked"
    );
    if check.refusal.is_some() {
        super::remove_quietly(&path);
        return render_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &directory_page(&app, &session, None, Some(check)),
        );
    }
    app.dashboard.keep_upload(
        id,
        PendingUpload {
            path,
            file_name: shown_name,
            members: directory.len(),
        },
    );
    render(&directory_page(&app, &session, None, Some(check)))
}

#[derive(Debug, Deserialize)]
pub(super) struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    upload: String,
}

/// Puts `upload` in place of `target` (a rename: all or nothing), keeping
/// the old file as `<target>.previous`.
fn replace_file(upload: &Path, target: &Path) -> std::io::Result<Option<PathBuf>> {
    let previous = target.with_file_name(format!(
        "{}.previous",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("directory")
    ));
    let kept = if target.exists() {
        std::fs::copy(target, &previous)?;
        Some(previous)
    } else {
        None
    };
    std::fs::rename(upload, target)?;
    Ok(kept)
}

pub(super) async fn confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    if !check_post(&app, &session, &headers, &form.csrf) {
        return forbidden(&app);
    }
    let Some(upload) = app.dashboard.take_upload(&form.upload) else {
        return upload_refused(
            &app,
            &session,
            String::new(),
            "That upload is no longer waiting for a confirm (another was uploaded since, or the server restarted). Upload the file again.".to_owned(),
        );
    };
    let target = app.config.directory.members_csv.clone();
    let replaced = {
        let (from, to) = (upload.path.clone(), target.clone());
        tokio::task::spawn_blocking(move || replace_file(&from, &to)).await
    };
    let previous = match replaced {
        Ok(Ok(previous)) => previous,
        Ok(Err(e)) => {
            super::remove_quietly(&upload.path);
            tracing::error!(file = %target.display(), "cannot replace the directory file: {e}");
            return upload_refused(
                &app,
                &session,
                upload.file_name,
                format!(
                    "The directory file could not be replaced ({e}); the directory in use was kept."
                ),
            );
        }
        Err(e) => {
            super::remove_quietly(&upload.path);
            return upload_refused(
                &app,
                &session,
                upload.file_name,
                format!("The replacement failed: {e}"),
            );
        }
    };
    match app.reload_directory().await {
        Ok(_) => {
            tracing::info!(
                members = upload.members,
                file = %target.display(),
                "dashboard: directory replaced by an upload"
            );
            app.dashboard.set_failure(None);
            see_other("/dashboard/directory?notice=replaced")
        }
        Err(e) => {
            // Checked a moment ago, yet it failed (the synonyms, say): put
            // the old file back so that a restart loads what is in use.
            if let Some(previous) = previous
                && let Err(restore) = std::fs::rename(&previous, &target)
            {
                tracing::error!("cannot put the previous directory file back: {restore}");
            }
            let why =
                format!("{e}; the previous file was put back and the directory in use was kept");
            app.dashboard.set_failure(Some(why.clone()));
            upload_refused(&app, &session, upload.file_name, why)
        }
    }
}

// --------------------------------------------------------------- sessions

/// The opaque reference of a phone in page links: no phone in any URL.
fn reference(app: &AppState, phone: &PhoneNumber) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(app.dashboard.link_key.as_bytes()) else {
        return String::new();
    };
    mac.update(phone.e164().as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The live session a reference names.
async fn session_by_reference(app: &AppState, wanted: &str) -> Option<Session> {
    let mut found = None;
    app.sessions
        .each_live_session(None, 500, |s| {
            if reference(app, &s.phone) == wanted {
                found = Some(s.phone);
            }
            found.is_none()
        })
        .await
        .ok()?;
    app.sessions.get(&found?).await.ok().flatten()
}

struct SessionRow {
    masked: String,
    name: String,
    messages: u64,
    searches: u64,
    last: String,
    reference: String,
}

struct LookupResult {
    masked: String,
    messages: String,
    searches: String,
    reference: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/sessions.html")]
struct SessionsPage {
    chrome: Chrome,
    total: u64,
    rows: Vec<SessionRow>,
    page: usize,
    previous: Option<usize>,
    next: Option<usize>,
    lookup: Option<LookupResult>,
}

async fn sessions_page(
    app: &AppState,
    session: &SignedIn,
    notice: Option<&str>,
    page: usize,
    lookup: Option<LookupResult>,
) -> Result<SessionsPage, String> {
    let skip = page.saturating_mul(PAGE_SIZE);
    let listed = app
        .sessions
        .list(None, skip.saturating_add(PAGE_SIZE + 1))
        .await
        .map_err(|e| e.to_string())?;
    let more = listed.len() > skip + PAGE_SIZE;
    let rows = listed
        .iter()
        .skip(skip)
        .take(PAGE_SIZE)
        .map(|s| SessionRow {
            masked: s.phone.masked(),
            name: s.member_name.clone(),
            messages: s.message_count,
            searches: s.search_count,
            last: time_of(s.last_activity_ms),
            reference: reference(app, &s.phone),
        })
        .collect();
    Ok(SessionsPage {
        chrome: Chrome::new(app, Some(session), "sessions").with_notice(notice),
        total: app.sessions.stats().stored_sessions,
        rows,
        page: page + 1,
        previous: page.checked_sub(1),
        next: more.then_some(page + 1),
        lookup,
    })
}

fn storage_failure(app: &AppState, e: &str) -> Response {
    tracing::error!("dashboard: cannot read sessions: {e}");
    render_with(
        StatusCode::INTERNAL_SERVER_ERROR,
        &MessagePage {
            chrome: Chrome::new(app, None, ""),
            title: "Storage error".to_owned(),
            message: format!("The sessions could not be read: {e}"),
        },
    )
}

pub(super) async fn sessions(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    let page = query.page.unwrap_or(0).min(100_000);
    match sessions_page(&app, &session, query.notice.as_deref(), page, None).await {
        Ok(page) => render(&page),
        Err(e) => storage_failure(&app, &e),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct LookupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    phone: String,
}

/// Looks up a phone's limits (a POST, so that the phone is in no URL).
pub(super) async fn lookup(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LookupForm>,
) -> Response {
    let Some(session) = require(&app, &headers) else {
        return to_login();
    };
    if !check_post(&app, &session, &headers, &form.csrf) {
        return forbidden(&app);
    }
    let result = match PhoneNumber::parse(form.phone.trim(), app.config.directory.default_region) {
        Ok(phone) => match app.sessions.phone_state(&phone).await {
            Err(e) => LookupResult {
                masked: phone.masked(),
                messages: String::new(),
                searches: String::new(),
                reference: None,
                error: Some(format!("The limits could not be read: {e}")),
            },
            Ok(state) => {
                let limits = app.limits.view_at(&state.limits, state.now_ms);
                let left = |r: crate::limits::Remaining| {
                    let mut text = format!("{} of {} left this hour", r.remaining, r.limit);
                    if r.remaining == 0 {
                        text.push_str(&format!(
                            ", one more in {} min",
                            r.next_in_secs.div_ceil(60)
                        ));
                    }
                    text
                };
                let live = app.sessions.get(&phone).await.ok().flatten().is_some();
                LookupResult {
                    masked: phone.masked(),
                    messages: left(limits.messages),
                    searches: left(limits.searches),
                    reference: live.then(|| reference(&app, &phone)),
                    error: None,
                }
            }
        },
        Err(e) => LookupResult {
            masked: String::new(),
            messages: String::new(),
            searches: String::new(),
            reference: None,
            error: Some(format!("That is not a phone number: {e}")),
        },
    };
    match sessions_page(&app, &session, None, 0, Some(result)).await {
        Ok(page) => render(&page),
        Err(e) => storage_failure(&app, &e),
    }
}

struct HistoryRow {
    time: String,
    query: String,
    intent: &'static str,
    results: u32,
}

#[derive(Template)]
#[template(path = "dashboard/session.html")]
struct SessionPage {
    chrome: Chrome,
    masked: String,
    name: String,
    messages: u64,
    searches: u64,
    created: String,
    last: String,
    expires: String,
    history: Vec<HistoryRow>,
    reference: String,
}

pub(super) async fn session(
    State(app): State<AppState>,
    headers: HeaderMap,
    UrlPath(wanted): UrlPath<String>,
) -> Response {
    let Some(signed_in) = require(&app, &headers) else {
        return to_login();
    };
    let Some(found) = session_by_reference(&app, &wanted).await else {
        return render_with(
            StatusCode::NOT_FOUND,
            &MessagePage {
                chrome: Chrome::new(&app, Some(&signed_in), "sessions"),
                title: "No such session".to_owned(),
                message: "That session has ended or was deleted.".to_owned(),
            },
        );
    };
    let history = found
        .history
        .iter()
        .rev()
        .map(|e| HistoryRow {
            time: time_of(e.timestamp_ms),
            query: e.query.clone(),
            intent: e.intent.as_str(),
            results: e.result_count,
        })
        .collect();
    render(&SessionPage {
        chrome: Chrome::new(&app, Some(&signed_in), "sessions"),
        masked: found.phone.masked(),
        name: found.member_name.clone(),
        messages: found.message_count,
        searches: found.search_count,
        created: time_of(found.created_at_ms),
        last: time_of(found.last_activity_ms),
        expires: time_of(found.expires_at_ms),
        history,
        reference: wanted,
    })
}

pub(super) async fn delete_session(
    State(app): State<AppState>,
    headers: HeaderMap,
    UrlPath(wanted): UrlPath<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(signed_in) = require(&app, &headers) else {
        return to_login();
    };
    if !check_post(&app, &signed_in, &headers, &form.csrf) {
        return forbidden(&app);
    }
    let Some(found) = session_by_reference(&app, &wanted).await else {
        return see_other("/dashboard/sessions");
    };
    match app.sessions.delete(&found.phone).await {
        Ok(_) => {
            tracing::info!(phone = %found.phone.masked(), "session deleted from the dashboard");
            see_other("/dashboard/sessions?notice=deleted")
        }
        Err(e) => storage_failure(&app, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_message_is_the_term_and_a_long_one_its_longest_word() {
        assert_eq!(synonym_term("Plumber?").as_deref(), Some("plumber"));
        assert_eq!(
            synonym_term("looking for a carpenter in pune").as_deref(),
            Some("carpenter")
        );
        assert_eq!(synonym_term("### ###"), None);
    }

    #[test]
    fn times_read_in_utc() {
        assert_eq!(time_of(0), "1970-01-01 00:00 UTC");
    }
}
