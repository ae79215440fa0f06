//! Request collapsing: concurrent misses for one cache key, on any worker, share one origin
//! fetch. The first becomes the leader and fetches; the others wait for it to finish and then
//! look the key up again. A leader whose response cannot be stored releases its followers at
//! once (each then fetches on its own), so an uncacheable URL never serialises its requests.
//!
//! The table is process-wide behind a mutex, touched only on misses (twice per fill), never
//! on hits.

use event_listener::Event;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FILLING: u8 = 0;
/// The response was stored: look it up.
pub const STORED: u8 = 1;
/// Not stored (uncacheable, failed, or aborted): fetch on your own.
pub const NOT_STORED: u8 = 2;

/// One fill in progress.
#[derive(Default)]
pub struct Fill {
    event: Event,
    state: AtomicU8,
}

impl Fill {
    /// Waits until the fill ends (or `timeout`); its outcome, `None` on timeout.
    pub async fn wait(&self, timeout: Duration) -> Option<u8> {
        loop {
            let listener = self.event.listen();
            let s = self.state.load(Ordering::Acquire);
            if s != FILLING {
                return Some(s);
            }
            if monoio::time::timeout(timeout, listener).await.is_err() {
                return None;
            }
        }
    }
}

/// The process-wide table of fills in progress.
#[derive(Default)]
pub struct Fills {
    map: Mutex<HashMap<Vec<u8>, Arc<Fill>, ahash::RandomState>>,
}

/// Leading or following a fill.
pub enum Role {
    Leader(Leader),
    Follower(Arc<Fill>),
}

/// Held by the one request that fetches. Dropping it without [`Leader::finish`] releases the
/// followers with `NOT_STORED`.
pub struct Leader {
    fills: Arc<Fills>,
    key: Vec<u8>,
    fill: Arc<Fill>,
    outcome: u8,
}

impl Leader {
    /// Records the outcome; the followers are woken when the leader is dropped.
    pub fn finish(mut self, outcome: u8) {
        self.outcome = outcome;
    }

    /// Wakes the followers now with this outcome.
    pub fn release(mut self, outcome: u8) {
        self.outcome = outcome;
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        {
            let mut map = self.fills.map.lock().unwrap_or_else(|e| e.into_inner());
            if map.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &self.fill)) {
                map.remove(&self.key);
            }
        }
        self.fill.state.store(self.outcome, Ordering::Release);
        self.fill.event.notify(usize::MAX);
    }
}

impl Fills {
    /// Joins the fill for `key`, leading it if none is in progress.
    pub fn join(self: &Arc<Self>, key: &[u8]) -> Role {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get(key) {
            return Role::Follower(f.clone());
        }
        let fill = Arc::new(Fill::default());
        map.insert(key.to_vec(), fill.clone());
        Role::Leader(Leader {
            fills: self.clone(),
            key: key.to_vec(),
            fill,
            outcome: NOT_STORED,
        })
    }

    /// Fills in progress (for tests and metrics).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_wake_with_the_outcome_across_threads() {
        let fills = Arc::new(Fills::default());
        let Role::Leader(leader) = fills.join(b"k") else {
            panic!("first joiner leads")
        };
        let mut followers = Vec::new();
        for _ in 0..4 {
            let Role::Follower(f) = fills.join(b"k") else {
                panic!("later joiners follow")
            };
            followers.push(std::thread::spawn(move || {
                let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                    .enable_timer()
                    .build()
                    .unwrap();
                rt.block_on(f.wait(Duration::from_secs(5)))
            }));
        }
        std::thread::sleep(Duration::from_millis(50));
        leader.finish(STORED);
        for f in followers {
            assert_eq!(f.join().unwrap(), Some(STORED));
        }
        assert!(fills.is_empty());
        // A dropped leader releases with NOT_STORED.
        let Role::Leader(l) = fills.join(b"k") else {
            panic!()
        };
        let Role::Follower(f) = fills.join(b"k") else {
            panic!()
        };
        drop(l);
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(f.wait(Duration::from_secs(1))), Some(NOT_STORED));
    }
}
