//! Moving a data dir written before phone records into records, once, at
//! open, crash-safely.
//!
//! Before, each phone's state was spread over trees of its own: `sessions`
//! (`s` ‖ phone → session, with an `e` index and, earlier still, `m` ‖
//! MessageSid → reply with an `x` index), `limits` (`messages:<phone>`,
//! `messages-notice:<phone>`, the same for searches → absolute ns),
//! `optouts` (phone → ms) and one `replies:<start>:<length>` tree per
//! window (MessageSid ‖ 0 ‖ phone → reply, or MessageSid alone in format 1).
//!
//! The move runs in two passes. The first builds each phone's record from
//! every piece found, merged into any record already written for it, and
//! writes it (index key first, as a commit does), then flushes. The second
//! removes the old pieces: whole trees when everything in them was read,
//! key by key otherwise. A crash in either pass leaves a data dir that opens
//! and finishes the move: nothing serves before it is done, and merging the
//! same pieces again writes the same record. A piece this version cannot
//! read is logged and left where it is, never dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::codec;
use super::record::{Keeping, PhoneRecord, RememberedReply};
use super::{OPTED_OUT, StoreError, due_at, due_bucket, due_key, phone_key, record_key};
use crate::conversation::Session;
use crate::phone::PhoneNumber;

const SESSIONS: &str = "sessions";
const LIMITS: &str = "limits";
const OPT_OUTS: &str = "optouts";
const REPLIES_PREFIX: &str = "replies:";
/// How close a session entry's time must be to a format-1 reply's sending
/// time to show that the reply answered that session's phone: both were
/// taken within the same message's turn.
const VOUCH_MS: u64 = 2_000;

/// A remembered reply of format 1 ([`codec::SEEN_V1`]): no phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SeenReply {
    pub(super) twiml: String,
    pub(super) expires_at_ms: u64,
}

/// A remembered reply of format 2 ([`codec::SEEN_V2`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PhoneReply {
    pub(super) phone: String,
    pub(super) twiml: String,
    pub(super) expires_at_ms: u64,
}

/// What the move found and wrote, for the log.
#[derive(Debug, Default)]
struct Moved {
    sessions: u64,
    replies: u64,
    limits: u64,
    opt_outs: u64,
    unreadable: u64,
}

/// One old tree: its keys read (to remove), and whether all of it was.
struct OldTree {
    name: String,
    tree: sled::Tree,
    read: Vec<sled::IVec>,
    complete: bool,
}

/// Moves an older layout into records; how many phones it wrote.
pub(super) fn from_v1(
    db: &sled::Db,
    phones_tree: &sled::Tree,
    keeping: Keeping,
    now_ms: u64,
) -> Result<u64, StoreError> {
    run(db, phones_tree, keeping, now_ms, Stop::Never)
}

/// Where a move stops, as a crash would stop it (tests only stop early).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Never,
    #[cfg(test)]
    AfterRecords,
    #[cfg(test)]
    AfterOneOldTree,
}

fn run(
    db: &sled::Db,
    phones_tree: &sled::Tree,
    keeping: Keeping,
    now_ms: u64,
    stop: Stop,
) -> Result<u64, StoreError> {
    let mut old = Vec::new();
    for name in db.tree_names() {
        let Ok(name) = std::str::from_utf8(&name).map(str::to_owned) else {
            continue;
        };
        if [SESSIONS, LIMITS, OPT_OUTS].contains(&name.as_str()) || name.starts_with(REPLIES_PREFIX)
        {
            let tree = db.open_tree(&name)?;
            if tree.is_empty() {
                drop(tree);
                db.drop_tree(&name)?;
                continue;
            }
            old.push(OldTree {
                name,
                tree,
                read: Vec::new(),
                complete: true,
            });
        }
    }
    if old.is_empty() {
        return Ok(0);
    }
    let mut moved = Moved::default();
    let mut records: BTreeMap<PhoneNumber, PhoneRecord> = BTreeMap::new();
    let mut anonymous: Vec<(String, SeenReply)> = Vec::new();
    for tree in &mut old {
        read_tree(tree, &mut records, &mut anonymous, &mut moved, now_ms)?;
    }
    vouch(&mut records, anonymous, keeping, now_ms, &mut moved);
    // Pass 1: every record, merged into what an interrupted move wrote.
    let phones = records.len() as u64;
    for (phone, pieces) in records {
        let mut record = match phones_tree.get(record_key(&phone))? {
            Some(bytes) => PhoneRecord::decode(&bytes)?,
            None => PhoneRecord::default(),
        };
        record.absorb(pieces, keeping, now_ms);
        if let Some(due) = due_at(&record) {
            phones_tree.insert(due_key(due_bucket(due), &phone), &[])?;
        }
        if record.opted_out_at_ms.is_some() {
            phones_tree.insert(phone_key(OPTED_OUT, &phone), &[])?;
        }
        phones_tree.insert(record_key(&phone), record.encode())?;
    }
    db.flush()?;
    #[cfg(test)]
    if stop == Stop::AfterRecords {
        return Ok(phones);
    }
    // Pass 2: the old pieces go.
    for (n, tree) in old.into_iter().enumerate() {
        #[cfg(test)]
        if stop == Stop::AfterOneOldTree && n == 1 {
            return Ok(phones);
        }
        let _ = (n, stop); // only tests stop early
        if tree.complete {
            drop(tree.tree);
            db.drop_tree(&tree.name)?;
        } else {
            for key in tree.read {
                tree.tree.remove(key)?;
            }
        }
    }
    db.flush()?;
    tracing::info!(
        phones,
        sessions = moved.sessions,
        replies = moved.replies,
        limits = moved.limits,
        opt_outs = moved.opt_outs,
        unreadable_kept = moved.unreadable,
        "moved the data dir's state into one record per phone"
    );
    Ok(phones)
}

/// Reads one old tree into `records`.
fn read_tree(
    old: &mut OldTree,
    records: &mut BTreeMap<PhoneNumber, PhoneRecord>,
    anonymous: &mut Vec<(String, SeenReply)>,
    moved: &mut Moved,
    now_ms: u64,
) -> Result<(), StoreError> {
    for item in old.tree.iter() {
        let (key, value) = item?;
        let read = match old.name.as_str() {
            SESSIONS => read_sessions_key(&key, &value, records, anonymous, moved),
            LIMITS => read_limit(&key, &value, records, moved),
            OPT_OUTS => read_opt_out(&key, &value, records, moved),
            _ => read_reply(&key, &value, records, anonymous, moved, now_ms),
        };
        match read {
            Ok(()) => old.read.push(key),
            Err(why) => {
                tracing::warn!(tree = %old.name, "left an unreadable value in place: {why}");
                moved.unreadable += 1;
                old.complete = false;
            }
        }
    }
    Ok(())
}

fn phone_of(text: &[u8]) -> Result<PhoneNumber, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(PhoneNumber::from_stored)
        .ok_or_else(|| format!("a key that is not a phone number ({} bytes)", text.len()))
}

fn read_sessions_key(
    key: &[u8],
    value: &[u8],
    records: &mut BTreeMap<PhoneNumber, PhoneRecord>,
    anonymous: &mut Vec<(String, SeenReply)>,
    moved: &mut Moved,
) -> Result<(), String> {
    match key.first() {
        Some(b's') => {
            let phone = phone_of(&key[1..])?;
            let session: Session =
                codec::decode("session", codec::SESSION_V1, value).map_err(|e| e.to_string())?;
            records.entry(phone).or_default().session = Some(session);
            moved.sessions += 1;
        }
        Some(b'm') => {
            let reply: SeenReply = codec::decode("remembered reply", codec::SEEN_V1, value)
                .map_err(|e| e.to_string())?;
            let sid = String::from_utf8_lossy(&key[1..]).into_owned();
            anonymous.push((sid, reply));
        }
        // Index keys, the count and the open marker mean nothing any more.
        _ => {}
    }
    Ok(())
}

fn read_limit(
    key: &[u8],
    value: &[u8],
    records: &mut BTreeMap<PhoneNumber, PhoneRecord>,
    moved: &mut Moved,
) -> Result<(), String> {
    let text = std::str::from_utf8(key).map_err(|_| "a key that is not text".to_owned())?;
    let (name, phone) = text
        .split_once(':')
        .ok_or_else(|| format!("an unknown key {text:?}"))?;
    let phone = phone_of(phone.as_bytes())?;
    let at = match value.split_first() {
        Some((&codec::LIMIT_V1, rest)) => rest
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| format!("a limit of {} bytes", value.len()))?,
        _ => return Err("a limit of an unknown format".to_owned()),
    };
    let limits = &mut records.entry(phone).or_default().limits;
    *limits
        .time_mut(name)
        .ok_or_else(|| format!("an unknown limit {name:?}"))? = at;
    moved.limits += 1;
    Ok(())
}

fn read_opt_out(
    key: &[u8],
    value: &[u8],
    records: &mut BTreeMap<PhoneNumber, PhoneRecord>,
    moved: &mut Moved,
) -> Result<(), String> {
    let phone = phone_of(key)?;
    let at = match value.split_first() {
        Some((&codec::OPT_OUT_V1, rest)) => rest
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| format!("an opt-out of {} bytes", value.len()))?,
        _ => return Err("an opt-out of an unknown format".to_owned()),
    };
    records.entry(phone).or_default().opted_out_at_ms = Some(at);
    moved.opt_outs += 1;
    Ok(())
}

fn read_reply(
    key: &[u8],
    value: &[u8],
    records: &mut BTreeMap<PhoneNumber, PhoneRecord>,
    anonymous: &mut Vec<(String, SeenReply)>,
    moved: &mut Moved,
    now_ms: u64,
) -> Result<(), String> {
    match value.first() {
        Some(&codec::SEEN_V1) => {
            let reply: SeenReply = codec::decode("remembered reply", codec::SEEN_V1, value)
                .map_err(|e| e.to_string())?;
            anonymous.push((String::from_utf8_lossy(key).into_owned(), reply));
        }
        _ => {
            let reply: PhoneReply = codec::decode("remembered reply", codec::SEEN_V2, value)
                .map_err(|e| e.to_string())?;
            let sid = key
                .split(|&b| b == 0)
                .next()
                .map(|sid| String::from_utf8_lossy(sid).into_owned())
                .unwrap_or_default();
            let phone = phone_of(reply.phone.as_bytes())?;
            if reply.expires_at_ms > now_ms {
                records
                    .entry(phone)
                    .or_default()
                    .replies
                    .push(RememberedReply {
                        message_sid: sid,
                        twiml: reply.twiml.into(),
                        expires_at_ms: reply.expires_at_ms,
                    });
                moved.replies += 1;
            }
        }
    }
    Ok(())
}

/// Format-1 replies name no phone: each goes to the phone whose own
/// session recorded an exchange at the moment it was sent (its latest
/// reply names its MessageSid, else the exchange nearest in time, within
/// [`VOUCH_MS`]; phones tied for nearest all get it, as any of them got it
/// from the webhook before), and is dropped when no session shows that.
fn vouch(
    records: &mut BTreeMap<PhoneNumber, PhoneRecord>,
    anonymous: Vec<(String, SeenReply)>,
    keeping: Keeping,
    now_ms: u64,
    moved: &mut Moved,
) {
    for (sid, reply) in anonymous {
        if reply.expires_at_ms <= now_ms {
            continue;
        }
        let sent_at_ms = reply.expires_at_ms.saturating_sub(keeping.dedupe_ttl_ms);
        let distance = |record: &PhoneRecord| -> Option<u64> {
            let session = record.session.as_ref()?;
            if session
                .last_reply
                .as_ref()
                .is_some_and(|last| last.message_sid == sid)
            {
                return Some(0);
            }
            session
                .history
                .iter()
                .map(|e| e.timestamp_ms.abs_diff(sent_at_ms))
                .filter(|&d| d <= VOUCH_MS)
                .min()
        };
        let Some(nearest) = records.values().filter_map(distance).min() else {
            continue;
        };
        let twiml: std::sync::Arc<str> = reply.twiml.into();
        for record in records.values_mut() {
            if distance(record) == Some(nearest) {
                record.replies.push(RememberedReply {
                    message_sid: sid.clone(),
                    twiml: std::sync::Arc::clone(&twiml),
                    expires_at_ms: reply.expires_at_ms,
                });
            }
        }
        moved.replies += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Entities, Entry, Intent, Session};
    use crate::directory::MemberRole;
    use crate::phone::Region;

    const NOW: u64 = 1_800_000_000_000;
    const DAY: u64 = 24 * 3600 * 1000;
    const KEEPING: Keeping = Keeping {
        max_replies: 10,
        dedupe_ttl_ms: DAY,
    };

    fn phone(i: u32) -> PhoneNumber {
        PhoneNumber::parse(&format!("+9198450000{i:02}"), Region::default()).unwrap()
    }

    fn session(i: u32) -> Session {
        let mut session = Session {
            phone: phone(i),
            member_id: format!("T{i:03}"),
            member_name: format!("Member {i}"),
            role: MemberRole::Member,
            history: Vec::new(),
            created_at_ms: NOW - 1_000,
            last_activity_ms: NOW - 1_000,
            expires_at_ms: NOW - 1_000 + 1_800_000,
            message_count: 0,
            search_count: 0,
            last_reply: None,
        };
        let entry = Entry {
            query: "doctors in Pune".to_owned(),
            timestamp_ms: NOW - 1_000,
            intent: Intent::Search,
            entities: Entities::default(),
            result_count: 1,
            result_ids: vec!["T001".to_owned()],
            page: 0,
        };
        session.record(entry, true, 10, 1_800_000);
        session
    }

    /// A data dir in the layout before records: three phones with sessions,
    /// limits and remembered replies, one of them opted out.
    fn old_layout(db: &sled::Db) {
        let sessions = db.open_tree(SESSIONS).unwrap();
        let limits = db.open_tree(LIMITS).unwrap();
        let replies = db
            .open_tree(format!("{REPLIES_PREFIX}{}:{DAY}", NOW - NOW % DAY))
            .unwrap();
        for i in 1..=3 {
            let p = phone(i);
            let key = [b"s".as_slice(), p.e164().as_bytes()].concat();
            sessions
                .insert(key, codec::encode(codec::SESSION_V1, &session(i)))
                .unwrap();
            let mut at = vec![codec::LIMIT_V1];
            at.extend_from_slice(&(NOW * 1_000_000 + 60_000_000_000).to_be_bytes());
            limits.insert(format!("messages:{p}"), at).unwrap();
            let reply = PhoneReply {
                phone: p.e164(),
                twiml: format!("<Response>{i}</Response>"),
                expires_at_ms: NOW + DAY - 1_000,
            };
            let key = [format!("SM{i}").as_bytes(), &[0], p.e164().as_bytes()].concat();
            replies
                .insert(key, codec::encode(codec::SEEN_V2, &reply))
                .unwrap();
        }
        let opt_outs = db.open_tree(OPT_OUTS).unwrap();
        let mut at = vec![codec::OPT_OUT_V1];
        at.extend_from_slice(&NOW.to_be_bytes());
        opt_outs.insert(phone(2).e164(), at).unwrap();
    }

    fn records(tree: &sled::Tree) -> Vec<(Vec<u8>, PhoneRecord)> {
        tree.scan_prefix([super::super::RECORD])
            .map(|item| {
                let (key, value) = item.unwrap();
                (key.to_vec(), PhoneRecord::decode(&value).unwrap())
            })
            .collect()
    }

    fn migrated(stop: Stop) -> (Vec<(Vec<u8>, PhoneRecord)>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        // Through the data dir's own open, which waits out the lock a
        // database closed a moment ago may still hold.
        let open = || {
            super::super::open(&crate::config::StorageConfig {
                data_dir: dir.path().to_owned(),
                ..Default::default()
            })
            .unwrap()
        };
        {
            let db = open();
            old_layout(&db);
            let tree = db.open_tree(super::super::TREE).unwrap();
            run(&db, &tree, KEEPING, NOW, stop).unwrap();
            // A crash: nothing more runs, the process is gone.
        }
        let db = open();
        let tree = db.open_tree(super::super::TREE).unwrap();
        run(&db, &tree, KEEPING, NOW, Stop::Never).unwrap();
        let names = db
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        (records(&tree), names)
    }

    #[test]
    fn a_move_interrupted_at_any_stage_finishes_with_the_same_records() {
        let (clean, names) = migrated(Stop::Never);
        assert_eq!(clean.len(), 3);
        let (_, record) = &clean[1];
        assert_eq!(record.opted_out_at_ms, Some(NOW));
        assert!(record.session.is_some());
        assert_ne!(record.limits.messages.tat_ns, 0);
        assert_eq!(record.replies.len(), 1);
        assert!(
            !names
                .iter()
                .any(|n| [SESSIONS, LIMITS, OPT_OUTS].contains(&n.as_str())
                    || n.starts_with(REPLIES_PREFIX)),
            "{names:?}"
        );
        for stop in [Stop::AfterRecords, Stop::AfterOneOldTree] {
            let (records, names) = migrated(stop);
            assert_eq!(records, clean, "stopped {stop:?}");
            assert!(
                !names
                    .iter()
                    .any(|n| n.starts_with(REPLIES_PREFIX) || n == SESSIONS),
                "{stop:?}: {names:?}"
            );
        }
    }
}
