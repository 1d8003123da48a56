//! The integration tests, one binary: each former `tests/<name>.rs` is a
//! module here (`cargo test --test it <name>::` runs one of them), and
//! `common` is their shared support (the router on 127.0.0.1:0, the real
//! binary, the dashboard's sign-in).

mod common;

mod assistant;
mod assistant_generated;
mod assistant_golden;
mod assistant_golden_other;
mod cli;
mod config;
mod connections;
mod dashboard;
mod dashboard_browser;
mod data_dir;
mod dedupe;
mod directory;
mod faults;
mod fixtures_v1;
mod limits;
mod messages_not_text;
mod models;
mod operations;
mod opt_out;
mod phone;
mod session_store;
mod sessions_http;
mod shared_store;
mod signature;
mod soak;
mod storage_faults;
mod strangers;
mod webhook;
