//! The HTTP side: everything a request meets, and nothing below it refers
//! back here.
//!
//! | module | owns |
//! | --- | --- |
//! | `server` | building the app ([`App`]), the router, middleware, reload, graceful shutdown |
//! | `state` | [`AppState`], what every request shares |
//! | `webhook` | `POST /whatsapp/webhook`: one inbound message, step by step; its outcomes |
//! | `admin` | the admin JSON API under `/admin` |
//! | `views` | the JSON the admin API answers with, which the CLI reads back |
//! | `metrics` | `GET /metrics` |
//! | [`connections`] | open connections, their cap, idle eviction, overload shedding |
//! | `dashboard` | the organisers' pages and the figures they show |
//! | `directory_sync` | with a shared store: the same directory on every instance |
//!
//! Modules outside this folder use it only to start a server (`main`, the
//! CLI's chat simulator) and to read the admin API's views (the CLI).

pub(crate) mod admin;
pub mod connections;
pub(crate) mod dashboard;
mod directory_sync;
pub(crate) mod metrics;
mod server;
mod state;
mod storage_faults;
pub(crate) mod views;
pub(crate) mod webhook;

pub use server::{App, Options, StartError, serve};
pub use state::AppState;
