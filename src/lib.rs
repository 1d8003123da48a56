//! Roster: a WhatsApp assistant for a member organisation, served through
//! Twilio, in one self-contained binary.
//!
//! A member writes "Find doctors in Bangalore" to the organisation's WhatsApp
//! number; Twilio POSTs the message to `/whatsapp/webhook`; Roster answers
//! with TwiML listing matching members from the directory CSV.
//!
//! # One inbound message
//!
//! ```text
//! POST /whatsapp/webhook ─▶ body limit, timeout          (server)
//!   ├─ parse the form, keep every field        ─▶ 400    (twilio)
//!   ├─ verify X-Twilio-Signature               ─▶ 403    (twilio::SignatureVerifier)
//!   ├─ From → PhoneNumber (E.164)              ─▶ 400    (phone)
//!   ├─ sender must be an active member         ─▶ polite refusal, once an hour (directory, limits)
//!   ├─ understand the message, search          ─▶ reply text (assistant)
//!   └─ render TwiML, split at 1,600 characters ─▶ 200 text/xml (twilio::twiml)
//! ```
//!
//! [`webhook::whatsapp_webhook`] is that list as code, one call per step.
//!
//! # Modules
//!
//! | module | owns |
//! | --- | --- |
//! | [`config`] | the [`config::Config`] type; loading `config.toml` + environment |
//! | [`server`] | building the app and router, middleware, graceful shutdown |
//! | [`twilio`] | the wire protocol: signature, inbound form, TwiML |
//! | [`webhook`] | the flow above |
//! | [`phone`] | [`phone::PhoneNumber`]: parsing any writing into E.164; masking |
//! | [`directory`] | members, loading the CSV, lookup by phone |
//! | [`assistant`] | understanding a message and composing the reply |
//! | [`limits`] | rate limits on governor's GCRA |
//! | [`storage`] | opening the sled database |
//! | [`clock`] | injected time |
//! | [`shutdown`] | the stop signal shared by the server and its tasks |

pub mod admin;
pub mod assistant;
pub mod backup;
pub mod chat;
pub mod client;
pub mod clock;
pub mod commands;
pub mod config;
pub mod directory;
pub mod limits;
pub mod metrics;
pub mod phone;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod storage;
pub mod twilio;
pub mod webhook;
