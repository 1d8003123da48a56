//! The embedding-vector cache in Redis (see [`SharedVectors`]).

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{SharedRecords, query};

/// The embedding-vector cache in Redis: one hash per model,
/// `<prefix>vectors:<model>`, field = the SHA-1 of the text embedded (hex).
#[derive(Clone)]
pub struct SharedVectors {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

impl SharedRecords {
    /// The vector cache beside these records.
    pub fn vectors(&self) -> SharedVectors {
        SharedVectors {
            connection: self.connection.clone(),
            prefix: self.prefix.clone(),
            timeout: self.timeout,
        }
    }
}

impl SharedVectors {
    /// A cache key (model, zero byte, SHA-1) as its hash and field.
    fn place(&self, key: &[u8]) -> (String, String) {
        let split = key.iter().position(|&b| b == 0).unwrap_or(key.len());
        let model = String::from_utf8_lossy(&key[..split]);
        let hash: String = key
            .get(split + 1..)
            .unwrap_or_default()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (format!("{}vectors:{model}", self.prefix), hash)
    }

    async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, String> {
        query(&self.connection, self.timeout, pipe)
            .await
            .map_err(|e| e.to_string())
    }

    /// The stored values of `keys`, in one round trip.
    pub async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, String> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            let (hash, field) = self.place(key);
            pipe.hget(hash, field);
        }
        self.query(&pipe).await
    }

    /// Stores `values`, in one round trip.
    pub async fn put_many(&self, values: &[(&[u8], Vec<u8>)]) -> Result<(), String> {
        if values.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (key, value) in values {
            let (hash, field) = self.place(key);
            pipe.hset(hash, field, value.as_slice()).ignore();
        }
        self.query(&pipe).await
    }
}
