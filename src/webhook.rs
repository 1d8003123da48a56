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

use crate::phone::PhoneNumber;
use crate::server::AppState;
use crate::twilio::{self, FormError, Inbound, Reply};

/// How a webhook request ended; logged and (later) counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    RefusedStranger,
    SilencedStranger,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::RefusedStranger => "refused-stranger",
            Outcome::SilencedStranger => "silenced-stranger",
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
}

impl Rejected {
    fn status(&self) -> StatusCode {
        match self {
            Rejected::BadRequest(_) => StatusCode::BAD_REQUEST,
            Rejected::BadSignature => StatusCode::FORBIDDEN,
        }
    }

    fn as_str(&self) -> &'static str {
        match self {
            Rejected::BadRequest(_) => "bad-request",
            Rejected::BadSignature => "bad-signature",
        }
    }
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
    let latency_us = started.elapsed().as_micros();
    match result {
        Ok((outcome, phone, reply)) => {
            tracing::info!(phone = %phone.masked(), outcome = outcome.as_str(), latency_us, "webhook");
            twiml_response(&reply)
        }
        Err(rejected) => {
            let phone = masked_sender(&body, &app);
            tracing::warn!(phone = %phone, outcome = rejected.as_str(), latency_us, "webhook rejected: {rejected}");
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
) -> Result<(Outcome, PhoneNumber, Reply), Rejected> {
    let fields = twilio::parse_form(body)?;
    verify_signature(app, uri, headers, &fields)?;
    let inbound = Inbound::from_form(&fields, app.config.directory.default_region)?;
    let assistant = app.assistant();
    let Some(member) = assistant.directory().active_member(&inbound.from) else {
        let (outcome, reply) = refuse_stranger(app, &inbound.from);
        return Ok((outcome, inbound.from, reply));
    };
    let understanding = assistant.understand(&inbound.body);
    tracing::debug!(intent = understanding.intent.as_str(), body = %inbound.body, "understood");
    let answer = assistant.answer(&understanding, member);
    Ok((Outcome::Answered, inbound.from, Reply::text(answer.text)))
}

/// Checks `X-Twilio-Signature` unless signatures are off (`--dev`).
fn verify_signature(
    app: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    fields: &[(String, String)],
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
    if app.strangers.may_reply(phone) {
        let text = format!(
            "This number isn't registered with {}. If you are a member, please ask the organisers to add this WhatsApp number to the member directory.",
            app.config.directory.org_name
        );
        (Outcome::RefusedStranger, Reply::text(text))
    } else {
        (Outcome::SilencedStranger, Reply::silence())
    }
}

/// The sender for a log line about a rejected request, masked, or `-`.
fn masked_sender(body: &[u8], app: &AppState) -> String {
    twilio::parse_form(body)
        .ok()
        .and_then(|fields| Inbound::from_form(&fields, app.config.directory.default_region).ok())
        .map_or_else(|| "-".to_owned(), |inbound| inbound.from.masked())
}

fn twiml_response(reply: &Reply) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        reply.to_twiml(),
    )
        .into_response()
}
