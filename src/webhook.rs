//! `POST /whatsapp/webhook`: one inbound WhatsApp message, top to bottom.
//!
//! [`whatsapp_webhook`] reads as the flow in the crate docs: verify, parse,
//! check membership, understand, answer. Every step is a call; every
//! failure is a typed [`Rejected`] that becomes a clear HTTP answer. Twilio
//! does not honour 429, so refusals of members and strangers are 200s with
//! a polite message (or silence).

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::assistant::{Answer, Understanding};
use crate::limits::{self, Verdict};
use crate::phone::PhoneNumber;
use crate::server::AppState;
use crate::session::{Session, StoreError};
use crate::twilio::{self, FormError, Inbound, Reply};

/// How a webhook request ended; logged and (later) counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Duplicate,
    RefusedStranger,
    SilencedStranger,
    LimitedMessages,
    LimitedSearches,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Duplicate => "duplicate",
            Outcome::RefusedStranger => "refused-stranger",
            Outcome::SilencedStranger => "silenced-stranger",
            Outcome::LimitedMessages => "limited-messages",
            Outcome::LimitedSearches => "limited-searches",
        }
    }
}

/// Why a request was not processed.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error("{0}")]
    BadRequest(#[from] FormError),
    #[error("invalid Twilio signature")]
    BadSignature,
    /// Twilio retries on a 5xx; the duplicate check makes the retry safe.
    #[error("temporary storage error; please retry")]
    Storage(#[from] StoreError),
}

impl Rejected {
    fn status(&self) -> StatusCode {
        match self {
            Rejected::BadRequest(_) => StatusCode::BAD_REQUEST,
            Rejected::BadSignature => StatusCode::FORBIDDEN,
            Rejected::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_str(&self) -> &'static str {
        match self {
            Rejected::BadRequest(_) => "bad-request",
            Rejected::BadSignature => "bad-signature",
            Rejected::Storage(_) => "storage-error",
        }
    }
}

/// A processed message: how it ended, from whom, and the TwiML to send.
struct Handled {
    outcome: Outcome,
    phone: PhoneNumber,
    twiml: String,
}

/// The handler: runs the flow, logs one line, renders TwiML or the error.
pub async fn whatsapp_webhook(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = handle_message(&app, &uri, &headers, &body).await;
    let latency = started.elapsed();
    let latency_us = latency.as_micros();
    let outcome = match &result {
        Ok(handled) => handled.outcome.as_str(),
        Err(rejected) => rejected.as_str(),
    };
    app.metrics.observe_webhook(outcome, latency);
    match result {
        Ok(handled) => {
            tracing::info!(
                phone = %handled.phone.masked(),
                outcome = handled.outcome.as_str(),
                latency_us,
                "webhook"
            );
            twiml_response(handled.twiml)
        }
        Err(rejected) => {
            let phone = masked_sender(&body, &app);
            match &rejected {
                Rejected::Storage(e) => {
                    tracing::error!(phone = %phone, latency_us, "webhook failed: {e}")
                }
                _ => tracing::warn!(
                    phone = %phone,
                    outcome = rejected.as_str(),
                    latency_us,
                    "webhook rejected: {rejected}"
                ),
            }
            (rejected.status(), rejected.to_string()).into_response()
        }
    }
}

/// The flow for one message.
async fn handle_message(
    app: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Handled, Rejected> {
    let fields = twilio::parse_form(body)?;
    verify_signature(app, uri, headers, &fields)?;
    let inbound = Inbound::from_form(&fields, app.config.directory.default_region)?;
    let _turn = app.sessions.lock(inbound.from).await;
    let stored = app.sessions.load_in_turn(&inbound.from).await?;
    if let Some(twiml) = remembered_reply(app, &inbound, stored.as_deref())? {
        return Ok(Handled::new(Outcome::Duplicate, &inbound, twiml));
    }
    let assistant = app.assistant();
    let Some(member) = assistant.directory().active_member(&inbound.from) else {
        let (outcome, reply) = refuse_stranger(app, &inbound.from);
        return Ok(Handled::new(outcome, &inbound, reply.to_twiml()));
    };
    if let Verdict::Refused { wait, notify } = app.limits.messages.check(&inbound.from) {
        let reply = limit_reply(app.limits.messages.per_hour(), "messages", wait, notify);
        return Ok(Handled::new(
            Outcome::LimitedMessages,
            &inbound,
            reply.to_twiml(),
        ));
    }
    let mut session = app.sessions.session_for(member, stored.as_deref());
    let understanding = assistant.understand(&inbound.body, &session, member);
    tracing::debug!(intent = understanding.intent.as_str(), body = %inbound.body, "understood");
    if understanding.runs_search()
        && let Verdict::Refused { wait, notify } = app.limits.searches.check(&inbound.from)
    {
        let reply = limit_reply(app.limits.searches.per_hour(), "searches", wait, notify);
        return Ok(Handled::new(
            Outcome::LimitedSearches,
            &inbound,
            reply.to_twiml(),
        ));
    }
    let answer = assistant.answer(&understanding, member);
    let twiml = Reply::text(&answer.text).to_twiml();
    record_exchange(app, &mut session, &inbound, &understanding, &answer);
    let sent = inbound
        .message_sid
        .as_deref()
        .map(|sid| (sid, twiml.as_str()));
    app.sessions.save(session, stored.as_deref(), sent).await?;
    Ok(Handled::new(Outcome::Answered, &inbound, twiml))
}

impl Handled {
    fn new(outcome: Outcome, inbound: &Inbound, twiml: String) -> Handled {
        Handled {
            outcome,
            phone: inbound.from,
            twiml,
        }
    }
}

/// The reply already sent for this MessageSid, when Twilio delivers it again.
fn remembered_reply(
    app: &AppState,
    inbound: &Inbound,
    stored: Option<&Session>,
) -> Result<Option<String>, StoreError> {
    match &inbound.message_sid {
        Some(sid) => app.sessions.seen(sid, stored),
        None => Ok(None),
    }
}

/// Appends the exchange to the session and bumps its counts and TTL.
fn record_exchange(
    app: &AppState,
    session: &mut Session,
    inbound: &Inbound,
    understanding: &Understanding,
    answer: &Answer,
) {
    let entry = answer.entry(&inbound.body, app.clock.now_ms(), understanding);
    let sessions = &app.sessions;
    session.record(
        entry,
        understanding.runs_search(),
        sessions.max_history(),
        sessions.ttl_ms(),
    );
}

/// Checks `X-Twilio-Signature` unless signatures are off (`--dev`).
fn verify_signature(
    app: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    fields: &twilio::FormFields<'_>,
) -> Result<(), Rejected> {
    let Some(verifier) = &app.verifier else {
        return Ok(());
    };
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(Rejected::BadSignature)?;
    let url = signed_url(app.config.twilio.public_url(), uri, headers);
    if verifier.verify(&url, fields, signature) {
        Ok(())
    } else {
        Err(Rejected::BadSignature)
    }
}

/// The URL Twilio signed: the configured public URL, else the one rebuilt
/// from the forwarded scheme (or plain http) and `Host`, plus path and query.
pub fn signed_url(public_url: Option<&str>, uri: &Uri, headers: &HeaderMap) -> String {
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    if let Some(base) = public_url {
        return format!("{base}{path_and_query}");
    }
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    let scheme = header_text("x-forwarded-proto")
        .and_then(|p| p.split(',').next())
        .map(str::trim)
        .unwrap_or("http");
    let host = header_text(header::HOST.as_str()).unwrap_or("localhost");
    format!("{scheme}://{host}{path_and_query}")
}

/// The polite refusal for a stranger, once an hour; silence otherwise.
fn refuse_stranger(app: &AppState, phone: &PhoneNumber) -> (Outcome, Reply) {
    if app.limits.strangers.may_reply(phone) {
        let text = format!(
            "This number isn't registered with {}. If you are a member, please ask the organisers to add this WhatsApp number to the member directory.",
            app.config.directory.org_name
        );
        (Outcome::RefusedStranger, Reply::text(text))
    } else {
        (Outcome::SilencedStranger, Reply::silence())
    }
}

/// The kind refusal for a member over a limit; silence after the first.
fn limit_reply(per_hour: u32, what: &str, wait: std::time::Duration, notify: bool) -> Reply {
    if !notify {
        return Reply::silence();
    }
    let minutes = limits::minutes_to_wait(wait);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    Reply::text(format!(
        "You've reached the limit of {per_hour} {what} per hour. Please try again in {minutes} {unit}."
    ))
}

/// The sender for a log line about a rejected request, masked, or `-`.
fn masked_sender(body: &[u8], app: &AppState) -> String {
    twilio::parse_form(body)
        .ok()
        .and_then(|fields| Inbound::from_form(&fields, app.config.directory.default_region).ok())
        .map_or_else(|| "-".to_owned(), |inbound| inbound.from.masked())
}

fn twiml_response(twiml: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        twiml,
    )
        .into_response()
}
