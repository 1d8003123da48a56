//! Roster: a WhatsApp assistant for a member organisation, served through
//! Twilio, in one self-contained binary.
//!
//! A member writes "Find doctors in Bangalore" to the organisation's WhatsApp
//! number; Twilio POSTs the message to `/whatsapp/webhook`; Roster checks
//! that the sender is an active member, applies per-phone rate limits, loads
//! the sender's conversation session, understands the message, searches the
//! member directory, records the exchange and answers with TwiML. Follow-ups
//! ("more", "2", "contact", "what about Chennai?") use the session.
//!
//! # One inbound message
//!
//! ```text
//! POST /whatsapp/webhook ─▶ body limit, timeout                       (http)
//!   ├─ parse the form, keep every field             ─▶ 400            (twilio)
//!   ├─ verify X-Twilio-Signature                    ─▶ 403            (twilio::SignatureVerifier)
//!   ├─ From → PhoneNumber (E.164)                   ─▶ 400            (phone)
//!   ├─ turn = the phone's turn and record: one message per phone at a time (store::Turn; moka → sled)
//!   ├─ same MessageSid seen before                  ─▶ the stored reply (Turn::remembered)
//!   ├─ STOP / START, or the phone opted out         ─▶ acknowledgement, or silence (session opt-outs)
//!   ├─ sender must be an active member              ─▶ polite refusal, once an hour (directory, limits)
//!   ├─ messages limit                               ─▶ "try again in N minutes", then silence (limits)
//!   ├─ session = the live one, or a new one for the member (expired counts as absent)
//!   ├─ understand the message, using the session    (assistant; buttons as text, places, media)
//!   │    (and, only when the rules are unsure and [llm] is set, a chat model)   (models)
//!   ├─ searches limit, only if a search really runs (limits)
//!   ├─ answer: search, WhatsApp-formatted reply     (assistant)
//!   │    (a search that finds no one: closest matches by meaning, with [embeddings])
//!   ├─ turn.commit(): ONE record write              (durable before answering in strict mode)
//!   └─ render TwiML, split at 1,600 characters      ─▶ 200 text/xml   (twilio::twiml)
//! ```
//!
//! `http::webhook::whatsapp_webhook` is that list as code, one call per step.
//!
//! # State
//!
//! One sled database under `storage.data_dir`. Everything about a phone
//! is one versioned record in the `phones` tree (its session, rate-limit
//! buckets, opt-out and the replies to its last MessageSids), beside a
//! per-minute expiry index the sweeper scans; see [`store`] for the layout
//! and why it writes single keys in a crash-safe order rather than batches.
//! The dashboard's hourly figures, embedding vectors and the outbox of late
//! replies have trees of their own (`store::trees`). Every stored value starts
//! with a format-version byte ([`store::codec`]); data dirs from before
//! records are moved into them once, at open. The store owns its background
//! tasks (the group-commit flusher, the sweeper and the storage watcher),
//! which stop on shutdown, after which everything is flushed. A failed
//! write or flush, or a data dir deleted or replaced while serving, puts
//! storage out of service: writes get 503 at once, and once the disk takes
//! writes again the process exits for its supervisor to restart it
//! ([`store::health`]).
//!
//! With `storage.backend = "redis"` the phone records, and what the
//! dashboard counts, the vectors and the outbox, live in a Redis that
//! several instances share instead ([`store::shared`]): a turn is a lease
//! on the phone taken with the read, the commit is fenced by the record's
//! version, time is Redis's clock, and a directory that loads on one
//! instance is published to all (`http::directory_sync`).
//!
//! # Modules
//!
//! No import circle runs between these folders and files
//! (`python3 scripts/import-circles.py src` checks it).
//!
//! | module | owns |
//! | --- | --- |
//! | [`config`] | the [`config::Config`] type; loading `config.toml` + environment |
//! | [`http`] | [`http::AppState`], the router, middleware, the webhook (the flow above) and its outcomes, the admin API and its views, `/metrics`, connections, the dashboard |
//! | [`twilio`] | the wire protocol: signature, inbound form, TwiML, the Messages API outbox |
//! | [`phone`] | [`phone::PhoneNumber`]: parsing any writing into E.164; masking |
//! | [`directory`] | members, loading the CSV, lookup by phone, generated directories |
//! | [`conversation`] | what is stored about a conversation: [`conversation::Session`], [`conversation::Entry`], [`conversation::Intent`], [`conversation::Entities`], their stored version |
//! | [`assistant`] | understanding a message, searching, composing the reply |
//! | [`models`] | optional chat and embedding models over an OpenAI-compatible API, and their counters |
//! | [`store`] | **the only code that names sled** (and Redis): the phone records, turns, cache, group commit, sweeper, migration of older data dirs, export/import, `check-data`, opening the data dir and watching its health, and the trees kept for the dashboard, the vectors and the outbox; the shared Redis backend behind the same types |
//! | [`limits`] | rate limits on governor's GCRA; their state lives in the phone record |
//! | [`cli`] | the CLI's side: the chat simulator, operator commands, the admin client |
//! | [`clock`] | injected time |
//! | [`shutdown`] | the stop signal shared by the server and its tasks |

pub mod assistant;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conversation;
pub mod directory;
pub mod http;
pub mod limits;
pub mod models;
pub mod phone;
pub mod shutdown;
pub mod store;
pub mod twilio;

/// jemalloc instead of the system allocator. Sessions, sled pages and moka
/// entries are freed on other threads than the ones that allocated them
/// (epoch-based reclamation), and glibc's arena locks made those frees
/// contend: the load bench went from 10.7k to 18k messages a second with it,
/// and its p99 from 6 to 3.8 ms (README, "Performance"). mimalloc was as fast
/// but nearly doubled RSS after opening a million sessions; jemalloc kept it.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
