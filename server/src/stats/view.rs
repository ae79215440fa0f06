//! The admin side: a once-a-second sample of every worker's counters into a five-minute ring
//! (thread `slabfront-stats`), and `GET /stats` rendered from it. Nothing here runs on a
//! worker.

use super::{Stats, CLASSES, LATENCY_BUCKETS, RESULTS};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds of history in the charts.
pub const HISTORY: usize = 300;
/// The window of "now": rates, hit ratios and top URLs cover the last minute.
const MINUTE: f64 = 60.0;
/// Latency percentiles and origin health cover the last ten seconds.
const RECENT: f64 = 10.0;
/// Entries in each top-URL list.
const TOP: usize = 20;
/// Invalidations listed, newest first.
const INVALIDATIONS: usize = 10;

#[derive(Clone, Default)]
struct DistSnap {
    status: [u64; 5],
    results: [u64; 5],
    result_bytes: [u64; 5],
    tls: u64,
    latency: Vec<u64>,
}

impl DistSnap {
    fn requests(&self) -> u64 {
        self.status.iter().sum()
    }

    fn bytes(&self) -> u64 {
        self.result_bytes.iter().sum()
    }
}

/// Counters summed over the workers at one moment.
#[derive(Clone)]
struct Snapshot {
    /// Unix time, seconds.
    at: f64,
    dists: Vec<DistSnap>,
    /// (ok, errors, latency sum in µs) per origin slot.
    origins: Vec<(u64, u64, u64)>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn snapshot(stats: &Stats) -> Snapshot {
    let mut dists = vec![
        DistSnap {
            latency: vec![0; LATENCY_BUCKETS],
            ..DistSnap::default()
        };
        stats.dist_names().len()
    ];
    let slots = stats.origin_names.lock().unwrap_or_else(|e| e.into_inner()).len();
    let mut origins = vec![(0, 0, 0); slots];
    for w in &stats.workers {
        for (i, d) in dists.iter_mut().enumerate() {
            let Some(c) = w.dist(i) else { continue };
            for i in 0..5 {
                d.status[i] += c.status[i].load(Relaxed);
                d.results[i] += c.results[i].load(Relaxed);
                d.result_bytes[i] += c.result_bytes[i].load(Relaxed);
            }
            d.tls += c.tls_requests.load(Relaxed);
            for (a, b) in d.latency.iter_mut().zip(&c.latency) {
                *a += b.load(Relaxed);
            }
        }
        for (o, c) in origins.iter_mut().zip(&w.origins) {
            o.0 += c.ok.load(Relaxed);
            o.1 += c.errors.load(Relaxed);
            o.2 += c.latency_us.load(Relaxed);
        }
    }
    Snapshot {
        at: unix_now(),
        dists,
        origins,
    }
}

/// What `/stats` shows besides the counters kept here (read by the admin listener).
#[derive(Default)]
pub struct Extra {
    pub connections_active: u64,
    /// Slab usage, when there is a cache.
    pub slab: Option<cache_store::Stats>,
    /// Invalidations: (id, status, paths, created, removed), oldest first.
    pub invalidations: Vec<(String, &'static str, Vec<String>, u64, usize)>,
}

/// The sampled history and the renderer of `/stats`.
pub struct Sampler {
    stats: Arc<Stats>,
    ring: Mutex<VecDeque<Snapshot>>,
}

impl Sampler {
    /// Starts sampling once a second (until the sampler is dropped).
    pub fn start(stats: Arc<Stats>) -> std::io::Result<Arc<Sampler>> {
        let s = Arc::new(Sampler {
            stats,
            ring: Mutex::new(VecDeque::with_capacity(HISTORY + 1)),
        });
        s.sample();
        let weak = Arc::downgrade(&s);
        std::thread::Builder::new()
            .name("slabfront-stats".into())
            .spawn(move || loop {
                // On the second: the points of the charts are whole seconds apart.
                let frac = unix_now().fract();
                std::thread::sleep(Duration::from_secs_f64((1.0 - frac).max(0.05)));
                match weak.upgrade() {
                    Some(s) => s.sample(),
                    None => return,
                }
            })?;
        Ok(s)
    }

    fn sample(&self) {
        let snap = snapshot(&self.stats);
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() > HISTORY {
            ring.pop_front();
        }
        ring.push_back(snap);
    }

    /// The health of each origin over the last ten seconds.
    pub fn origin_health(&self) -> Vec<(String, &'static str)> {
        let now = snapshot(&self.stats);
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let then = before(&ring, now.at - RECENT);
        self.origin_rows(&now, then)
            .into_iter()
            .map(|o| {
                let name = o["name"].as_str().unwrap_or_default().to_string();
                (name, health_str(&o))
            })
            .collect()
    }

    fn origin_rows(&self, now: &Snapshot, then: Option<&Snapshot>) -> Vec<Value> {
        let names = self
            .stats
            .origin_names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        names
            .iter()
            .zip(&now.origins)
            .enumerate()
            .map(|(i, (name, &(ok, err, lat)))| {
                let (ok0, err0, lat0) = then.and_then(|t| t.origins.get(i).copied()).unwrap_or((0, 0, 0));
                let (dok, derr) = (ok - ok0.min(ok), err - err0.min(err));
                let dlat = lat - lat0.min(lat);
                let secs = then.map_or(RECENT, |t| (now.at - t.at).max(1.0));
                let health = match (dok, derr) {
                    (0, 0) => "idle",
                    (_, 0) => "up",
                    (0, _) => "down",
                    _ => "degraded",
                };
                json!({
                    "name": name,
                    "requests_total": ok + err,
                    "errors_total": err,
                    "requests_per_second": (dok + derr) as f64 / secs,
                    "errors_per_second": derr as f64 / secs,
                    "latency_ms": (dok > 0).then(|| dlat as f64 / dok as f64 / 1000.0),
                    "health": health,
                })
            })
            .collect()
    }

    /// `GET /stats`.
    pub fn render(&self, extra: &Extra) -> Value {
        let now = snapshot(&self.stats);
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let minute = before(&ring, now.at - MINUTE);
        let recent = before(&ring, now.at - RECENT);
        let sec = self.stats.now_sec();
        let dists: Vec<Value> = self
            .stats
            .dist_names()
            .iter()
            .enumerate()
            .map(|(i, name)| self.render_dist(i, name, &now, &ring, minute, recent, sec))
            .collect();
        let invalidations: Vec<Value> = extra
            .invalidations
            .iter()
            .rev()
            .take(INVALIDATIONS)
            .map(|(id, status, paths, created, removed)| {
                json!({"id": id, "status": status, "paths": paths, "created": created, "removed": removed})
            })
            .collect();
        let tls: u64 = self
            .stats
            .workers
            .iter()
            .map(|w| w.tls_active.load(Relaxed))
            .sum();
        json!({
            "time": now.at,
            "interval_seconds": 1,
            "connections": {
                "active": extra.connections_active,
                "plain": extra.connections_active.saturating_sub(tls),
                "tls": tls.min(extra.connections_active),
                "http2": Value::Null,
            },
            "origins": self.origin_rows(&now, recent),
            "slab": extra.slab.as_ref().map(|s| json!({
                "capacity_bytes": s.capacity,
                "used_bytes": s.bytes_used,
                "objects": s.objects,
                "evictions_total": s.evictions,
                "expired_total": s.expired,
                "corrupt_skipped_total": s.corrupt_skipped,
                "io_errors_total": s.io_errors,
            })),
            "invalidations": invalidations,
            "distributions": dists,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn render_dist(
        &self,
        i: usize,
        name: &str,
        now: &Snapshot,
        ring: &VecDeque<Snapshot>,
        minute: Option<&Snapshot>,
        recent: Option<&Snapshot>,
        sec: u64,
    ) -> Value {
        let empty = DistSnap {
            latency: vec![0; LATENCY_BUCKETS],
            ..DistSnap::default()
        };
        let d = now.dists.get(i).unwrap_or(&empty);
        let at = |s: Option<&Snapshot>| s.and_then(|s| s.dists.get(i)).unwrap_or(&empty).clone();
        let m = at(minute);
        let secs = minute.map_or(1.0, |s| (now.at - s.at).max(1.0));
        let diff =
            |a: &[u64; 5], b: &[u64; 5]| -> [u64; 5] { std::array::from_fn(|k| a[k].saturating_sub(b[k])) };
        let (status, results, rbytes) = (
            diff(&d.status, &m.status),
            diff(&d.results, &m.results),
            diff(&d.result_bytes, &m.result_bytes),
        );
        let named = |v: &[u64; 5], names: &[&str; 5]| -> Value {
            Value::Object(
                names
                    .iter()
                    .zip(v)
                    .map(|(n, c)| (n.to_string(), json!(c)))
                    .collect(),
            )
        };
        let ratio = |v: &[u64; 5]| {
            let hits = v[0] + v[1];
            let looked = hits + v[2];
            (looked > 0).then(|| hits as f64 / looked as f64)
        };
        let r = at(recent);
        let lat: Vec<u64> = d
            .latency
            .iter()
            .zip(&r.latency)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let mut series_at = Vec::with_capacity(HISTORY);
        let mut rps = Vec::with_capacity(HISTORY);
        let mut bps = Vec::with_capacity(HISTORY);
        for (a, b) in ring.iter().zip(ring.iter().skip(1)) {
            let (x, y) = (a.dists.get(i).unwrap_or(&empty), b.dists.get(i).unwrap_or(&empty));
            let dt = (b.at - a.at).max(0.001);
            series_at.push(b.at.round() as u64);
            rps.push(y.requests().saturating_sub(x.requests()) as f64 / dt);
            bps.push(y.bytes().saturating_sub(x.bytes()) as f64 / dt);
        }
        let top = self.top_urls(i, sec);
        json!({
            "name": name,
            "totals": {
                "requests": d.requests(),
                "sent_bytes": d.bytes(),
                "tls_requests": d.tls,
                "status": named(&d.status, &CLASSES),
                "results": named(&d.results, &RESULTS),
                "result_bytes": named(&d.result_bytes, &RESULTS),
                "hit_ratio_requests": ratio(&d.results),
                "hit_ratio_bytes": ratio(&d.result_bytes),
            },
            "last_minute": {
                "seconds": secs,
                "requests_per_second": status.iter().sum::<u64>() as f64 / secs,
                "sent_bytes_per_second": rbytes.iter().sum::<u64>() as f64 / secs,
                "status": named(&status, &CLASSES),
                "results": named(&results, &RESULTS),
                "hit_ratio_requests": ratio(&results),
                "hit_ratio_bytes": ratio(&rbytes),
            },
            "latency_ms": {
                "window_seconds": RECENT,
                "p50": percentile(&lat, 0.50),
                "p99": percentile(&lat, 0.99),
            },
            "series": {
                "time": series_at,
                "requests_per_second": rps,
                "sent_bytes_per_second": bps,
            },
            "top_urls": {
                "window_seconds": super::SKETCH_SECONDS,
                "requests_seen": top.total_requests(),
                "by_requests": top.top_requests(TOP),
                "by_bytes": top.top_bytes(TOP),
            },
        })
    }

    /// The last minute's finished seconds of every worker, merged.
    fn top_urls(&self, dist: usize, sec: u64) -> super::sketch::TopUrls {
        let mut all = super::sketch::TopUrls::new();
        for w in &self.stats.workers {
            let windows = w.windows.lock().unwrap_or_else(|e| e.into_inner());
            for win in windows
                .iter()
                .filter(|w| w.sec.saturating_add(super::SKETCH_SECONDS) > sec)
            {
                if let Some(Some(s)) = win.dists.get(dist) {
                    all.merge(s);
                }
            }
        }
        all
    }

    /// Extra Prometheus families: bytes by cache result, and each origin's health.
    pub fn prometheus(&self) -> String {
        use std::fmt::Write as _;
        let now = snapshot(&self.stats);
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP slabfront_sent_bytes_by_cache_result_total Bytes sent to viewers, by cache result (Local: directory origins).\n# TYPE slabfront_sent_bytes_by_cache_result_total counter"
        );
        for (k, r) in RESULTS.iter().enumerate() {
            let v: u64 = now.dists.iter().map(|d| d.result_bytes[k]).sum();
            let _ = writeln!(
                o,
                "slabfront_sent_bytes_by_cache_result_total{{result=\"{r}\"}} {v}"
            );
        }
        self.per_distribution(&now, &mut o);
        let _ = writeln!(
            o,
            "# HELP slabfront_origin_up 0 when every exchange with the origin in the last 10 s failed, else 1.\n# TYPE slabfront_origin_up gauge"
        );
        for (name, health) in self.origin_health() {
            let name = label_value(&name);
            let _ = writeln!(
                o,
                "slabfront_origin_up{{origin=\"{name}\"}} {}",
                u8::from(health != "down")
            );
        }
        o
    }

    /// Each distribution's requests (by status class and by cache result) and bytes sent,
    /// labelled `distribution` with its name.
    fn per_distribution(&self, now: &Snapshot, o: &mut String) {
        use std::fmt::Write as _;
        let names: Vec<String> = self.stats.dist_names().iter().map(|n| label_value(n)).collect();
        // One family: HELP and TYPE, then a series per distribution and label value.
        let mut family =
            |name: &str, help: &str, label: &str, values: &dyn Fn(&DistSnap) -> Vec<(&str, u64)>| {
                let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
                for (d, snap) in names.iter().zip(&now.dists) {
                    for (v, n) in values(snap) {
                        let extra = if label.is_empty() {
                            String::new()
                        } else {
                            format!(",{label}=\"{v}\"")
                        };
                        let _ = writeln!(o, "{name}{{distribution=\"{d}\"{extra}}} {n}");
                    }
                }
            };
        family(
            "slabfront_distribution_requests_total",
            "Requests answered, by distribution and status class.",
            "status_class",
            &|d| CLASSES.iter().copied().zip(d.status).collect(),
        );
        family(
            "slabfront_distribution_requests_by_cache_result_total",
            "Requests, by distribution and cache result.",
            "result",
            &|d| RESULTS.iter().copied().zip(d.results).collect(),
        );
        family(
            "slabfront_distribution_sent_bytes_total",
            "Bytes sent to viewers, by distribution.",
            "",
            &|d| vec![("", d.bytes())],
        );
    }
}

/// A Prometheus label value, escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn health_str(row: &Value) -> &'static str {
    match row["health"].as_str() {
        Some("up") => "up",
        Some("down") => "down",
        Some("degraded") => "degraded",
        _ => "idle",
    }
}

/// The newest sample taken at or before `t`, else the oldest one.
fn before(ring: &VecDeque<Snapshot>, t: f64) -> Option<&Snapshot> {
    ring.iter().rev().find(|s| s.at <= t + 0.25).or(ring.front())
}

/// The `q` quantile of a latency histogram, milliseconds (the middle of its bucket).
fn percentile(h: &[u64], q: f64) -> Option<f64> {
    let n: u64 = h.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = ((n as f64 * q).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, c) in h.iter().enumerate() {
        seen += c;
        if seen >= rank {
            let lo = super::bucket_floor(i) as f64;
            let hi = super::bucket_floor(i + 1) as f64;
            return Some((lo + hi) / 2.0 / 1000.0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Recorder;
    use std::time::Instant;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = vec![0u64; LATENCY_BUCKETS];
        for _ in 0..99 {
            h[crate::stats::latency_bucket(1000)] += 1;
        }
        h[crate::stats::latency_bucket(200_000)] += 1;
        let p50 = percentile(&h, 0.5).unwrap();
        assert!((p50 - 1.0).abs() < 0.07, "{p50}");
        assert!((percentile(&h, 0.99).unwrap() - 1.0).abs() < 0.07);
        let p100 = percentile(&h, 1.0).unwrap();
        assert!((p100 - 200.0).abs() < 13.0, "{p100}");
        assert_eq!(percentile(&vec![0; LATENCY_BUCKETS], 0.5), None);
    }

    #[test]
    fn renders_totals_rates_and_top_urls() {
        let stats = Arc::new(Stats::new(2, &[], &[(0, "o".into())]));
        let sampler = Sampler::start(stats.clone()).unwrap();
        let (a, b) = (Recorder::new(stats.clone(), 0), Recorder::new(stats.clone(), 1));
        let t0 = Instant::now();
        for _ in 0..3 {
            a.record(b"/hot", 200, "Hit", false, 100, t0);
            b.record(b"/hot", 200, "Miss", true, 100, t0);
        }
        b.record(b"/cold", 404, "Error", false, 7, t0);
        a.origin("o", Err(()));
        // Hand the current seconds over, as the next tick would.
        for r in [&a, &b] {
            r.core.current.borrow_mut().sec = stats.now_sec() + 1;
            r.tick();
        }
        let v = sampler.render(&Extra {
            connections_active: 3,
            ..Extra::default()
        });
        let d = &v["distributions"][0];
        assert_eq!(d["name"], "default");
        assert_eq!(d["totals"]["requests"], 7);
        assert_eq!(d["totals"]["sent_bytes"], 607);
        assert_eq!(d["totals"]["status"]["4xx"], 1);
        assert_eq!(d["totals"]["results"]["Miss"], 3);
        assert_eq!(d["totals"]["hit_ratio_requests"], 0.5);
        assert_eq!(d["top_urls"]["by_requests"][0]["url"], "/hot");
        assert_eq!(d["top_urls"]["by_requests"][0]["count"], 6);
        assert_eq!(d["top_urls"]["by_bytes"][1]["count"], 7);
        assert!(d["latency_ms"]["p50"].as_f64().is_some());
        assert_eq!(v["connections"]["tls"], 0);
        assert_eq!(v["origins"][0]["health"], "down");
        let text = sampler.prometheus();
        assert!(text.contains("slabfront_origin_up{origin=\"o\"} 0\n"), "{text}");
        assert!(text.contains("slabfront_sent_bytes_by_cache_result_total{result=\"Hit\"} 300\n"));
    }
}
