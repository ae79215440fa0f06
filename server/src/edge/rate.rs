//! The rate-based rules' counters: one fixed-size table shared by every worker (and every
//! rule and distribution), of atomic counters, so that a limit holds for the process as a
//! whole and nothing is locked on the request path.
//!
//! A slot is 32 bytes: a 32-bit tag (from a keyed hash of rule and client IP) and seven
//! 32-bit sub-window counters, each a 12-bit sub-window number and a 20-bit count. A rule's
//! window is six sub-windows (10 s of a 60 s window, 100 s of a 600 s one); a request
//! is counted in the current sub-window, and the rule's count for a client is the sum of the
//! six newest. Counting is a `fetch_add` whose result decides, so however many workers count
//! at once, exactly `limit` requests fit in a window: the table is exact for the counts it
//! holds; the window slides in steps of a sixth.
//!
//! A client's slot is in one of two groups of 16 slots its hash picks (a new client goes to
//! the group with fewer live clients); a slot whose sub-windows have all expired is taken
//! over by the next new client. Memory is fixed: [`SLOTS`] × 32 bytes = 64 MiB of virtual memory, allocated zeroed
//! (so only the pages touched are resident), whatever the number of clients. A million
//! distinct clients (of one rule) within a window fill under half of it; when both groups
//! are held by other live clients the request is not counted (fail open) and
//! [`Table::full`] says how often.
#![allow(unsafe_code)]

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Instant;

/// Slots in the table (2^21).
pub const SLOTS: usize = 1 << 21;
/// Words per slot: the tag, then the sub-window counters.
const WORDS: usize = 8;
/// Sub-windows kept per slot (one more than a window, so the current one never reuses a
/// counter the window still reads).
const RING: u64 = (WORDS - 1) as u64;
/// Sub-windows in a rule's window.
pub const SUBS: u64 = 6;
/// Slots in a group (a client's slot is in one of two groups).
const GROUP: usize = 16;
const COUNT_BITS: u32 = 20;
const COUNT_MASK: u32 = (1 << COUNT_BITS) - 1;
const EPOCH_MASK: u32 = (1 << (32 - COUNT_BITS)) - 1;
/// A counter stops short of its field's end (a burst above ~100,000 requests per second
/// from one client saturates it: the client is over any limit a sub-window can hold).
const COUNT_STOP: u32 = COUNT_MASK - 4096;

/// The process's table.
pub static TABLE: LazyLock<Table> = LazyLock::new(|| Table::new(SLOTS));

/// The counters, and how many requests found no slot.
pub struct Table {
    words: Box<[AtomicU32]>,
    mask: usize,
    hasher: ahash::RandomState,
    start: Instant,
    full: AtomicU64,
}

/// What counting a request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// This request is within the limit (its number in the window).
    Within(u64),
    /// Over the limit.
    Over(u64),
    /// No slot: not counted.
    Uncounted,
}

/// `n` zeroed atomics, allocated zeroed so that untouched pages stay unbacked.
fn zeroed(n: usize) -> Box<[AtomicU32]> {
    let layout =
        std::alloc::Layout::array::<AtomicU32>(n).unwrap_or_else(|_| std::alloc::Layout::new::<u32>());
    if layout.size() == 0 {
        return Box::new([]);
    }
    // SAFETY: the layout has a non-zero size (checked above).
    let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<AtomicU32>();
    if p.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `p` was allocated with the layout of `[AtomicU32; n]` by the global allocator
    // (the one `Box` frees with), and all-zero bytes are a valid `AtomicU32` (it has the bit
    // validity of `u32`), so the `n` elements are initialised.
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n)) }
}

impl Table {
    pub fn new(slots: usize) -> Table {
        let slots = slots.next_power_of_two().max(GROUP);
        Table {
            words: zeroed(slots * WORDS),
            mask: slots - 1,
            hasher: ahash::RandomState::new(),
            start: Instant::now(),
            full: AtomicU64::new(0),
        }
    }

    /// Requests that found no slot (not counted, let through).
    pub fn full(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }

    /// The current sub-window of a window of `window_sec`.
    pub fn epoch(&self, window_sec: u64) -> u64 {
        let sub_ms = (window_sec * 1000 / SUBS).max(1);
        self.start.elapsed().as_millis() as u64 / sub_ms
    }

    /// Counts a request of `ip` for `rule` (a rule's process-wide id) and says whether it is
    /// within `limit` requests in the window.
    pub fn hit(&self, rule: u64, ip: IpAddr, limit: u64, window_sec: u64) -> Count {
        self.hit_at(rule, ip, limit, self.epoch(window_sec))
    }

    /// [`Table::hit`] in a given sub-window.
    pub fn hit_at(&self, rule: u64, ip: IpAddr, limit: u64, epoch: u64) -> Count {
        let h = self.hasher.hash_one((rule, ip));
        let tag = (h as u32) | 1;
        let Some(slot) = self.slot(h, tag, epoch) else {
            self.full.fetch_add(1, Ordering::Relaxed);
            return Count::Uncounted;
        };
        let e = (epoch as u32) & EPOCH_MASK;
        let mut earlier = 0u64;
        for back in 1..SUBS {
            let Some(past) = epoch.checked_sub(back) else {
                break;
            };
            let w = slot[1 + (past % RING) as usize].load(Ordering::Relaxed);
            if w >> COUNT_BITS == (past as u32) & EPOCH_MASK {
                earlier += u64::from(w & COUNT_MASK);
            }
        }
        let now = self.bump(&slot[1 + (epoch % RING) as usize], e);
        let n = earlier + u64::from(now) + 1;
        if n <= limit {
            Count::Within(n)
        } else {
            Count::Over(n)
        }
    }

    /// Adds one to the current sub-window's counter (starting it afresh if it held an older
    /// sub-window): the count before this request.
    fn bump(&self, c: &AtomicU32, e: u32) -> u32 {
        let mut w = c.load(Ordering::Relaxed);
        loop {
            if w >> COUNT_BITS == e {
                if w & COUNT_MASK >= COUNT_STOP {
                    return w & COUNT_MASK;
                }
                return c.fetch_add(1, Ordering::Relaxed) & COUNT_MASK;
            }
            match c.compare_exchange_weak(w, (e << COUNT_BITS) | 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return 0,
                Err(now) => w = now,
            }
        }
    }

    fn slot_at(&self, i: usize) -> &[AtomicU32] {
        let at = (i & self.mask) * WORDS;
        &self.words[at..at + WORDS]
    }

    /// Whether every sub-window a slot holds is older than a window.
    fn expired(slot: &[AtomicU32], epoch: u64) -> bool {
        slot[1..].iter().all(|c| {
            let w = c.load(Ordering::Relaxed);
            let held = w >> COUNT_BITS;
            // Sub-window numbers wrap at 4096: "recent" is within SUBS behind, modulo that.
            let behind = ((epoch as u32).wrapping_sub(held)) & EPOCH_MASK;
            w & COUNT_MASK == 0 || behind >= SUBS as u32
        })
    }

    /// The slots of a group.
    fn group(&self, g: usize) -> impl Iterator<Item = &[AtomicU32]> {
        (0..GROUP).map(move |i| self.slot_at(g * GROUP + i))
    }

    /// The slot holding `tag` in a group (slots are claimed in order, so the first never
    /// used one ends the search).
    fn find(&self, g: usize, tag: u32) -> Option<&[AtomicU32]> {
        for s in self.group(g) {
            match s[0].load(Ordering::Acquire) {
                t if t == tag => return Some(s),
                0 => return None,
                _ => {}
            }
        }
        None
    }

    /// The client's slot: the one with its tag in either of its two groups, else a free or
    /// expired one claimed in the group with fewer live clients (two choices keep the
    /// fullest group close to the mean: a million clients in 2^21 slots leave none full).
    fn slot(&self, h: u64, tag: u32, epoch: u64) -> Option<&[AtomicU32]> {
        let groups = (self.mask + 1) / GROUP;
        let g1 = (h >> 32) as usize % groups;
        let g2 = (h.rotate_left(16) as usize ^ g1.wrapping_mul(0x9e37_79b9)) % groups;
        if let Some(s) = self.find(g1, tag).or_else(|| self.find(g2, tag)) {
            return Some(s);
        }
        let live = |g: usize| {
            self.group(g)
                .filter(|s| s[0].load(Ordering::Relaxed) != 0 && !Self::expired(s, epoch))
                .count()
        };
        let (first, second) = if live(g2) < live(g1) { (g2, g1) } else { (g1, g2) };
        for g in [first, second] {
            for s in self.group(g) {
                let t = s[0].load(Ordering::Acquire);
                if t == tag {
                    return Some(s);
                }
                if t == 0 || Self::expired(s, epoch) {
                    match s[0].compare_exchange(t, tag, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => return Some(s),
                        Err(now) if now == tag => return Some(s),
                        Err(_) => {}
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn exactly_the_limit_fits_in_a_window_and_it_slides() {
        let t = Table::new(1024);
        let within = (0..150)
            .filter(|_| matches!(t.hit_at(1, ip(1), 100, 10), Count::Within(_)))
            .count();
        assert_eq!(within, 100);
        // Another client, another rule: their own counts.
        assert_eq!(t.hit_at(1, ip(2), 100, 10), Count::Within(1));
        assert_eq!(t.hit_at(2, ip(1), 100, 10), Count::Within(1));
        // Five sub-windows later the burst is still in the window; six later it is not.
        assert!(matches!(t.hit_at(1, ip(1), 100, 15), Count::Over(_)));
        assert_eq!(t.hit_at(1, ip(1), 100, 16), Count::Within(2));
    }

    #[test]
    fn workers_counting_at_once_admit_exactly_the_limit() {
        let t = Table::new(1024);
        let admitted = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5000 {
                        if matches!(t.hit_at(7, ip(9), 10_000, 3), Count::Within(_)) {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.load(Ordering::Relaxed), 10_000);
        assert!(matches!(t.hit_at(7, ip(9), 10_000, 3), Count::Over(20_001)));
    }

    #[test]
    fn a_million_clients_fit_and_expired_slots_are_reused() {
        let t = Table::new(SLOTS);
        for i in 0..1_000_000 {
            assert_ne!(t.hit_at(3, ip(i), 10, 100), Count::Uncounted, "client {i}");
        }
        assert_eq!(t.full(), 0);
        // A window later, new clients take the expired slots.
        for i in 1_000_000..1_100_000 {
            assert_ne!(t.hit_at(3, ip(i), 10, 200), Count::Uncounted, "client {i}");
        }
        assert_eq!(t.full(), 0);
    }

    #[test]
    fn a_full_neighbourhood_fails_open_and_is_counted() {
        let t = Table::new(16);
        let mut uncounted = 0;
        for i in 0..64 {
            if t.hit_at(1, ip(i), 10, 5) == Count::Uncounted {
                uncounted += 1;
            }
        }
        assert_eq!(uncounted, 64 - 16);
        assert_eq!(t.full(), 48);
        // Those counted keep their slots.
        let kept = (0..64)
            .filter(|&i| t.hit_at(1, ip(i), 10, 5) == Count::Within(2))
            .count();
        assert_eq!(kept, 16);
    }
}
