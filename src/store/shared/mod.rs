//! Phone records in a shared Redis (or Valkey), for several instances
//! behind one load balancer: `storage.backend = "redis"`.
//!
//! # Keys (all after `storage.redis_prefix`)
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `p:` E.164 | hash `v`, `r` | the record's version and its bytes ([`PhoneRecord::encode`]), with a native expiry (PEXPIRE) at the record's end of life, so no sweeper is needed |
//! | `l:` E.164 | string | the phone's lease: the token of the instance whose turn it is |
//! | `phones` | sorted set, all scores 0 | every phone with a record, in phone order (listing, export) |
//! | `expiry` | sorted set | each phone's end of life (ms), to prune `phones` and `sessions` |
//! | `sessions` | sorted set | each phone's session expiry (ms): the live-session count |
//! | `optouts` | set | the phones opted out |
//! | `versions` | counter | where record versions come from, so none repeats |
//!
//! # One message per phone at a time, cluster-wide: a lease
//!
//! A turn begins with one script (`BEGIN`): `SET l:phone token NX PX`,
//! and, if the lease was free, the record and Redis's `TIME`, in the same
//! round trip. A busy lease is retried with a short backoff until the
//! request's time is up. The turn commits with a second script
//! (`COMMIT`): it writes the record only if no other instance holds the
//! lease **and** the record's version is still the one the turn loaded,
//! updates the indexes, sets the expiry and releases the lease. A turn
//! that wrote nothing releases the lease (`RELEASE`) instead. So an
//! answered message costs exactly two round trips (the Node service made
//! seven), and so does a duplicate or a stranger.
//!
//! Why a lease rather than only a version check: with only optimistic
//! commits, two instances would both run the assistant for one phone's
//! concurrent messages and one would throw its work away and start again;
//! with the lease the second simply waits its turn, as within one process.
//! The version check is the fence: a turn whose lease ran out (a stalled
//! instance) cannot overwrite what the next holder wrote, and gets a 503,
//! which Twilio retries. Versions come from one counter (`versions`), so
//! a record deleted and written again never shows a version a stalled turn
//! read before; and a turn that read no record may write only while it
//! still holds the lease.
//!
//! # Limits on Redis's clock
//!
//! A turn's time is Redis's `TIME`, read by `BEGIN`, never the instance's
//! own clock: every expiry and every GCRA step (the same governor
//! arithmetic as the embedded store, `crate::limits`) of a turn is on the
//! one clock all instances share, so skew between their clocks does not
//! matter. The GCRA state is read and written under the lease in the same
//! two scripts, so two instances can never both spend the last unit of a
//! phone's quota: the arithmetic runs in the instance holding the phone's
//! lease rather than in Lua, which keeps one GCRA implementation (the one
//! the embedded store's tests pin down) instead of two that could drift.
//!
//! # Failures
//!
//! Every command is bounded by `storage.redis_timeout`. A failed one puts
//! the store in a failing state that `/readyz` reports and that makes
//! webhooks 503 (Twilio retries), so nothing is acknowledged that was not
//! stored; redis-rs's connection manager reconnects by itself with backoff,
//! and the housekeeping task's ping (and any command that succeeds) clears
//! the failure. Redis Cluster is not supported (the scripts touch several
//! keys); one primary, with or without replicas, is.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, Script, Value};

mod hours;
mod outbox;
mod vectors;

pub use self::hours::{OthersHour, SharedHours};
pub use self::outbox::SharedOutbox;
pub use self::vectors::SharedVectors;
use super::StoreError;
use super::record::PhoneRecord;
use crate::config::StorageConfig;
use crate::phone::PhoneNumber;

/// How much longer than a request a lease lasts.
const LEASE_MARGIN: Duration = Duration::from_secs(2);

const BEGIN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local rec = redis.call('HMGET', KEYS[1], 'v', 'r')
  return {1, now, rec[1], rec[2]}
end
return {0, now, redis.call('PTTL', KEYS[2])}
";

const COMMIT: &str = r#"
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {0, "the phone is in another instance's turn"} end
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[2]) then return {0, 'the record changed since it was read'} end
if v == 0 and not holder then return {0, 'the turn lost its lease before its first write'} end
local nv = redis.call('INCR', KEYS[7])
local phone = ARGV[5]
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], phone)
  redis.call('ZREM', KEYS[4], phone)
  redis.call('ZREM', KEYS[5], phone)
  redis.call('SREM', KEYS[6], phone)
else
  redis.call('HSET', KEYS[1], 'v', nv, 'r', ARGV[3])
  if ARGV[4] == '0' then
    redis.call('PERSIST', KEYS[1])
  else
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
  end
  redis.call('ZADD', KEYS[3], 0, phone)
  redis.call('ZADD', KEYS[4], ARGV[6], phone)
  if ARGV[7] == '0' then
    redis.call('ZREM', KEYS[5], phone)
  else
    redis.call('ZADD', KEYS[5], ARGV[7], phone)
  end
  if ARGV[8] == '1' then
    redis.call('SADD', KEYS[6], phone)
  else
    redis.call('SREM', KEYS[6], phone)
  end
end
if holder then redis.call('DEL', KEYS[2]) end
return {1, nv}
"#;

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Prunes the indexes of records Redis expired, and counts.
const HOUSEKEEPING: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 10000)
local pruned = 0
for _, phone in ipairs(due) do
  if redis.call('EXISTS', ARGV[2] .. phone) == 0 then
    redis.call('ZREM', KEYS[1], phone)
    redis.call('ZREM', KEYS[2], phone)
    redis.call('SREM', KEYS[4], phone)
    pruned = pruned + 1
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
return {pruned, redis.call('ZCARD', KEYS[3]), redis.call('SCARD', KEYS[4])}
";

/// A phone's turn in Redis: the lease's token, and the version read.
#[derive(Debug)]
pub struct Lease {
    phone: PhoneNumber,
    token: String,
    version: u64,
    /// Released by a commit, so there is nothing left to release.
    released: bool,
}

/// What `BEGIN` found.
pub struct Begun {
    pub lease: Lease,
    pub record: Option<PhoneRecord>,
    /// Redis's time (plus how far a test moved its clock), ms since the epoch.
    pub now_ms: u64,
}

/// The records of every phone, in a shared Redis.
pub struct SharedRecords {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: String,
    /// The URL with any password replaced, for messages.
    shown_url: String,
    timeout: Duration,
    /// How long a lease lasts if its holder never commits or releases.
    lease_ms: u64,
    /// How long a turn waits for another instance's lease.
    wait_limit: Duration,
    begin: Script,
    commit: Script,
    release: Script,
    housekeeping: Script,
    failing: AtomicBool,
    failure: Mutex<Option<String>>,
    round_trips: AtomicU64,
    live_sessions: AtomicU64,
    opted_out: AtomicU64,
}

impl std::fmt::Debug for SharedRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRecords")
            .field("url", &self.shown_url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// `url` with any password replaced by `***`: the user part's (which may
/// itself hold a `/`) and a `pass=` or `password=` query parameter (as a
/// `unix://` URL carries it).
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return "(not a URL)".to_owned();
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let (path, query) = match rest.find('?') {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    // The host cannot hold an '@': the last one ends the user part.
    let path = match path.rfind('@') {
        Some(at) => {
            let user = &path[..at];
            let shown = match user.find(':') {
                Some(colon) => format!("{}:***", &user[..colon]),
                None => "***".to_owned(),
            };
            format!("{shown}{}", &path[at..])
        }
        None => path.to_owned(),
    };
    let query = query.map(|query| {
        query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key == "pass" || key == "password" => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(query) => format!("{head}{path}?{query}"),
        None => format!("{head}{path}"),
    }
}

impl SharedRecords {
    /// Connects to `storage.redis_url`; a clear error naming the URL
    /// (without its password) when Redis cannot be reached.
    /// `longest_turn` is the longest a message's turn runs
    /// (`Config::longest_turn`): a phone's lease lasts a little longer, so
    /// that it outlives any turn that holds it but not for long an
    /// instance that died holding it.
    pub fn connect(config: &StorageConfig, longest_turn: Duration) -> Result<Self, StoreError> {
        let lease = longest_turn + LEASE_MARGIN;
        let url = config.redis_url.expose().unwrap_or_default();
        let shown_url = redact_url(url);
        let unreachable = |e: &dyn std::fmt::Display| {
            StoreError::Unavailable(format!("cannot reach Redis at {shown_url}: {e}"))
        };
        let mut info = url.into_connection_info().map_err(|e| unreachable(&e))?;
        if let Some(password) = config.redis_password.expose() {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info).map_err(|e| unreachable(&e))?;
        // One blocking check at start-up, so that a wrong URL or password
        // stops the start with a clear error rather than 503s later.
        let mut check = client
            .get_connection_with_timeout(config.redis_timeout)
            .map_err(|e| unreachable(&e))?;
        check
            .set_read_timeout(Some(config.redis_timeout))
            .map_err(|e| unreachable(&e))?;
        redis::cmd("PING")
            .query::<String>(&mut check)
            .map_err(|e| unreachable(&e))?;
        drop(check);
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.redis_timeout))
            .set_response_timeout(Some(config.redis_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| unreachable(&e))?;
        tracing::info!(url = %shown_url, prefix = %config.redis_prefix, "phone records in Redis");
        Ok(SharedRecords {
            client,
            connection,
            prefix: config.redis_prefix.clone(),
            shown_url,
            timeout: config.redis_timeout,
            lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1),
            wait_limit: lease,
            begin: Script::new(BEGIN),
            commit: Script::new(COMMIT),
            release: Script::new(RELEASE),
            housekeeping: Script::new(HOUSEKEEPING),
            failing: AtomicBool::new(false),
            failure: Mutex::new(None),
            round_trips: AtomicU64::new(0),
            live_sessions: AtomicU64::new(0),
            opted_out: AtomicU64::new(0),
        })
    }

    fn key(&self, space: &str, phone: &PhoneNumber) -> String {
        format!("{}{space}{}", self.prefix, phone.e164())
    }

    fn index(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs one script, bounded in time, noting whether Redis answered.
    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let result = invoke(&self.connection, self.timeout, invocation).await;
        self.noted(what, result)
    }

    /// Runs one pipeline (one round trip), bounded in time, noting whether
    /// Redis answered.
    async fn pipeline<T: redis::FromRedisValue>(
        &self,
        what: &str,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let result = query(&self.connection, self.timeout, pipe).await;
        self.noted(what, result)
    }

    fn noted<T>(&self, what: &str, result: redis::RedisResult<T>) -> Result<T, StoreError> {
        match result {
            Ok(value) => {
                self.note_ok();
                Ok(value)
            }
            Err(e) => Err(self.note_failure(what, &e)),
        }
    }

    fn note_ok(&self) {
        if self.failing.swap(false, Ordering::AcqRel) {
            tracing::info!(url = %self.shown_url, "Redis answers again");
            *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    fn note_failure(&self, what: &str, e: &redis::RedisError) -> StoreError {
        let reason = format!("Redis at {} failed ({what}): {e}", self.shown_url);
        if !self.failing.swap(true, Ordering::AcqRel) {
            tracing::error!("{reason}; webhooks get 503 until it answers again");
        }
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
        StoreError::Unavailable(reason)
    }

    /// Why Redis is failing, if it is.
    pub fn failure(&self) -> Option<String> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits for `phone`'s lease and reads its record and Redis's time.
    /// `offset_ms` is added to that time (how far a test moved its clock; 0
    /// otherwise).
    pub async fn begin(&self, phone: PhoneNumber, offset_ms: i64) -> Result<Begun, StoreError> {
        let token = new_token();
        let started = Instant::now();
        let mut backoff = Duration::from_millis(1);
        let record_key = self.key("p:", &phone);
        let lease_key = self.key("l:", &phone);
        loop {
            let mut invocation = self.begin.key(&record_key);
            invocation.key(&lease_key).arg(&token).arg(self.lease_ms);
            let reply: Vec<Value> = self.run("begin a turn", &invocation).await?;
            let now_ms = shift(integer(reply.get(1)).unwrap_or(0), offset_ms);
            if integer(reply.first()) == Some(1) {
                let version = match reply.get(2) {
                    Some(Value::Nil) | None => 0,
                    Some(v) => integer(Some(v))
                        .and_then(|v| u64::try_from(v).ok())
                        .ok_or_else(|| corrupt("its version"))?,
                };
                let record = match reply.get(3) {
                    Some(Value::BulkString(bytes)) => Some(PhoneRecord::decode(bytes)?),
                    _ => None,
                };
                return Ok(Begun {
                    lease: Lease {
                        phone,
                        token,
                        version,
                        released: false,
                    },
                    record,
                    now_ms,
                });
            }
            if started.elapsed() >= self.wait_limit {
                return Err(StoreError::Unavailable(format!(
                    "phone {} stayed in another instance's turn for {:?}",
                    phone.masked(),
                    self.wait_limit
                )));
            }
            let held_for = integer(reply.get(2)).and_then(|ms| u64::try_from(ms).ok());
            let wait = held_for.map_or(backoff, |ms| backoff.min(Duration::from_millis(ms.max(1))));
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_millis(20));
        }
    }

    /// Writes `record` under `lease` (or deletes it when nothing in it is
    /// live at `now_ms`) and releases the lease.
    pub async fn commit(
        &self,
        lease: &mut Lease,
        record: &mut PhoneRecord,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let phone = lease.phone.e164();
        let over = record.is_over(now_ms);
        let bytes = if over { Vec::new() } else { record.encode() };
        let until = record.live_until();
        let ttl_ms = until.map_or(0, |u| u.saturating_sub(now_ms).max(1));
        let end_of_life = until.map_or_else(|| "+inf".to_owned(), |u| u.to_string());
        let session_until = record
            .session
            .as_ref()
            .map_or(0, |s| s.expires_at_ms.max(1));
        let opted_out = u8::from(record.opted_out_at_ms.is_some());
        let mut invocation = self.commit.key(self.key("p:", &lease.phone));
        invocation
            .key(self.key("l:", &lease.phone))
            .key(self.index("phones"))
            .key(self.index("expiry"))
            .key(self.index("sessions"))
            .key(self.index("optouts"))
            .key(self.index("versions"))
            .arg(&lease.token)
            .arg(lease.version)
            .arg(bytes)
            .arg(ttl_ms)
            .arg(&phone)
            .arg(end_of_life)
            .arg(session_until)
            .arg(opted_out);
        let reply: Vec<Value> = self.run("commit an exchange", &invocation).await?;
        if integer(reply.first()) != Some(1) {
            let why = match reply.get(1) {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => "refused".to_owned(),
            };
            return Err(StoreError::Unavailable(format!(
                "the commit for {} was refused: {why}",
                lease.phone.masked()
            )));
        }
        lease.version = integer(reply.get(1))
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(lease.version + 1);
        lease.released = true;
        Ok(())
    }

    /// Gives the lease back when the turn wrote nothing.
    pub async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut invocation = self.release.key(self.key("l:", &lease.phone));
        invocation.arg(&lease.token);
        let _: i64 = self.run("release a turn", &invocation).await?;
        Ok(())
    }

    /// Prunes the indexes of what Redis expired and refreshes the counts;
    /// also the ping that notices Redis is back.
    pub async fn housekeep(&self, offset_ms: i64) -> Result<u64, StoreError> {
        let mut invocation = self.housekeeping.key(self.index("expiry"));
        invocation
            .key(self.index("phones"))
            .key(self.index("sessions"))
            .key(self.index("optouts"))
            .arg(offset_ms)
            .arg(format!("{}p:", self.prefix));
        let reply: Vec<i64> = self.run("housekeeping", &invocation).await?;
        let count = |i: usize| reply.get(i).copied().and_then(|n| u64::try_from(n).ok());
        let pruned = count(0).unwrap_or(0);
        self.live_sessions
            .store(count(1).unwrap_or(0), Ordering::Relaxed);
        self.opted_out
            .store(count(2).unwrap_or(0), Ordering::Relaxed);
        Ok(pruned)
    }

    /// Phones with a record after `after`, in phone order, at most `limit`.
    /// Also the last name listed, to go on from: a page of names that are
    /// not phone numbers (logged) is not the end of the list.
    pub async fn phones_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<PhoneNumber>, Option<String>), StoreError> {
        let start = after.map_or_else(|| "-".to_owned(), |p| format!("({p}"));
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGEBYLEX")
            .arg(self.index("phones"))
            .arg(start)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(limit);
        let (names,): (Vec<String>,) = self.pipeline("list phones", &pipe).await?;
        let phones = names
            .iter()
            .filter_map(|name| {
                let phone = PhoneNumber::from_stored(name);
                if phone.is_none() {
                    tracing::warn!(
                        "the phone index holds an entry that is not a phone number ({} characters); skipped",
                        name.len()
                    );
                }
                phone
            })
            .collect();
        Ok((phones, names.last().cloned()))
    }

    /// The records of `phones` as stored (those that expired are left out).
    pub async fn read(
        &self,
        phones: &[PhoneNumber],
    ) -> Result<Vec<(PhoneNumber, PhoneRecord)>, StoreError> {
        let mut pipe = redis::pipe();
        for phone in phones {
            pipe.cmd("HGET").arg(self.key("p:", phone)).arg("r");
        }
        let values: Vec<Option<Vec<u8>>> = self.pipeline("read records", &pipe).await?;
        let mut records = Vec::with_capacity(phones.len());
        for (phone, bytes) in phones.iter().zip(values) {
            if let Some(bytes) = bytes {
                records.push((*phone, PhoneRecord::decode(&bytes)?));
            }
        }
        Ok(records)
    }

    /// Makes `file` (a directory file that loaded cleanly here) the one
    /// every instance uses: stored under `directory:file` with its hash in
    /// `directory:hash`, in one transaction, and the hash published on the
    /// `directory` channel.
    pub async fn publish_directory(&self, file: &[u8]) -> Result<String, StoreError> {
        let hash = content_hash(file);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set(self.index("directory:file"), file)
            .ignore()
            .set(self.index("directory:hash"), &hash)
            .ignore()
            .publish(self.index("directory"), &hash)
            .ignore();
        self.pipeline::<()>("publish the directory", &pipe).await?;
        Ok(hash)
    }

    /// The directory file last published, with its hash.
    pub async fn published_directory(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.get(self.index("directory:hash"))
            .get(self.index("directory:file"));
        let (hash, file): (Option<String>, Option<Vec<u8>>) =
            self.pipeline("read the directory", &pipe).await?;
        Ok(hash.zip(file))
    }

    /// The hashes published on the `directory` channel from now on; the
    /// stream ends when the connection is lost (subscribe again).
    pub async fn directory_changes(
        &self,
    ) -> Result<impl futures_util::Stream<Item = String> + Send + 'static, StoreError> {
        let subscribed = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(self.index("directory")).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::time::timeout(self.timeout, subscribed)
            .await
            .unwrap_or_else(|_| Err((redis::ErrorKind::Io, "no answer in time").into()))
            .map_err(|e| self.note_failure("subscribe to directory changes", &e))?;
        use futures_util::StreamExt;
        Ok(pubsub
            .into_on_message()
            .filter_map(|message| std::future::ready(message.get_payload::<String>().ok())))
    }

    /// Script invocations and other commands sent, since start.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Live sessions at the last housekeeping.
    pub fn live_sessions(&self) -> u64 {
        self.live_sessions.load(Ordering::Relaxed)
    }

    /// Phones opted out at the last housekeeping.
    pub fn opted_out(&self) -> u64 {
        self.opted_out.load(Ordering::Relaxed)
    }
}

impl Lease {
    /// Whether a commit already gave the lease back.
    pub fn is_released(&self) -> bool {
        self.released
    }
}

/// `pipe` on `connection`, given up after `timeout`.
async fn query<T: redis::FromRedisValue>(
    connection: &ConnectionManager,
    timeout: Duration,
    pipe: &redis::Pipeline,
) -> redis::RedisResult<T> {
    let mut connection = connection.clone();
    tokio::time::timeout(timeout, pipe.query_async(&mut connection))
        .await
        .unwrap_or_else(|_| Err(no_answer()))
}

/// A script on `connection` (EVALSHA, loading it if Redis lost it), given
/// up after `timeout`.
async fn invoke<T: redis::FromRedisValue>(
    connection: &ConnectionManager,
    timeout: Duration,
    invocation: &redis::ScriptInvocation<'_>,
) -> redis::RedisResult<T> {
    let mut connection = connection.clone();
    tokio::time::timeout(timeout, invocation.invoke_async(&mut connection))
        .await
        .unwrap_or_else(|_| Err(no_answer()))
}

fn no_answer() -> redis::RedisError {
    (
        redis::ErrorKind::Io,
        "no answer within storage.redis_timeout",
    )
        .into()
}

/// How a directory file is told apart from another: SHA-1 of its bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Int(n) => Some(*n),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn shift(ms: i64, offset_ms: i64) -> u64 {
    u64::try_from(ms.saturating_add(offset_ms)).unwrap_or(0)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Codec(super::codec::CodecError::Corrupt {
        what: "phone record in Redis",
        reason: format!("{what} is not a number"),
    })
}

/// A lease token no other turn will ever hold.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    // A clock-derived token is still unique enough if the OS has no
    // randomness to give (the version check is the real fence).
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_show_in_a_url() {
        assert_eq!(
            redact_url("redis://:hunter2@db.example:6379/0"),
            "redis://:***@db.example:6379/0"
        );
        assert_eq!(
            redact_url("rediss://app:s3cr%40t@db.example/1"),
            "rediss://app:***@db.example/1"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("unix:///run/redis.sock"),
            "unix:///run/redis.sock"
        );
        assert_eq!(
            redact_url("unix:///run/redis.sock?db=1&pass=hunter2"),
            "unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(
            redact_url("redis://:pa/ss@db.example:6379"),
            "redis://:***@db.example:6379"
        );
        assert_eq!(redact_url("hunter2"), "(not a URL)");
    }
}
