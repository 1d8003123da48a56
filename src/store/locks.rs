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

/// A phone's lock and how many turns hold or await it.
#[derive(Debug, Default)]
struct Slot {
    mutex: Arc<tokio::sync::Mutex<()>>,
    users: usize,
}

type Shard = Mutex<HashMap<PhoneNumber, Slot>>;

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
    // Fields drop in order: the turn is released before the slot is left.
    _guard: OwnedMutexGuard<()>,
    _user: SlotUser<'a>,
}

/// One holder or waiter of a phone's slot. Counted rather than inferred
/// from the lock's reference count, so a waiter cancelled mid-wait (a
/// request timeout) still leaves, and the slot goes with its last user.
#[derive(Debug)]
struct SlotUser<'a> {
    phone: PhoneNumber,
    locks: &'a PhoneLocks,
}

impl PhoneLocks {
    fn shard(&self, phone: &PhoneNumber) -> std::sync::MutexGuard<'_, HashMap<PhoneNumber, Slot>> {
        self.shards[(self.hasher.hash_one(phone) as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for this phone's turn.
    pub async fn lock(&self, phone: PhoneNumber) -> PhoneTurn<'_> {
        let mutex = {
            let mut shard = self.shard(&phone);
            let slot = shard.entry(phone).or_default();
            slot.users += 1;
            Arc::clone(&slot.mutex)
        };
        let user = SlotUser { phone, locks: self };
        let guard = mutex.lock_owned().await;
        PhoneTurn {
            _guard: guard,
            _user: user,
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

impl Drop for SlotUser<'_> {
    fn drop(&mut self) {
        let mut shard = self.locks.shard(&self.phone);
        if let Some(slot) = shard.get_mut(&self.phone) {
            slot.users -= 1;
            if slot.users == 0 {
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
    async fn a_waiter_cancelled_mid_wait_leaves_nothing_behind() {
        use futures_util::FutureExt;
        let locks = PhoneLocks::default();
        let phone = PhoneNumber::parse("+919840930854", Region::default()).unwrap();
        let turn = locks.lock(phone).await;
        let mut waiting = Box::pin(locks.lock(phone));
        assert!(waiting.as_mut().now_or_never().is_none(), "it waits");
        // The turn ends, then the waiter is cancelled before it runs again.
        drop(turn);
        drop(waiting);
        assert!(locks.is_empty());
        // And the phone's next turn is not blocked by the cancelled waiter.
        assert!(locks.lock(phone).now_or_never().is_some());
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
