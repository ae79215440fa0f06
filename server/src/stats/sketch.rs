//! The most requested URLs, by requests and by bytes, in bounded space: two Filtered
//! Space-Saving sketches (crate `topk`) over a 64-bit hash of the path, and the paths of the
//! hashes they monitor. Sketches of several seconds and workers merge into one.
//!
//! Space-Saving's guarantee, per URL: the estimate is never below the true count, and
//! `estimate - error` never above it. With `K` monitored entries, every URL with more than
//! `total / K` of the traffic is among them.

use topk::FilteredSpaceSaving;

/// Entries each sketch monitors (the dashboard shows the top 20).
pub const K: usize = 64;
/// Paths are kept up to this many bytes.
pub const MAX_URL: usize = 256;
/// Paths remembered before those no longer monitored are dropped.
const MAP_LIMIT: usize = 8 * K;

/// The same hash on every worker (fixed seeds), so that sketches merge.
fn key(path: &[u8]) -> u64 {
    static SEEDS: std::sync::LazyLock<ahash::RandomState> =
        std::sync::LazyLock::new(|| ahash::RandomState::with_seeds(0x5eed, 0x51ab, 0xf407, 0x7e57));
    SEEDS.hash_one(path)
}

/// One URL in a top list: its path, estimated count (requests or bytes), and the most the
/// estimate may be over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub url: String,
    pub count: u64,
    pub error: u64,
}

#[derive(Clone)]
pub struct TopUrls {
    requests: FilteredSpaceSaving<u64>,
    bytes: FilteredSpaceSaving<u64>,
    urls: ahash::AHashMap<u64, Box<str>>,
}

impl Default for TopUrls {
    fn default() -> Self {
        Self::new()
    }
}

impl TopUrls {
    pub fn new() -> TopUrls {
        TopUrls {
            requests: FilteredSpaceSaving::new(K),
            bytes: FilteredSpaceSaving::new(K),
            urls: ahash::AHashMap::with_capacity(K),
        }
    }

    /// One response for `path`, `bytes` long.
    pub fn add(&mut self, path: &[u8], bytes: u64) {
        let path = &path[..path.len().min(MAX_URL)];
        let h = key(path);
        self.requests.insert(h, 1);
        if bytes > 0 {
            self.bytes.insert(h, bytes);
        }
        if !self.urls.contains_key(&h) && self.monitors(h) {
            if self.urls.len() >= MAP_LIMIT {
                self.prune();
            }
            self.urls.insert(h, String::from_utf8_lossy(path).into());
        }
    }

    fn monitors(&self, h: u64) -> bool {
        self.requests.get(&h).is_some() || self.bytes.get(&h).is_some()
    }

    /// Forgets the paths neither sketch monitors any more.
    pub fn prune(&mut self) {
        let (r, b) = (&self.requests, &self.bytes);
        self.urls.retain(|h, _| r.get(h).is_some() || b.get(h).is_some());
    }

    /// Adds another sketch's counts (another second, another worker).
    pub fn merge(&mut self, other: &TopUrls) {
        // Both have K entries: merging cannot fail.
        let _ = self.requests.merge(&other.requests);
        let _ = self.bytes.merge(&other.bytes);
        for (h, u) in &other.urls {
            if !self.urls.contains_key(h) {
                self.urls.insert(*h, u.clone());
            }
        }
        self.prune();
    }

    /// Requests seen, in total.
    pub fn total_requests(&self) -> u64 {
        self.requests.count()
    }

    /// The top `n` URLs by requests.
    pub fn top_requests(&self, n: usize) -> Vec<Entry> {
        self.top(&self.requests, n)
    }

    /// The top `n` URLs by bytes sent.
    pub fn top_bytes(&self, n: usize) -> Vec<Entry> {
        self.top(&self.bytes, n)
    }

    fn top(&self, s: &FilteredSpaceSaving<u64>, n: usize) -> Vec<Entry> {
        let mut v: Vec<Entry> = s
            .iter()
            .filter_map(|(h, c)| {
                Some(Entry {
                    url: self.urls.get(h)?.to_string(),
                    count: c.estimated_count(),
                    error: c.associated_error(),
                })
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.url.cmp(&b.url)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_while_it_fits() {
        let mut t = TopUrls::new();
        for i in 0..10u64 {
            for _ in 0..=i {
                t.add(format!("/u{i}").as_bytes(), 100);
            }
        }
        let top = t.top_requests(3);
        assert_eq!(
            top,
            vec![
                Entry {
                    url: "/u9".into(),
                    count: 10,
                    error: 0
                },
                Entry {
                    url: "/u8".into(),
                    count: 9,
                    error: 0
                },
                Entry {
                    url: "/u7".into(),
                    count: 8,
                    error: 0
                },
            ]
        );
        assert_eq!(t.top_bytes(1)[0].count, 1000);
        assert_eq!(t.total_requests(), 55);
    }

    /// Heavy hitters survive a long tail of one-off URLs, within Space-Saving's bounds, and
    /// the path map stays bounded.
    #[test]
    fn heavy_hitters_survive_a_long_tail() {
        let mut t = TopUrls::new();
        let mut truth = std::collections::HashMap::new();
        let mut x: u64 = 88172645463325252;
        for n in 0..200_000u64 {
            // xorshift: a reproducible stream.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let url = if n % 4 == 0 {
                format!("/hot/{}", x % 5)
            } else {
                format!("/tail/{}", x % 50_000)
            };
            *truth.entry(url.clone()).or_insert(0u64) += 1;
            t.add(url.as_bytes(), 1 + x % 1000);
            assert!(t.urls.len() <= MAP_LIMIT + 1);
        }
        let top = t.top_requests(5);
        for e in &top {
            assert!(e.url.starts_with("/hot/"), "{top:?}");
            let real = truth[&e.url];
            assert!(e.count >= real && e.count - e.error <= real, "{e:?} real {real}");
        }
    }

    #[test]
    fn merged_sketches_add_up() {
        let (mut a, mut b) = (TopUrls::new(), TopUrls::new());
        for _ in 0..5 {
            a.add(b"/a", 10);
            b.add(b"/a", 10);
            b.add(b"/b", 1);
        }
        let long = vec![b'x'; MAX_URL + 50];
        b.add(&long, 1);
        a.merge(&b);
        let top = a.top_requests(20);
        assert_eq!(
            top[0],
            Entry {
                url: "/a".into(),
                count: 10,
                error: 0
            }
        );
        assert_eq!(top[1].count, 5);
        assert_eq!(top[2].url.len(), MAX_URL);
        assert_eq!(a.top_bytes(1)[0].count, 100);
    }
}
