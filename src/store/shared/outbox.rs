//! The late-reply outbox in Redis (see [`SharedOutbox`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Script, Value};

use super::{SharedRecords, invoke, new_token, query};

/// Queues a late reply once per MessageSid: the `seen` key, then the
/// stream entry, in one step.
const OUTBOX_ADD: &str = r"
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then
  redis.call('XADD', KEYS[1], '*', 'sid', ARGV[1], 'value', ARGV[2])
  return 1
end
return 0
";

/// Holds an entry for this consumer (see [`SharedOutbox::hold`]).
const OUTBOX_HOLD: &str = r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
local entry = pending[1]
if not entry or entry[2] ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[4]) end
return 1
";

/// How long a MessageSid's late reply is remembered as queued.
const OUTBOX_SEEN_SECS: u64 = 24 * 3600;
/// The consumer group every instance reads the outbox stream in.
const OUTBOX_GROUP: &str = "senders";
/// Entries taken at once: one, so that an entry waiting behind another's
/// retries is never held without being worked on.
const OUTBOX_BATCH: usize = 1;

/// The late-reply outbox in Redis: the stream `<prefix>outbox` read by the
/// consumer group `senders`, each instance a consumer of its own (a random
/// name per process). An entry read by an instance stays in its pending
/// list until sent; one that an instance has not touched for
/// `takeover` (it stopped, or died) is claimed by the next instance that
/// looks (`XAUTOCLAIM`), so each reply is sent by one instance at a time
/// and none is left behind. Parts already accepted are recorded in the
/// hash `<prefix>outbox:progress`, so a takeover does not send them again.
pub struct SharedOutbox {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    consumer: String,
    takeover: Duration,
    add: Script,
    hold: Script,
    group_ready: AtomicBool,
}

impl SharedRecords {
    /// The outbox beside these records; an entry left alone for `takeover`
    /// goes to another instance.
    pub fn outbox(&self, takeover: Duration) -> SharedOutbox {
        SharedOutbox {
            connection: self.connection.clone(),
            prefix: self.prefix.clone(),
            timeout: self.timeout,
            consumer: new_token(),
            takeover,
            add: Script::new(OUTBOX_ADD),
            hold: Script::new(OUTBOX_HOLD),
            group_ready: AtomicBool::new(false),
        }
    }
}

impl SharedOutbox {
    fn stream(&self) -> String {
        format!("{}outbox", self.prefix)
    }

    fn progress_key(&self) -> String {
        format!("{}outbox:progress", self.prefix)
    }

    async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, String> {
        query(&self.connection, self.timeout, pipe)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn add(&self, message_sid: &str, value: &[u8]) -> Result<bool, String> {
        let mut invocation = self.add.key(self.stream());
        invocation
            .key(format!("{}outbox:seen:{message_sid}", self.prefix))
            .arg(message_sid)
            .arg(value)
            .arg(OUTBOX_SEEN_SECS);
        let added: i64 = invoke(&self.connection, self.timeout, &invocation)
            .await
            .map_err(|e| e.to_string())?;
        Ok(added == 1)
    }

    async fn ensure_group(&self) -> Result<(), String> {
        if self.group_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("XGROUP")
            .arg("CREATE")
            .arg(self.stream())
            .arg(OUTBOX_GROUP)
            .arg("0")
            .arg("MKSTREAM");
        match self.query::<()>(&pipe).await {
            Ok(()) => {}
            Err(e) if e.contains("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        self.group_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Entries left by an instance that stopped, then new ones.
    pub async fn take(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
        self.ensure_group().await?;
        let takeover_ms = u64::try_from(self.takeover.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.cmd("XAUTOCLAIM")
            .arg(self.stream())
            .arg(OUTBOX_GROUP)
            .arg(&self.consumer)
            .arg(takeover_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(OUTBOX_BATCH)
            .cmd("XREADGROUP")
            .arg("GROUP")
            .arg(OUTBOX_GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(OUTBOX_BATCH)
            .arg("STREAMS")
            .arg(self.stream())
            .arg(">");
        let (claimed, read): (StreamAutoClaimReply, Option<StreamReadReply>) =
            match self.query(&pipe).await {
                Ok(replies) => replies,
                Err(e) => {
                    // Redis lost the group (restarted without it, or
                    // flushed): make it again next time.
                    if e.contains("NOGROUP") {
                        self.group_ready.store(false, Ordering::Release);
                    }
                    return Err(e);
                }
            };
        let entries: Vec<StreamId> = claimed
            .claimed
            .into_iter()
            .chain(read.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids))
            .collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(self.progress_key());
        for entry in &entries {
            pipe.arg(&entry.id);
        }
        let (progress,): (Vec<Option<Vec<u8>>>,) = self.query(&pipe).await?;
        Ok(entries
            .into_iter()
            .zip(progress)
            .filter_map(|(entry, progress)| {
                let value = match progress {
                    Some(value) => value,
                    None => match entry.map.get("value")? {
                        Value::BulkString(bytes) => bytes.clone(),
                        _ => return None,
                    },
                };
                Some((entry.id.into_bytes(), value))
            })
            .collect())
    }

    /// Whether this instance still holds entry `id` (it is in this
    /// consumer's pending list); if so, resets its idle time, so that no
    /// other instance takes it over, and records `value` (how far it got)
    /// when there is one.
    pub async fn hold(&self, id: &[u8], value: Option<&[u8]>) -> Result<bool, String> {
        let id = String::from_utf8_lossy(id);
        let mut invocation = self.hold.key(self.stream());
        invocation
            .key(self.progress_key())
            .arg(OUTBOX_GROUP)
            .arg(id.as_ref())
            .arg(&self.consumer)
            .arg(value.unwrap_or_default());
        let held: i64 = invoke(&self.connection, self.timeout, &invocation)
            .await
            .map_err(|e| e.to_string())?;
        Ok(held == 1)
    }

    pub async fn done(&self, id: &[u8]) -> Result<(), String> {
        let id = String::from_utf8_lossy(id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XACK")
            .arg(self.stream())
            .arg(OUTBOX_GROUP)
            .arg(id.as_ref())
            .ignore()
            .cmd("XDEL")
            .arg(self.stream())
            .arg(id.as_ref())
            .ignore()
            .hdel(self.progress_key(), id.as_ref())
            .ignore();
        self.query(&pipe).await
    }
}
