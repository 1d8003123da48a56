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

/// How long a MessageSid's late reply is remembered as queued.
const OUTBOX_SEEN_SECS: u64 = 24 * 3600;
/// The consumer group every instance reads the outbox stream in.
const OUTBOX_GROUP: &str = "senders";
/// Entries taken at once.
const OUTBOX_BATCH: usize = 16;

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
            self.query(&pipe).await?;
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

    fn claim(&self, pipe: &mut redis::Pipeline, id: &str) {
        pipe.cmd("XCLAIM")
            .arg(self.stream())
            .arg(OUTBOX_GROUP)
            .arg(&self.consumer)
            .arg(0)
            .arg(id)
            .arg("JUSTID")
            .ignore();
    }

    pub async fn progress(&self, id: &[u8], value: &[u8]) -> Result<(), String> {
        let id = String::from_utf8_lossy(id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(self.progress_key(), id.as_ref(), value)
            .ignore();
        self.claim(&mut pipe, &id);
        self.query(&pipe).await
    }

    pub async fn keep(&self, id: &[u8]) -> Result<(), String> {
        let id = String::from_utf8_lossy(id);
        let mut pipe = redis::pipe();
        self.claim(&mut pipe, &id);
        self.query(&pipe).await
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
