//! The command line's side of Roster, apart from `serve`: the chat simulator
//! (`chat`, `send`), the operator commands (`sessions`, `limits`, `stats`,
//! `export`, `import`, `check-directory`, `check-data`) and the client they
//! use to reach a running server.
//!
//! | module | owns |
//! | --- | --- |
//! | [`chat`] | `roster chat` and `roster send`: messages as a member sends them, replies as WhatsApp shows them |
//! | [`commands`] | the operator commands, through the admin API or, with no server, the data dir |
//! | [`client`] | HTTP to a running server: the admin API (read into its typed views) and the signed webhook |
//!
//! The CLI depends on the server's side (to start one in-process, and for
//! the admin API's view types), never the other way round.

pub mod chat;
pub mod client;
pub mod commands;
