//! The dashboard's hourly figures in Redis (see [`SharedHours`]).

use std::sync::Mutex;
use std::time::Duration;

use super::{SharedRecords, new_token};

/// The dashboard's hourly figures in Redis: hash `<prefix>hour:<hour>`,
/// one field per instance (a random id a process takes at start), value
/// the hour's encoded counts, expiring when the hour leaves retention.
/// Each instance writes only its own field, so nothing is counted twice
/// and no write loses another's; the dashboard shows the sum. A restarted
/// instance starts a new field, and its earlier one counts as another's.
/// Used from blocking threads (the figures' flush), so it speaks over a
/// plain connection.
pub struct SharedHours {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
    prefix: String,
    timeout: Duration,
    instance: String,
}

impl std::fmt::Debug for SharedHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedHours")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl SharedRecords {
    /// The dashboard's figures beside these records.
    pub fn hours(&self) -> SharedHours {
        SharedHours {
            client: self.client.clone(),
            connection: Mutex::new(None),
            prefix: self.prefix.clone(),
            timeout: self.timeout,
            instance: new_token(),
        }
    }
}

/// What the other instances wrote for one hour.
pub type OthersHour = (u64, Vec<Vec<u8>>);

impl SharedHours {
    fn hour_key(&self, hour: u64) -> String {
        format!("{}hour:{hour}", self.prefix)
    }

    fn forgotten_key(&self) -> String {
        format!("{}hours:texts-forgotten", self.prefix)
    }

    /// Runs `work` on the connection, connecting first if need be; a
    /// failed connection is dropped, to be made again next time.
    fn with<T>(
        &self,
        work: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let mut slot = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let connection = self
                .client
                .get_connection_with_timeout(self.timeout)
                .and_then(|c| {
                    c.set_read_timeout(Some(self.timeout))?;
                    c.set_write_timeout(Some(self.timeout))?;
                    Ok(c)
                })
                .map_err(|e| e.to_string())?;
            *slot = Some(connection);
        }
        let Some(connection) = slot.as_mut() else {
            return Err("no connection".to_owned());
        };
        let result = work(connection).map_err(|e| e.to_string());
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// Writes this instance's `hours`, each expiring at its `expire_at`
    /// (seconds since the epoch).
    pub fn write_own(&self, hours: &[(u64, Vec<u8>, u64)]) -> Result<(), String> {
        self.with(|c| {
            let mut pipe = redis::pipe();
            for (hour, value, expire_at) in hours {
                let key = self.hour_key(*hour);
                pipe.hset(&key, &self.instance, value.as_slice())
                    .ignore()
                    .expire_at(&key, i64::try_from(*expire_at).unwrap_or(i64::MAX))
                    .ignore();
            }
            pipe.query::<()>(c)
        })
    }

    /// What the other instances (and this one's earlier runs) wrote for
    /// each hour from `first` to `last`.
    pub fn others(&self, first: u64, last: u64) -> Result<Vec<OthersHour>, String> {
        let hours: Vec<u64> = (first..=last).collect();
        let all: Vec<std::collections::HashMap<String, Vec<u8>>> = self.with(|c| {
            let mut pipe = redis::pipe();
            for hour in &hours {
                pipe.hgetall(self.hour_key(*hour));
            }
            pipe.query(c)
        })?;
        Ok(hours
            .into_iter()
            .zip(all)
            .filter(|(_, fields)| !fields.is_empty())
            .map(|(hour, fields)| {
                let values = fields
                    .into_iter()
                    .filter(|(instance, _)| *instance != self.instance)
                    .map(|(_, value)| value)
                    .collect();
                (hour, values)
            })
            .collect())
    }

    /// Rewrites every instance's field of the hours from `first` to
    /// `last` with `rewrite` (forgetting texts), and counts one more
    /// forgetting (a counter, not a time, so that instances' clocks do not
    /// matter), so that every running instance forgets its own too; the
    /// new count.
    pub fn rewrite_all(
        &self,
        first: u64,
        last: u64,
        expire_at: impl Fn(u64) -> u64,
        rewrite: impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<u64, String> {
        self.with(|c| {
            let generation: u64 = redis::cmd("INCR").arg(self.forgotten_key()).query(c)?;
            for hour in first..=last {
                let key = self.hour_key(hour);
                let fields: std::collections::HashMap<String, Vec<u8>> =
                    redis::cmd("HGETALL").arg(&key).query(c)?;
                for (instance, value) in fields {
                    if let Some(rewritten) = rewrite(&value) {
                        redis::pipe()
                            .hset(&key, instance, rewritten)
                            .ignore()
                            .expire_at(&key, i64::try_from(expire_at(hour)).unwrap_or(i64::MAX))
                            .ignore()
                            .query::<()>(c)?;
                    }
                }
            }
            Ok(generation)
        })
    }

    /// How many times texts were forgotten on any instance, if ever.
    pub fn texts_forgotten(&self) -> Result<Option<u64>, String> {
        self.with(|c| redis::cmd("GET").arg(self.forgotten_key()).query(c))
    }
}
