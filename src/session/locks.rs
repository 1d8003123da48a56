//! One message per phone at a time.
//!
//! [`PhoneLocks::lock`] hands out an async lock per phone number. Every change
//! to a phone's session (the webhook, the admin API's delete, the sweeper)
//! holds it, so two webhooks from the same sender arriving together run one
//! after the other and never lose an update, while different phones run in
//! parallel. An entry lives only while someone holds or waits for it: the
//! last guard to drop removes it, so idle phones leave nothing behind.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use crate::phone::PhoneNumber;

/// Shards keep unrelated phones from contending on one map lock.
const SHARDS: usize = 64;

type Shard = Mutex<HashMap<PhoneNumber, Arc<tokio::sync::Mutex<()>>>>;

/// The per-phone locks.
#[derive(Debug)]
pub struct PhoneLocks {
    shards: Box<[Shard]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for PhoneLocks {
    fn default() -> Self {
        PhoneLocks {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

/// Held while a phone's message is processed; dropping it releases the turn.
#[derive(Debug)]
pub struct PhoneTurn<'a> {
    guard: Option<OwnedMutexGuard<()>>,
    phone: PhoneNumber,
    locks: &'a PhoneLocks,
}

impl PhoneLocks {
    fn shard(&self, phone: &PhoneNumber) -> &Shard {
        &self.shards[(self.hasher.hash_one(phone) as usize) % SHARDS]
    }

    /// Waits for this phone's turn.
    pub async fn lock(&self, phone: PhoneNumber) -> PhoneTurn<'_> {
        let mutex = {
            let mut shard = self.shard(&phone).lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(shard.entry(phone).or_default())
        };
        let guard = mutex.lock_owned().await;
        PhoneTurn {
            guard: Some(guard),
            phone,
            locks: self,
        }
    }

    /// Phones with a lock held or awaited right now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for PhoneTurn<'_> {
    fn drop(&mut self) {
        // Release the turn first, then drop the entry if nobody else has it.
        drop(self.guard.take());
        let mut shard = self
            .locks
            .shard(&self.phone)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(mutex) = shard.get(&self.phone) {
            // Only the map holds it: no task holds or waits for this lock.
            if Arc::strong_count(mutex) == 1 {
                shard.remove(&self.phone);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::Region;

    #[tokio::test]
    async fn entries_do_not_outlive_their_users() {
        let locks = PhoneLocks::default();
        let phone = PhoneNumber::parse("+919840930854", Region::default()).unwrap();
        {
            let _turn = locks.lock(phone).await;
            assert_eq!(locks.len(), 1);
        }
        assert!(locks.is_empty());
    }

    #[tokio::test]
    async fn one_turn_at_a_time_per_phone() {
        let locks = Arc::new(PhoneLocks::default());
        let phone = PhoneNumber::parse("+919840930854", Region::default()).unwrap();
        let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (locks, inside) = (locks.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = locks.lock(phone).await;
                assert_eq!(inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert!(locks.is_empty());
    }
}
