//! The caching reverse proxy: origin connections, cache keys, caching policy, stored
//! metadata, request collapsing and invalidations. The exchange itself lives in
//! `conn::proxy`.

pub mod failover;
pub mod fields;
pub mod fills;
pub mod health;
pub mod key;
pub mod meta;
pub mod origin_request;
pub mod parents;
pub mod policy;
pub mod prefetch;
pub mod s3;
pub mod upstream;

use crate::http::Method;
use cache_store::{Store, Writer};
use config::{CacheBehavior, Config};
use fills::Fills;
use key::KeyPolicy;
use policy::Ttls;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use upstream::OriginClient;

/// Process-wide proxy state, shared by every worker (and the admin listener).
pub struct Shared {
    pub store: Store,
    pub fills: Arc<Fills>,
    /// Sequence number of the latest invalidation.
    pub epoch: AtomicU64,
    /// Recent invalidations (sequence, key prefix). A fill that began before one of them and
    /// whose key it covers is not stored; commits and registrations take this lock.
    recent: Mutex<std::collections::VecDeque<(u64, Vec<u8>)>>,
    /// `Via` value: `1.1 <node> (slabfront)`.
    pub via: String,
    /// The node name used in `Cache-Status`.
    pub node: String,
    pub invalidations: Mutex<Vec<Invalidation>>,
    /// Reads cold slab ranges into memory off the event loops.
    pub prefetch: prefetch::Prefetcher,
}

/// One invalidation request, kept for `GET /invalidations/<id>`.
#[derive(Debug, Clone)]
pub struct Invalidation {
    pub id: String,
    pub paths: Vec<String>,
    pub created: u64,
    pub completed: bool,
    pub removed: usize,
}

impl Shared {
    pub fn new(store: Store, node: String) -> std::io::Result<Self> {
        Ok(Shared {
            prefetch: prefetch::Prefetcher::start(store.clone())?,
            store,
            fills: Arc::new(Fills::default()),
            epoch: AtomicU64::new(0),
            recent: Mutex::new(std::collections::VecDeque::new()),
            via: format!("1.1 {node} (slabfront)"),
            node,
            invalidations: Mutex::new(Vec::new()),
        })
    }

    /// Removes every stored response for these CloudFront invalidation paths (exact paths,
    /// or a trailing `*` for a prefix; query strings ignored). Durable once it returns.
    pub fn invalidate(&self, paths: &[String]) -> usize {
        self.invalidate_in(b"", paths)
    }

    /// Invalidates paths of one distribution: its keys begin with `key_prefix`
    /// (`ProxyWorker::key_prefix`).
    pub fn invalidate_in(&self, key_prefix: &[u8], paths: &[String]) -> usize {
        let mut n = 0;
        for p in paths {
            let p = p.split('?').next().unwrap_or_default();
            let mut prefix = key_prefix.to_vec();
            if p == "*" || p == "/*" {
            } else if let Some(path_prefix) = p.strip_suffix('*') {
                prefix.extend_from_slice(path_prefix.as_bytes());
            } else {
                prefix.extend_from_slice(p.as_bytes());
                prefix.push(0);
            }
            n += self.invalidate_prefix(&prefix);
        }
        n
    }

    /// Removes every stored response whose key starts with `prefix`; fills in progress for
    /// those keys will not be stored.
    pub fn invalidate_prefix(&self, prefix: &[u8]) -> usize {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let seq = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
            recent.push_back((seq, prefix.to_vec()));
            while recent.len() > RECENT_INVALIDATIONS {
                recent.pop_front();
            }
        }
        self.store.remove_prefix(prefix)
    }

    /// Runs `commit` unless an invalidation since `epoch` covers `key` (then false).
    pub fn commit_unless_invalidated(&self, key: &[u8], epoch: u64, commit: impl FnOnce() -> bool) -> bool {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.epoch.load(Ordering::SeqCst);
        if now != epoch {
            let oldest = recent.front().map_or(u64::MAX, |(s, _)| *s);
            // Older than what is remembered: be safe.
            if oldest > epoch + 1 {
                return false;
            }
            if recent.iter().any(|(s, p)| *s > epoch && key.starts_with(p)) {
                return false;
            }
        }
        commit()
    }
}

/// Invalidations remembered for fills in progress.
const RECENT_INVALIDATIONS: usize = 4096;

/// A set of methods as a bit mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Methods(u16);

impl Methods {
    pub fn from_names(names: &[String]) -> Self {
        let mut m = 0;
        for n in names {
            m |= match n.to_ascii_uppercase().as_str() {
                "GET" => bit(Method::Get),
                "HEAD" => bit(Method::Head),
                "OPTIONS" => bit(Method::Options),
                "PUT" => bit(Method::Put),
                "POST" => bit(Method::Post),
                "PATCH" => bit(Method::Patch),
                "DELETE" => bit(Method::Delete),
                _ => 0,
            };
        }
        Methods(m)
    }

    /// All seven methods: then extension methods pass through too.
    pub fn is_all(self) -> bool {
        self.0.count_ones() == 7
    }

    pub fn contains(self, m: Method) -> bool {
        self.0 & bit(m) != 0
    }

    /// For `Allow` headers.
    pub fn names(self) -> String {
        let all = [
            Method::Get,
            Method::Head,
            Method::Options,
            Method::Put,
            Method::Post,
            Method::Patch,
            Method::Delete,
        ];
        let v: Vec<&str> = all
            .iter()
            .filter(|m| self.contains(**m))
            .map(|m| m.as_str())
            .collect();
        v.join(", ")
    }
}

fn bit(m: Method) -> u16 {
    1 << (m as u16)
}

/// A cache behavior, ready for the request path.
#[derive(Debug, Clone)]
pub struct BehaviorRt {
    pub ttls: Ttls,
    /// Cookies reach the origin, so `Set-Cookie` may be stored with the response.
    pub store_set_cookie: bool,
    pub allowed: Methods,
    pub cached: Methods,
    pub key: KeyPolicy,
    /// Compress at the edge (`compress = true`).
    pub compress: bool,
}

impl BehaviorRt {
    pub fn new(b: &CacheBehavior) -> Self {
        BehaviorRt {
            ttls: Ttls {
                min: b.min_ttl,
                default: b.default_ttl,
                max: b.max_ttl,
            },
            store_set_cookie: b.cookies != config::KeyPart::None,
            allowed: Methods::from_names(&b.allowed_methods),
            cached: Methods::from_names(&b.cached_methods),
            key: KeyPolicy::new(&b.query_strings, &b.headers, &b.cookies),
            compress: b.compress,
        }
    }
}

/// An `[[error_responses]]` entry.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub code: u16,
    pub page_path: Option<String>,
    pub response_code: Option<u16>,
    pub ttl: u64,
}

/// One worker's proxy state.
pub struct ProxyWorker {
    pub shared: Arc<Shared>,
    /// By origin index; `None` for directory origins.
    pub origins: Vec<Option<OriginClient>>,
    /// 0 = the default behavior, `i + 1` = `behaviors[i]`.
    pub behaviors: Vec<BehaviorRt>,
    pub errors: Vec<ErrorPage>,
    /// Put before every cache key of this distribution (empty for the implicit one), so the
    /// same path on two distributions never shares an object.
    pub key_prefix: Vec<u8>,
    /// Appends small objects to this worker's own open segment.
    pub writer: RefCell<Writer>,
    /// `[server.compression]`: the levels of compressed variants.
    pub compression: config::Compression,
    /// When a hit last found slab pages out of memory (see `memory_short`).
    cold: ColdClock,
    /// Entries found resident lately (see `resident_lately`).
    memo: ResidentMemo,
}

/// How long a residency check of an entry is taken as still true.
const MEMO_FOR: std::time::Duration = std::time::Duration::from_secs(1);
const MEMO_SLOTS: usize = 4096;

/// A slot of [`ResidentMemo`]: an entry's offset, the length checked, and when.
type MemoSlot = (u64, u64, Option<std::time::Instant>);

/// Entries found resident lately, by slab offset: direct-mapped and of fixed size (no
/// allocation per hit). Allocated at the first note: every distribution has a memo per
/// worker, and an edge with thousands of distributions rebuilds them all on each reload.
#[derive(Default)]
struct ResidentMemo(RefCell<Box<[MemoSlot]>>);

impl ResidentMemo {
    fn slot(off: u64) -> usize {
        // Entries are at least 64 bytes apart; Fibonacci hashing spreads their offsets.
        ((off / 64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - MEMO_SLOTS.trailing_zeros())) as usize
    }

    fn note(&self, off: u64, len: u64, now: std::time::Instant) {
        let mut slots = self.0.borrow_mut();
        if slots.is_empty() {
            *slots = vec![(0, 0, None); MEMO_SLOTS].into_boxed_slice();
        }
        slots[Self::slot(off)] = (off, len, Some(now));
    }

    fn fresh(&self, off: u64, len: u64, now: std::time::Instant) -> bool {
        let Some(&(o, l, at)) = self.0.borrow().get(Self::slot(off)) else {
            return false;
        };
        o == off && len <= l && at.is_some_and(|t| now.saturating_duration_since(t) < MEMO_FOR)
    }
}

/// How long after a cold hit large hits avoid sending from the mapping.
const SHORT_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// When a hit last found slab pages out of memory.
#[derive(Default)]
struct ColdClock(std::cell::Cell<Option<std::time::Instant>>);

impl ColdClock {
    fn saw(&self, now: std::time::Instant) {
        self.0.set(Some(now));
    }

    fn recent(&self, now: std::time::Instant) -> bool {
        self.0
            .get()
            .is_some_and(|t| now.saturating_duration_since(t) < SHORT_FOR)
    }
}

impl ProxyWorker {
    pub fn new(
        cfg: &Config,
        shared: Arc<Shared>,
        tls: &[Option<Arc<rustls::ClientConfig>>],
    ) -> Result<Self, String> {
        let mut origins = Vec::with_capacity(cfg.origins.len());
        for (i, o) in cfg.origins.iter().enumerate() {
            origins.push(match &o.domain_name {
                Some(_) => Some(OriginClient::new(o, tls.get(i).cloned().flatten())?),
                None => None,
            });
        }
        // Origin groups follow the origins, each a client of its primary that knows its
        // secondary (a behavior targeting group `g` targets index `origins.len() + g`).
        for g in &cfg.origin_groups {
            let index = |id: &str| cfg.origins.iter().position(|o| o.id == id);
            // A group is of the top-level origins (a view of one distribution may lack them:
            // it then has no client, and no behavior of that view targets it).
            let (Some(p), Some(s)) = (
                g.members.first().and_then(|m| index(m)),
                g.members.get(1).and_then(|m| index(m)),
            ) else {
                origins.push(None);
                continue;
            };
            let mut c = OriginClient::new(&cfg.origins[p], tls.get(p).cloned().flatten())?;
            c.group = Some(failover::GroupLink {
                secondary: s,
                codes: g.failover_status_codes.clone(),
            });
            origins.push(Some(c));
        }
        // Parents (shield nodes) follow the groups.
        parents::attach(cfg, &mut origins)?;
        let mut behaviors = vec![BehaviorRt::new(&cfg.default_cache_behavior)];
        behaviors.extend(cfg.behaviors.iter().map(BehaviorRt::new));
        let errors = cfg
            .error_responses
            .iter()
            .map(|e| ErrorPage {
                code: e.error_code,
                page_path: e.response_page_path.clone(),
                response_code: e.response_code,
                ttl: e.error_caching_min_ttl,
            })
            .collect();
        let writer = RefCell::new(shared.store.writer());
        Ok(ProxyWorker {
            shared,
            origins,
            behaviors,
            errors,
            key_prefix: Vec::new(),
            writer,
            compression: cfg.server.compression,
            cold: ColdClock::default(),
            memo: ResidentMemo::default(),
        })
    }

    /// Records that a hit found part of its body out of memory.
    pub fn saw_cold(&self, now: std::time::Instant) {
        self.cold.saw(now);
    }

    /// Memory is short when a hit found pages out of memory within the last `SHORT_FOR`:
    /// the page cache is then evicting slab pages as fast as they come in, and a page found
    /// resident can be gone by the time a send from the mapping reaches it (a major fault
    /// in the worker, stalling every connection it serves).
    pub fn memory_short(&self, now: std::time::Instant) -> bool {
        self.cold.recent(now)
    }

    /// Whether `len` bytes of the slab at `off` were found resident within `MEMO_FOR` and no
    /// hit has found pages out of memory since `SHORT_FOR`: a hot entry then costs no
    /// `cachestat` per hit (it was 6.5% of the core on 1 KiB hits). Under memory pressure
    /// every hit checks.
    pub fn resident_lately(&self, off: u64, len: u64, now: std::time::Instant) -> bool {
        !self.memory_short(now) && self.memo.fresh(off, len, now)
    }

    /// Records a residency check that found `len` bytes at `off` in memory.
    pub fn saw_resident(&self, off: u64, len: u64, now: std::time::Instant) {
        self.memo.note(off, len, now);
    }

    pub fn error_page(&self, code: u16) -> Option<&ErrorPage> {
        self.errors.iter().find(|e| e.code == code)
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn memory_is_short_for_a_while_after_a_cold_hit() {
        let c = ColdClock::default();
        let t = Instant::now();
        assert!(!c.recent(t), "nothing cold seen yet");
        c.saw(t);
        assert!(c.recent(t));
        assert!(c.recent(t + SHORT_FOR - Duration::from_millis(1)));
        assert!(!c.recent(t + SHORT_FOR), "short only for SHORT_FOR");
        c.saw(t + SHORT_FOR * 3);
        assert!(
            c.recent(t + SHORT_FOR * 3 + Duration::from_millis(5)),
            "a new cold hit renews it"
        );
    }

    #[test]
    fn residency_is_remembered_briefly_and_per_entry() {
        let m = ResidentMemo::default();
        let t = Instant::now();
        assert!(!m.fresh(4096, 100, t), "nothing checked yet");
        m.note(4096, 100, t);
        assert!(m.fresh(4096, 100, t + MEMO_FOR - Duration::from_millis(1)));
        assert!(m.fresh(4096, 64, t), "a shorter range of the same entry");
        assert!(!m.fresh(4096, 101, t), "more bytes than were checked");
        assert!(!m.fresh(4096, 100, t + MEMO_FOR), "only for MEMO_FOR");
        assert!(!m.fresh(4160, 100, t), "another entry");
        // Entries 64 bytes apart land in different slots: noting one keeps the other.
        m.note(4160, 100, t);
        assert!(m.fresh(4096, 100, t) && m.fresh(4160, 100, t));
        // A colliding entry replaces the slot: the old one is checked again, never wrongly
        // taken as resident.
        let other = (1..1_000_000u64)
            .map(|i| 4096 + i * 64)
            .find(|&o| ResidentMemo::slot(o) == ResidentMemo::slot(4096))
            .unwrap();
        m.note(other, 100, t);
        assert!(!m.fresh(4096, 100, t) && m.fresh(other, 100, t));
    }
}
