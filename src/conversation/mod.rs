//! What is stored about a conversation: the [`Session`] of a member, its
//! exchanges ([`Entry`]), and what the assistant made of each message
//! ([`Intent`], [`Entities`]). Both the assistant (which reads and extends a
//! session) and the session store (which keeps it) use these types, and
//! neither depends on the other for them.
//!
//! | module | owns |
//! | --- | --- |
//! | `entry` | [`Entry`], [`Intent`], [`Entities`]; [`RecordedEntry`], an entry with its stored form |
//! | `session` | [`Session`], [`SentReply`], [`SessionStats`]; the JSON views [`SessionView`], [`EntryView`] |

mod entry;
mod session;

pub use entry::{Entities, Entry, Intent, MAX_KEYWORDS, RecordedEntry};
pub use session::{EntryView, SentReply, Session, SessionStats, SessionView};

/// The stored format these types are encoded under: the format-version byte
/// (`session::codec::SESSION_V1`) in front of the bincode of a [`Session`].
///
/// bincode is not self-describing: it writes fields in order and enum
/// variants by index. Adding, removing or reordering a field of [`Session`],
/// [`Entry`], [`Entities`] or [`SentReply`] changes the stored format and
/// needs a new version here and in the codec (freeze the old types as
/// `SessionV1`, decode both, migrate on read). A new [`Intent`] variant at
/// the end does not.
pub const STORED_VERSION: u8 = 1;
