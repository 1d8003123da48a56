//! `POST /whatsapp/webhook`: one inbound WhatsApp message, top to bottom.
//!
//! [`whatsapp_webhook`] reads as the flow in the crate docs: verify, parse,
//! honour opt-outs, check membership, understand, answer. Every step is a
//! call; every failure is a typed [`Rejected`] that becomes a clear HTTP
//! answer. Twilio does not honour 429, so refusals of members and strangers
//! are 200s with a polite message (or silence).
//!
//! Opt-outs come before membership and limits: anyone may send STOP, and a
//! phone that opted out gets nothing (an empty `<Response/>`) but the answer
//! to START. Messages that are not text are read here too: a button's text
//! as text, a shared location as a search of the city or area its address
//! names ([`Assistant::understand_place`]), and a photo or voice note gets a
//! reply saying what to type instead.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::assistant::{Assistant, Understanding};
use crate::conversation::{Entities, Entry, Intent, Session};
use crate::directory::{Directory, Member};
use crate::http::AppState;
use crate::http::dashboard::figures::Asked;
use crate::limits::{self, Verdict};
use crate::phone::PhoneNumber;
use crate::store::{StoreError, Turn};
use crate::twilio::outbox::Handoff;
use crate::twilio::{self, Content, FormError, Inbound, Location, Reply};

/// How a webhook request ended: logged, counted by `/metrics` (one label
/// each) and shown on the dashboard. [`Outcome::ALL`] is the one list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    /// Not ready by `twilio.reply_deadline`: `<Response/>` now, the reply
    /// later through the Messages API.
    AnsweredLate,
    Duplicate,
    RefusedStranger,
    SilencedStranger,
    LimitedMessages,
    LimitedSearches,
    /// STOP (or the like) acknowledged; the phone is now opted out.
    OptedOut,
    /// START (or UNSTOP) from a phone that had opted out, acknowledged.
    OptedIn,
    /// Any other message from a phone that opted out: no reply.
    SilencedOptedOut,
    /// Not processed: [`Rejected::BadRequest`].
    BadRequest,
    /// Not processed: [`Rejected::BadSignature`].
    BadSignature,
    /// Not processed: [`Rejected::Storage`].
    StorageError,
}

impl Outcome {
    /// Every outcome, in the order the dashboard lists them. `/metrics`
    /// registers each at zero, so every label appears before it happens.
    pub const ALL: [Outcome; 13] = [
        Outcome::Answered,
        Outcome::AnsweredLate,
        Outcome::Duplicate,
        Outcome::RefusedStranger,
        Outcome::SilencedStranger,
        Outcome::LimitedMessages,
        Outcome::LimitedSearches,
        Outcome::OptedOut,
        Outcome::OptedIn,
        Outcome::SilencedOptedOut,
        Outcome::BadRequest,
        Outcome::BadSignature,
        Outcome::StorageError,
    ];

    /// The label in logs, `/metrics` and the dashboard's figures.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::AnsweredLate => "answered-late",
            Outcome::Duplicate => "duplicate",
            Outcome::RefusedStranger => "refused-stranger",
            Outcome::SilencedStranger => "silenced-stranger",
            Outcome::LimitedMessages => "limited-messages",
            Outcome::LimitedSearches => "limited-searches",
            Outcome::OptedOut => "opted-out",
            Outcome::OptedIn => "opted-in",
            Outcome::SilencedOptedOut => "silenced-opted-out",
            Outcome::BadRequest => "bad-request",
            Outcome::BadSignature => "bad-signature",
            Outcome::StorageError => "storage-error",
        }
    }

    /// How the dashboard names it, as organisers say it.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Answered => "Answered",
            Outcome::AnsweredLate => "Answered late (through the Messages API)",
            Outcome::Duplicate => "Duplicate deliveries",
            Outcome::RefusedStranger => "Strangers (told to ask the organisers)",
            Outcome::SilencedStranger => "Strangers (not answered again)",
            Outcome::LimitedMessages => "Limited: too many messages",
            Outcome::LimitedSearches => "Limited: too many searches",
            Outcome::OptedOut => "Opted out (STOP)",
            Outcome::OptedIn => "Opted back in (START)",
            Outcome::SilencedOptedOut => "From opted-out phones (not answered)",
            Outcome::BadRequest => "Errors: malformed requests",
            Outcome::BadSignature => "Errors: bad signatures",
            Outcome::StorageError => "Errors: storage",
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
    /// A storage fault is a 503 (Twilio retries it, and so may anyone
    /// else: `Retry-After`); only a stored value this version cannot read
    /// is a 500, since retrying cannot help it.
    fn status(&self) -> StatusCode {
        match self {
            Rejected::BadRequest(_) => StatusCode::BAD_REQUEST,
            Rejected::BadSignature => StatusCode::FORBIDDEN,
            Rejected::Storage(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            Rejected::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn outcome(&self) -> Outcome {
        match self {
            Rejected::BadRequest(_) => Outcome::BadRequest,
            Rejected::BadSignature => Outcome::BadSignature,
            Rejected::Storage(_) => Outcome::StorageError,
        }
    }
}

/// What a 503 asks a client to wait, in seconds: about what reopening the
/// store after a storage failure takes.
const RETRY_AFTER_SECS: &str = "5";

/// A processed message: how it ended, from whom, the TwiML to send, and
/// what it asked (for the dashboard's figures).
struct Handled {
    outcome: Outcome,
    phone: PhoneNumber,
    twiml: String,
    asked: Option<Asked>,
}

/// The handler: runs the flow, logs one line, renders TwiML or the error.
pub async fn whatsapp_webhook(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = match &app.outbox {
        None => handle_message(&app, &uri, &headers, &body, None).await,
        Some(_) => handle_by_deadline(&app, uri, headers, body.clone()).await,
    };
    let latency = started.elapsed();
    let latency_us = latency.as_micros();
    let (outcome, asked) = match &result {
        Ok(handled) => (handled.outcome, handled.asked.as_ref()),
        Err(rejected) => (rejected.outcome(), None),
    };
    app.metrics.observe_webhook(outcome, latency);
    // In memory only; written to the store in the background.
    app.figures
        .observe(outcome.as_str(), result.is_ok(), latency, asked);
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
                    outcome = rejected.outcome().as_str(),
                    latency_us,
                    "webhook rejected: {rejected}"
                ),
            }
            let status = rejected.status();
            let mut response = (status, rejected.to_string()).into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from_static(RETRY_AFTER_SECS),
                );
            }
            response
        }
    }
}

/// The flow for one message. With `late`, a reply that is ready only after
/// the webhook gave up goes to the outbox instead.
async fn handle_message(
    app: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    late: Option<&Handoff>,
) -> Result<Handled, Rejected> {
    let fields = twilio::parse_form(body)?;
    verify_signature(app, uri, headers, &fields)?;
    let inbound = Inbound::from_form(&fields, app.config.directory.default_region)?;
    let mut turn = app.sessions.turn(inbound.from).await?;
    if let Some(twiml) = remembered_reply(&turn, &inbound)? {
        return Ok(Handled::new(Outcome::Duplicate, &inbound, twiml));
    }
    let assistant = app.assistant();
    if let Some((outcome, twiml)) = honour_opt_out(app, &assistant, &mut turn, &inbound).await? {
        return Ok(Handled::new(outcome, &inbound, twiml));
    }
    let Some(member) = assistant.directory().active_member(&inbound.from) else {
        let (outcome, reply) = refuse_stranger(app, &inbound.from);
        return Ok(Handled::new(outcome, &inbound, reply.to_twiml()));
    };
    // A member's message ends in a write: refuse it before spending quota
    // when storage is out of service.
    app.sessions.writable()?;
    // The turn's time: with a shared store, Redis's clock, which every
    // instance's limits then agree on.
    let now_ns = app.limits.at(turn.now_ms());
    let messages = &app.limits.messages;
    if let Verdict::Refused { wait, notify } =
        turn.check(|l| &mut l.messages, |bucket| messages.check(bucket, now_ns))
    {
        turn.commit().await?;
        let reply = limit_reply(messages.per_hour(), "messages", wait, notify);
        return Ok(Handled::new(
            Outcome::LimitedMessages,
            &inbound,
            reply.to_twiml(),
        ));
    }
    let mut session = turn.session_for(member);
    let reading = read_message(app, &assistant, &inbound, &session, member).await;
    let searches = &app.limits.searches;
    if reading.runs_search()
        && let Verdict::Refused { wait, notify } =
            turn.check(|l| &mut l.searches, |bucket| searches.check(bucket, now_ns))
    {
        turn.commit().await?;
        let reply = limit_reply(searches.per_hour(), "searches", wait, notify);
        return Ok(Handled::new(
            Outcome::LimitedSearches,
            &inbound,
            reply.to_twiml(),
        ));
    }
    let (twiml, entry) = respond(app, &assistant, &reading, member).await;
    let asked = Asked::of(&entry);
    let twiml = queue_if_late(app, late, &inbound, &fields, twiml).await?;
    record_exchange(app, &mut session, entry, reading.runs_search());
    turn.record_exchange(session, sent(&inbound, &twiml));
    turn.commit().await?;
    Ok(Handled {
        asked,
        ..Handled::new(Outcome::Answered, &inbound, twiml)
    })
}

/// With `twilio.account_sid`: the flow runs on its own task, and at
/// `twilio.reply_deadline` the webhook answers `<Response/>` while the
/// reply goes out later through the outbox.
async fn handle_by_deadline(
    app: &AppState,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Handled, Rejected> {
    let phone = {
        let fields = twilio::parse_form(&body)?;
        Inbound::from_form(&fields, app.config.directory.default_region)?.from
    };
    let handoff = Arc::new(Handoff::default());
    let mut task = tokio::spawn({
        let app = app.clone();
        let handoff = Arc::clone(&handoff);
        async move {
            let result = handle_message(&app, &uri, &headers, &body, Some(&handoff)).await;
            // Replies other than answers (refusals, STOP) that came late.
            if let Ok(handled) = &result
                && handoff.claim_late()
                && let Err(e) = queue_reply(&app, &body, &handled.twiml).await
            {
                tracing::error!(phone = %handled.phone.masked(), "a late reply was lost: {e}");
            }
            result
        }
    });
    let joined = match tokio::time::timeout(app.config.twilio.reply_deadline, &mut task).await {
        Ok(joined) => joined,
        Err(_) if handoff.give_up() => {
            return Ok(Handled {
                outcome: Outcome::AnsweredLate,
                phone,
                twiml: Reply::silence().to_twiml(),
                asked: None,
            });
        }
        // Claimed in time a moment ago: it is being saved.
        Err(_) => task.await,
    };
    joined.unwrap_or_else(|e| Err(Rejected::Storage(StoreError::Task(e.to_string()))))
}

/// The reply itself, or (when the webhook already gave up on it) silence
/// to remember for the MessageSid, with the reply queued in the outbox.
async fn queue_if_late(
    app: &AppState,
    late: Option<&Handoff>,
    inbound: &Inbound,
    fields: &twilio::FormFields<'_>,
    twiml: String,
) -> Result<String, StoreError> {
    let Some(handoff) = late else {
        return Ok(twiml);
    };
    if !handoff.claim_late() {
        return Ok(twiml);
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_ref())
    };
    if let (Some(outbox), Some(sid)) = (&app.outbox, &inbound.message_sid) {
        outbox
            .enqueue(
                sid,
                field("From"),
                field("To"),
                twilio::twiml::parse_messages(&twiml),
            )
            .await
            .map_err(|e| StoreError::Flush(e.to_string()))?;
    }
    Ok(Reply::silence().to_twiml())
}

/// Queues `twiml` for the sender of the form in `body`.
async fn queue_reply(app: &AppState, body: &[u8], twiml: &str) -> Result<(), String> {
    let fields = twilio::parse_form(body).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_ref())
    };
    let (Some(outbox), sid) = (&app.outbox, field("MessageSid")) else {
        return Ok(());
    };
    if sid.is_empty() {
        return Ok(());
    }
    outbox
        .enqueue(
            sid,
            field("From"),
            field("To"),
            twilio::twiml::parse_messages(twiml),
        )
        .await
        .map_err(|e| e.to_string())
}

impl Handled {
    fn new(outcome: Outcome, inbound: &Inbound, twiml: String) -> Handled {
        Handled {
            outcome,
            phone: inbound.from,
            twiml,
            asked: None,
        }
    }
}

/// The reply already sent to this phone for this MessageSid, when Twilio
/// delivers it again; never a reply that went to another phone.
fn remembered_reply(turn: &Turn<'_>, inbound: &Inbound) -> Result<Option<String>, StoreError> {
    match &inbound.message_sid {
        Some(sid) => turn.remembered(sid),
        None => Ok(None),
    }
}

/// What the message asks of the assistant.
enum Reading {
    /// Text, a button's text or a place, as the assistant understood it;
    /// `query` is what the session records it as.
    Understood {
        query: String,
        understanding: Box<Understanding>,
    },
    /// Something the assistant cannot read (a photo, a place outside the
    /// directory): `reply` says what to send instead.
    Unreadable { query: String, reply: String },
}

impl Reading {
    fn runs_search(&self) -> bool {
        match self {
            Reading::Understood { understanding, .. } => understanding.runs_search(),
            Reading::Unreadable { .. } => false,
        }
    }
}

/// Reads the message in its conversation, whatever it carries: text by
/// the rules, and by the chat model when they are unsure and one is
/// configured (bounded by `llm.timeout`).
async fn read_message(
    app: &AppState,
    assistant: &Assistant,
    inbound: &Inbound,
    session: &Session,
    member: &Member,
) -> Reading {
    let reading = match inbound.content() {
        Content::Text(text) => Reading::Understood {
            query: text.to_owned(),
            understanding: Box::new(
                app.models
                    .understand(assistant, text, session, member)
                    .await,
            ),
        },
        Content::Location(location) => read_place(assistant, location, session, member),
        Content::Media(media_type) => Reading::Unreadable {
            query: format!("({})", media_kind(media_type)),
            reply: format!(
                "I can only read text, so I couldn't read that {}. Please type what you're looking for, for example “{}”.",
                media_kind(media_type),
                example_search(assistant.directory())
            ),
        },
    };
    if let Reading::Understood {
        query,
        understanding,
    } = &reading
    {
        tracing::debug!(intent = understanding.intent.as_str(), body = %query, "understood");
    }
    reading
}

/// A shared location: a search of the city or area its address (else its
/// name) names, or a question asking for the city.
fn read_place(
    assistant: &Assistant,
    location: &Location,
    session: &Session,
    member: &Member,
) -> Reading {
    let named = [&location.address, &location.label]
        .into_iter()
        .flatten()
        .find_map(|place| Some((place, assistant.understand_place(place, session, member)?)));
    match named {
        Some((place, understanding)) => Reading::Understood {
            query: format!("📍 {place}"),
            understanding: Box::new(understanding),
        },
        None => Reading::Unreadable {
            query: "📍 (a location)".to_owned(),
            reply: format!(
                "I couldn't match that location to a city or area of the directory. Which city should I search in? For example “{}”.",
                example_search(assistant.directory())
            ),
        },
    }
}

/// What a WhatsApp attachment is, from its MIME type, as a member says it.
fn media_kind(media_type: Option<&str>) -> &'static str {
    let media_type = media_type.unwrap_or_default().to_ascii_lowercase();
    match media_type.split('/').next().unwrap_or_default() {
        // WhatsApp sends stickers as WebP images.
        "image" if media_type == "image/webp" => "sticker",
        "image" => "photo",
        "audio" => "voice note",
        "video" => "video",
        "text" | "application" => "document",
        _ => "attachment",
    }
}

/// A search that finds someone in this directory, to show what to type:
/// the profession and city of its first active member that has both.
fn example_search(directory: &Directory) -> String {
    directory
        .active_members()
        .find(|m| !m.profession.trim().is_empty() && !m.city.trim().is_empty())
        .map_or_else(
            || "doctors in Pune".to_owned(),
            |m| {
                let mut profession = m.profession.trim().to_lowercase();
                if !profession.ends_with('s') {
                    profession.push('s');
                }
                format!("{profession} in {}", m.city.trim())
            },
        )
}

/// The reply's TwiML and the session entry of the exchange: the closest
/// members by meaning when the rules found no one and an embeddings server
/// is configured (bounded by `embeddings.timeout`), else the rules' answer.
async fn respond(
    app: &AppState,
    assistant: &Assistant,
    reading: &Reading,
    member: &Member,
) -> (String, Entry) {
    let now_ms = app.clock.now_ms();
    match reading {
        Reading::Understood {
            query,
            understanding,
        } => {
            let (answer, entry) = match app.models.closest(assistant, understanding, query).await {
                Some((closest, answer)) => {
                    let entry = answer.entry(query, now_ms, &closest);
                    (answer, entry)
                }
                None => {
                    let answer = assistant.answer(understanding, member);
                    let entry = answer.entry(query, now_ms, understanding);
                    (answer, entry)
                }
            };
            (Reply::text(&answer.text).to_twiml(), entry)
        }
        Reading::Unreadable { query, reply } => {
            let entry = Entry {
                query: query.clone(),
                timestamp_ms: now_ms,
                intent: Intent::Help,
                entities: Entities::default(),
                result_count: 0,
                result_ids: Vec::new(),
                page: 0,
            };
            (Reply::text(reply).to_twiml(), entry)
        }
    }
}

/// Appends the exchange to the session and bumps its counts and TTL.
fn record_exchange(app: &AppState, session: &mut Session, entry: Entry, searched: bool) {
    let sessions = &app.sessions;
    session.record(entry, searched, sessions.max_history(), sessions.ttl_ms());
}

/// The MessageSid and the reply to remember for it, if Twilio sent one.
fn sent<'a>(inbound: &'a Inbound, twiml: &'a str) -> Option<(&'a str, &'a str)> {
    inbound.message_sid.as_deref().map(|sid| (sid, twiml))
}

/// A message that opts out or back in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptKeyword {
    Stop,
    Start,
}

/// The keyword the whole message is, in any case, with surrounding spaces
/// and punctuation ignored ("Stop.", " STOP!"); not a word within a message.
fn opt_keyword(text: &str) -> Option<OptKeyword> {
    let word = text
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_uppercase();
    match word.as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Some(OptKeyword::Stop),
        "START" | "UNSTOP" => Some(OptKeyword::Start),
        _ => None,
    }
}

/// STOP from anyone opts out; while opted out, only START (or UNSTOP) is
/// answered, and it opts back in. `None` when the message goes on: START
/// from a phone that had not opted out is an ordinary message (help).
async fn honour_opt_out(
    app: &AppState,
    assistant: &Assistant,
    turn: &mut Turn<'_>,
    inbound: &Inbound,
) -> Result<Option<(Outcome, String)>, StoreError> {
    let keyword = match inbound.content() {
        Content::Text(text) => opt_keyword(text),
        _ => None,
    };
    let opted_out = turn.opted_out_since().is_some();
    let org = &app.config.directory.org_name;
    match (opted_out, keyword) {
        (false, Some(OptKeyword::Stop)) => {
            let twiml = Reply::text(format!(
                "You won't get messages from {org} any more. Send START to resume."
            ))
            .to_twiml();
            turn.opt_out(sent(inbound, &twiml));
            turn.commit().await?;
            Ok(Some((Outcome::OptedOut, twiml)))
        }
        (true, Some(OptKeyword::Start)) => {
            let hint = if assistant.directory().active_member(&inbound.from).is_some() {
                format!(
                    "Send a search such as “{}”, or HELP to see what you can ask.",
                    example_search(assistant.directory())
                )
            } else {
                "This number isn't in the member directory yet: ask the organisers to add it."
                    .to_owned()
            };
            let twiml = Reply::text(format!(
                "Welcome back! You'll get replies from {org} again.\n{hint}"
            ))
            .to_twiml();
            turn.opt_in(sent(inbound, &twiml));
            turn.commit().await?;
            Ok(Some((Outcome::OptedIn, twiml)))
        }
        (true, _) => Ok(Some((
            Outcome::SilencedOptedOut,
            Reply::silence().to_twiml(),
        ))),
        (false, _) => Ok(None),
    }
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
