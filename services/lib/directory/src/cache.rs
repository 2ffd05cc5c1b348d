//! A per-process cache of directory answers (hosted domains, recipient resolutions), like the
//! reference server's object cache, made safe for a cluster:
//!
//! * it is used only while the process follows the cluster's change notices (`set_live`); a
//!   process that cannot hear about changes asks PostgreSQL every time;
//! * every change notice empties it (`clear`), and an answer looked up while a change arrived is
//!   not stored (a generation counter), so a stale answer cannot outlive the notice;
//! * entries also expire after a time-to-live, which bounds staleness from changes made behind
//!   the admin API's back (plain SQL);
//! * each map holds at most `max_entries`; a full map is emptied rather than grown;
//! * callers keep only answers whose staleness is harmless: a deliverable resolution (stale, it
//!   costs a bounce later) and a sender's hosted-or-not (it only classifies the sender), never
//!   a refused recipient, which would be a 5xx that senders do not retry. The admin service may
//!   run without Redis, or a notice may be lost, so staleness within the TTL is possible.
//!
//! Answers about credentials are never cached here: an authenticated session re-checks its
//! account in PostgreSQL before every message.

use crate::Resolved;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The Redis channel (under the cluster's key prefix) that announces directory changes.
pub const CHANGES_CHANNEL: &str = "directory:changed";

struct Entries<V> {
    map: HashMap<String, (Instant, V)>,
}

impl<V: Clone> Entries<V> {
    fn get(&self, key: &str, now: Instant) -> Option<V> {
        self.map
            .get(key)
            .filter(|(expires, _)| now < *expires)
            .map(|(_, value)| value.clone())
    }

    fn insert(&mut self, key: String, value: V, expires: Instant, max_entries: usize) {
        if self.map.len() >= max_entries && !self.map.contains_key(&key) {
            self.map.clear();
        }
        self.map.insert(key, (expires, value));
    }
}

/// A lookup started at one generation; stored only if no change arrived meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

pub struct DirectoryCache {
    ttl: Duration,
    max_entries: usize,
    live: AtomicBool,
    generation: AtomicU64,
    hosted: Mutex<Entries<bool>>,
    resolved: Mutex<Entries<Resolved>>,
}

impl DirectoryCache {
    /// A cache that keeps answers for `ttl` (zero disables it), at most `max_entries` per kind.
    /// It starts not live: nothing is cached until [`DirectoryCache::set_live`].
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries: max_entries.max(1),
            live: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            hosted: Mutex::new(Entries {
                map: HashMap::new(),
            }),
            resolved: Mutex::new(Entries {
                map: HashMap::new(),
            }),
        }
    }

    /// Whether change notices are being received. Either way the cache starts over empty.
    pub fn set_live(&self, live: bool) {
        self.clear();
        self.live.store(live, Ordering::SeqCst);
    }

    fn usable(&self) -> bool {
        !self.ttl.is_zero() && self.live.load(Ordering::SeqCst)
    }

    /// Forgets everything (a change notice arrived).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut hosted) = self.hosted.lock() {
            hosted.map.clear();
        }
        if let Ok(mut resolved) = self.resolved.lock() {
            resolved.map.clear();
        }
    }

    /// Take before asking PostgreSQL; hand back when storing the answer.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::SeqCst))
    }

    pub fn hosted(&self, domain: &str, now: Instant) -> Option<bool> {
        if !self.usable() {
            return None;
        }
        self.hosted.lock().ok()?.get(domain, now)
    }

    pub fn store_hosted(&self, ticket: Ticket, domain: &str, hosted: bool, now: Instant) {
        self.store(&self.hosted, ticket, domain, hosted, now);
    }

    pub fn resolved(&self, address: &str, now: Instant) -> Option<Resolved> {
        if !self.usable() {
            return None;
        }
        self.resolved.lock().ok()?.get(address, now)
    }

    pub fn store_resolved(&self, ticket: Ticket, address: &str, resolved: Resolved, now: Instant) {
        self.store(&self.resolved, ticket, address, resolved, now);
    }

    fn store<V: Clone>(
        &self,
        entries: &Mutex<Entries<V>>,
        ticket: Ticket,
        key: &str,
        value: V,
        now: Instant,
    ) {
        if !self.usable() {
            return;
        }
        let Ok(mut entries) = entries.lock() else {
            return;
        };
        // Checked under the lock: a clear() that began after the ticket was taken either
        // already bumped the generation (we skip) or empties the map after we insert.
        if self.generation.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        entries.insert(key.to_string(), value, now + self.ttl, self.max_entries);
    }
}

/// Keeps `cache` in step with the cluster: live only while subscribed to the admin API's change
/// notices (`CHANGES_CHANNEL`), emptied by each one; when the subscription breaks the cache goes
/// dark (every lookup asks PostgreSQL) until it is re-established. Runs until `shutdown`.
pub async fn follow_changes(
    redis: mc_runtime::stores::RedisStore,
    cache: std::sync::Arc<DirectoryCache>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use mc_runtime::stores::Followed;
    redis
        .follow(CHANGES_CHANNEL, &shutdown, |event| match event {
            Followed::Live => {
                cache.set_live(true);
                tracing::debug!("following directory changes; cache live");
            }
            Followed::Message(_) => cache.clear(),
            Followed::Lost(reason) => {
                cache.set_live(false);
                tracing::warn!(%reason, "not following directory changes; cache off");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rejection;

    fn live(ttl_secs: u64) -> DirectoryCache {
        let cache = DirectoryCache::new(Duration::from_secs(ttl_secs), 3);
        cache.set_live(true);
        cache
    }

    #[test]
    fn nothing_is_cached_until_live_nor_after_going_dark() {
        let cache = DirectoryCache::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        cache.store_hosted(cache.ticket(), "a.test", true, now);
        assert_eq!(cache.hosted("a.test", now), None);
        cache.set_live(true);
        cache.store_hosted(cache.ticket(), "a.test", true, now);
        assert_eq!(cache.hosted("a.test", now), Some(true));
        cache.set_live(false);
        assert_eq!(cache.hosted("a.test", now), None);
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = live(60);
        let now = Instant::now();
        let rejected = Resolved::Rejected(Rejection::UnknownUser);
        cache.store_resolved(cache.ticket(), "x@a.test", rejected.clone(), now);
        assert_eq!(
            cache.resolved("x@a.test", now + Duration::from_secs(59)),
            Some(rejected)
        );
        assert_eq!(
            cache.resolved("x@a.test", now + Duration::from_secs(60)),
            None
        );
    }

    #[test]
    fn a_change_during_a_lookup_keeps_its_answer_out() {
        let cache = live(60);
        let now = Instant::now();
        let ticket = cache.ticket();
        cache.clear();
        cache.store_hosted(ticket, "a.test", false, now);
        assert_eq!(cache.hosted("a.test", now), None);
        cache.store_hosted(cache.ticket(), "a.test", false, now);
        assert_eq!(cache.hosted("a.test", now), Some(false));
        cache.clear();
        assert_eq!(cache.hosted("a.test", now), None);
    }

    #[test]
    fn a_full_map_starts_over_instead_of_growing() {
        let cache = live(60);
        let now = Instant::now();
        for name in ["a", "b", "c", "d"] {
            cache.store_hosted(cache.ticket(), name, true, now);
        }
        assert_eq!(cache.hosted("a", now), None);
        assert_eq!(cache.hosted("d", now), Some(true));
    }

    #[test]
    fn a_zero_ttl_disables_the_cache() {
        let cache = live(0);
        let now = Instant::now();
        cache.store_hosted(cache.ticket(), "a.test", true, now);
        assert_eq!(cache.hosted("a.test", now), None);
    }
}
