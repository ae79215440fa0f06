//! What the operator sees: per-worker counters (summed at scrape time into Prometheus text)
//! and the access log in CloudFront's standard format.
//!
//! Each worker writes only its own counters (relaxed atomics nobody else writes) and its own
//! log buffer; the admin thread reads the counters, and a log thread writes the buffers out.

use crate::exchange::{BodyLength, ResponseHead};
use crate::http::{Method, Request};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// What a response was, for counters and the log (from the structured head, never from
/// the bytes a codec wrote).
#[derive(Debug, Clone, Default)]
pub struct Note {
    pub status: u16,
    /// `Hit`, `Miss`, `RefreshHit`, `Error` (from `X-Cache`), or "" for local content.
    pub result: &'static str,
    pub content_type: Option<String>,
    pub content_len: Option<u64>,
    pub range: Option<(u64, u64)>,
    /// An origin group's secondary answered (`Cache-Status` has `detail=failover-...`).
    pub failover: bool,
}

impl Note {
    /// What a response head says, as the exchange produced it: every logged part when
    /// `detailed` (an access log is written), else the status and cache result (counters).
    pub fn of(head: &ResponseHead<'_>, detailed: bool) -> Note {
        let mut n = Note {
            status: head.status,
            result: head.cache.as_str(),
            ..Note::default()
        };
        if !detailed {
            return n;
        }
        n.failover = head
            .get("cache-status")
            .is_some_and(|v| memchr::memmem::find(v, b"detail=failover").is_some());
        n.content_type = head
            .get("content-type")
            .map(|v| String::from_utf8_lossy(v).into_owned());
        n.content_len = match head.length {
            BodyLength::Known(len) => Some(len),
            _ => None,
        };
        // bytes a-b/len
        n.range = head.get("content-range").and_then(|v| {
            let s = std::str::from_utf8(v).ok()?;
            let (a, b) = s
                .trim()
                .strip_prefix("bytes ")?
                .split('/')
                .next()?
                .split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        });
        n
    }

    /// The result type CloudFront logs: errors are `Error` whatever the cache did.
    pub fn edge_result(&self) -> &'static str {
        if self.status >= 400 {
            "Error"
        } else if self.result.is_empty() {
            "Hit"
        } else {
            self.result
        }
    }
}

const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "OTHER",
];
const RESULTS: [&str; 5] = ["Hit", "Miss", "RefreshHit", "Error", "Local"];
const ORIGIN_ERRORS: [&str; 10] = [
    "resolve",
    "connect",
    "tls",
    "timeout",
    "closed",
    "io",
    "invalid",
    "credentials",
    "refused",
    "down",
];
/// Origin latency histogram bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// One worker's counters. Written only by that worker.
#[derive(Default)]
pub struct WorkerMetrics {
    status: [AtomicU64; 5],
    methods: [AtomicU64; 8],
    results: [AtomicU64; 5],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_active: AtomicU64,
    pub tls_handshakes: AtomicU64,
    origin_requests: AtomicU64,
    origin_errors: [AtomicU64; ORIGIN_ERRORS.len()],
    origin_latency: [AtomicU64; 13],
    origin_latency_sum_us: AtomicU64,
    pub log_lines: AtomicU64,
    pub log_dropped: AtomicU64,
    /// Signed URL / cookie refusals, by reason (`edge::signed::REASONS`).
    signed_refusals: [AtomicU64; crate::edge::signed::REASONS.len()],
}

fn bump(a: &AtomicU64) {
    add(a, 1);
}

/// Adds to a counter only this worker writes (no read-modify-write instruction needed).
fn add(a: &AtomicU64, n: u64) {
    a.store(a.load(Relaxed) + n, Relaxed);
}

impl WorkerMetrics {
    pub fn request(&self, method: Method, note: &Note) {
        let class = (note.status / 100).clamp(1, 5) as usize - 1;
        bump(&self.status[class]);
        let m = match method {
            Method::Get => 0,
            Method::Head => 1,
            Method::Post => 2,
            Method::Put => 3,
            Method::Delete => 4,
            Method::Options => 5,
            Method::Patch => 6,
            _ => 7,
        };
        bump(&self.methods[m]);
        let r = match note.result {
            "Hit" => 0,
            "Miss" => 1,
            "RefreshHit" => 2,
            "Error" => 3,
            _ => 4,
        };
        bump(&self.results[r]);
    }

    pub fn origin_ok(&self, latency: Duration) {
        bump(&self.origin_requests);
        let s = latency.as_secs_f64();
        let i = BUCKETS.iter().position(|&b| s <= b).unwrap_or(BUCKETS.len());
        bump(&self.origin_latency[i]);
        add(&self.origin_latency_sum_us, latency.as_micros() as u64);
    }

    pub fn origin_error(&self, kind: &str) {
        bump(&self.origin_requests);
        if let Some(i) = ORIGIN_ERRORS.iter().position(|k| *k == kind) {
            bump(&self.origin_errors[i]);
        }
    }

    pub fn add(&self, a: &AtomicU64, n: u64) {
        add(a, n);
    }

    /// A request refused for its signed URL or cookies.
    pub fn signed_refused(&self, reason: crate::edge::signed::Refusal) {
        bump(&self.signed_refusals[reason.index()]);
    }
}

/// Sample lines of a family with one label: `name{label="value"} count(i)` per value.
fn labeled(name: &str, label: &str, values: &[&str], count: impl Fn(usize) -> u64) -> String {
    let mut b = String::new();
    for (i, v) in values.iter().enumerate() {
        let _ = writeln!(b, "{name}{{{label}=\"{v}\"}} {}", count(i));
    }
    b
}

/// Every worker's counters summed, in the Prometheus text exposition format (0.0.4).
pub fn prometheus(
    workers: &[Arc<WorkerMetrics>],
    slab: Option<(cache_store::Stats, u64)>,
    log_write_failures: u64,
    draining: bool,
) -> String {
    let sum = |f: &dyn Fn(&WorkerMetrics) -> u64| workers.iter().map(|w| f(w)).sum::<u64>();
    let mut o = String::with_capacity(4096);
    let mut put = |name: &str, kind: &str, help: &str, body: String| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        o.push_str(&body);
    };
    let b = labeled(
        "slabfront_requests_total",
        "status_class",
        &["1xx", "2xx", "3xx", "4xx", "5xx"],
        |i| sum(&|w| w.status[i].load(Relaxed)),
    );
    put(
        "slabfront_requests_total",
        "counter",
        "Requests answered, by status class.",
        b,
    );
    let b = labeled("slabfront_requests_by_method_total", "method", &METHODS, |i| {
        sum(&|w| w.methods[i].load(Relaxed))
    });
    put(
        "slabfront_requests_by_method_total",
        "counter",
        "Requests, by method.",
        b,
    );
    let b = labeled(
        "slabfront_requests_by_cache_result_total",
        "result",
        &RESULTS,
        |i| sum(&|w| w.results[i].load(Relaxed)),
    );
    put(
        "slabfront_requests_by_cache_result_total",
        "counter",
        "Requests, by cache result (Local: directory origins).",
        b,
    );
    let hits = sum(&|w| w.results[0].load(Relaxed) + w.results[2].load(Relaxed));
    let lookups = hits + sum(&|w| w.results[1].load(Relaxed));
    let ratio = if lookups > 0 {
        hits as f64 / lookups as f64
    } else {
        0.0
    };
    put(
        "slabfront_cache_hit_ratio",
        "gauge",
        "(Hit + RefreshHit) / (Hit + RefreshHit + Miss) since start.",
        format!("slabfront_cache_hit_ratio {ratio:.6}\n"),
    );
    for (name, help, v) in [
        (
            "slabfront_received_bytes_total",
            "Bytes received from viewers.",
            sum(&|w| w.bytes_in.load(Relaxed)),
        ),
        (
            "slabfront_sent_bytes_total",
            "Bytes sent to viewers.",
            sum(&|w| w.bytes_out.load(Relaxed)),
        ),
        (
            "slabfront_connections_total",
            "Viewer connections accepted.",
            sum(&|w| w.connections_total.load(Relaxed)),
        ),
        (
            "slabfront_tls_handshakes_total",
            "TLS handshakes with viewers.",
            sum(&|w| w.tls_handshakes.load(Relaxed)),
        ),
        (
            "slabfront_origin_requests_total",
            "Requests sent to origins.",
            sum(&|w| w.origin_requests.load(Relaxed)),
        ),
        (
            "slabfront_access_log_lines_total",
            "Access log lines written.",
            sum(&|w| w.log_lines.load(Relaxed)),
        ),
        (
            "slabfront_access_log_dropped_total",
            "Access log lines dropped (log thread behind, or the disk full).",
            sum(&|w| w.log_dropped.load(Relaxed)) + log_write_failures,
        ),
    ] {
        put(name, "counter", help, format!("{name} {v}\n"));
    }
    put(
        "slabfront_connections_active",
        "gauge",
        "Open viewer connections.",
        format!(
            "slabfront_connections_active {}\n",
            sum(&|w| w.connections_active.load(Relaxed))
        ),
    );
    let b = labeled("slabfront_origin_errors_total", "kind", &ORIGIN_ERRORS, |i| {
        sum(&|w| w.origin_errors[i].load(Relaxed))
    });
    put(
        "slabfront_origin_errors_total",
        "counter",
        "Failed origin requests, by kind.",
        b,
    );
    let reasons = crate::edge::signed::REASONS.map(|r| r.as_str());
    let b = labeled("slabfront_signed_refusals_total", "reason", &reasons, |i| {
        sum(&|w| w.signed_refusals[i].load(Relaxed))
    });
    put(
        "slabfront_signed_refusals_total",
        "counter",
        "Requests refused (403) for their signed URL or signed cookies, by reason.",
        b,
    );
    let mut b = String::new();
    let mut cumulative = 0;
    for (i, bound) in BUCKETS.iter().enumerate() {
        cumulative += sum(&|w| w.origin_latency[i].load(Relaxed));
        let _ = writeln!(
            b,
            "slabfront_origin_latency_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
        );
    }
    cumulative += sum(&|w| w.origin_latency[BUCKETS.len()].load(Relaxed));
    let _ = writeln!(
        b,
        "slabfront_origin_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
    );
    let _ = writeln!(
        b,
        "slabfront_origin_latency_seconds_sum {:.6}",
        sum(&|w| w.origin_latency_sum_us.load(Relaxed)) as f64 / 1e6
    );
    let _ = writeln!(b, "slabfront_origin_latency_seconds_count {cumulative}");
    put(
        "slabfront_origin_latency_seconds",
        "histogram",
        "Time from sending a request to an origin to its response head.",
        b,
    );
    if let Some((s, invalidations)) = slab {
        for (name, kind, help, v) in [
            (
                "slabfront_slab_used_bytes",
                "gauge",
                "Bytes of live objects in the slab.",
                s.bytes_used,
            ),
            ("slabfront_slab_capacity_bytes", "gauge", "Slab size.", s.capacity),
            (
                "slabfront_slab_objects",
                "gauge",
                "Objects in the slab.",
                s.objects,
            ),
            (
                "slabfront_slab_hits_total",
                "counter",
                "Slab lookups that found an object.",
                s.hits,
            ),
            (
                "slabfront_slab_misses_total",
                "counter",
                "Slab lookups that found nothing.",
                s.misses,
            ),
            (
                "slabfront_slab_evictions_total",
                "counter",
                "Objects evicted to make room.",
                s.evictions,
            ),
            (
                "slabfront_slab_expired_total",
                "counter",
                "Objects dropped as expired.",
                s.expired,
            ),
            (
                "slabfront_slab_corrupt_skipped_total",
                "counter",
                "Entries skipped for a bad checksum.",
                s.corrupt_skipped,
            ),
            (
                "slabfront_slab_io_errors_total",
                "counter",
                "I/O errors on the slab (failed writes, unreadable or truncated pages): misses, not crashes.",
                s.io_errors,
            ),
            (
                "slabfront_invalidations_total",
                "counter",
                "Invalidation requests completed.",
                invalidations,
            ),
        ] {
            put(name, kind, help, format!("{name} {v}\n"));
        }
    }
    put(
        "slabfront_draining",
        "gauge",
        "1 while the server is stopping.",
        format!("slabfront_draining {}\n", u8::from(draining)),
    );
    o
}

/// The fields of CloudFront's standard access log, in its order.
pub const LOG_FIELDS: &str = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";

/// The file header of a log file.
pub fn log_header() -> String {
    format!("#Version: 1.0\n#Fields: {LOG_FIELDS}\n")
}

/// Everything one log line needs.
pub struct LogEntry<'a> {
    pub req: &'a Request,
    pub note: &'a Note,
    pub edge: &'a str,
    pub peer: Option<std::net::SocketAddr>,
    pub tls: bool,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub time_taken: Duration,
    pub ttfb: Duration,
    pub request_id: &'a str,
    pub include_cookies: bool,
    /// TLS protocol and cipher, for HTTPS viewers.
    pub ssl: Option<(&'a str, &'a str)>,
}

/// Appends one tab-separated line. Values are URL-encoded as CloudFront does (spaces,
/// controls, quotes and non-ASCII bytes as %XX); empty values are `-`.
pub fn log_line(out: &mut Vec<u8>, e: &LogEntry<'_>) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (date, time) = utc(t.as_secs());
    let (path, query) = split(e.req.target());
    let host = e.req.header("host").unwrap_or_default();
    let c_ip = e.peer.map(|p| p.ip().to_string()).unwrap_or_default();
    let c_port = e.peer.map(|p| p.port().to_string()).unwrap_or_default();
    let cookie = if e.include_cookies {
        e.req.header("cookie").unwrap_or_default()
    } else {
        b""
    };
    let version = match e.req.version {
        crate::http::Version::Http10 => "HTTP/1.0",
        crate::http::Version::Http11 => "HTTP/1.1",
        crate::http::Version::Http2 => "HTTP/2.0",
    };
    let result = e.note.edge_result();
    let secs = |d: Duration| format!("{:.3}", d.as_secs_f64());
    let num = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    let (sc_bytes, status, cs_bytes) = (
        e.bytes_out.to_string(),
        e.note.status.to_string(),
        e.bytes_in.to_string(),
    );
    let (taken, ttfb) = (secs(e.time_taken), secs(e.ttfb));
    let (clen, rs, re) = (
        num(e.note.content_len),
        num(e.note.range.map(|r| r.0)),
        num(e.note.range.map(|r| r.1)),
    );
    let fields: [&[u8]; 33] = [
        date.as_bytes(),
        time.as_bytes(),
        e.edge.as_bytes(),
        sc_bytes.as_bytes(),
        c_ip.as_bytes(),
        e.req.method_name(),
        host,
        path,
        status.as_bytes(),
        e.req.header("referer").unwrap_or_default(),
        e.req.header("user-agent").unwrap_or_default(),
        query,
        cookie,
        result.as_bytes(),
        e.request_id.as_bytes(),
        host,
        if e.tls { b"https" } else { b"http" },
        cs_bytes.as_bytes(),
        taken.as_bytes(),
        e.req.header("x-forwarded-for").unwrap_or_default(),
        e.ssl.map_or(&b""[..], |s| s.0.as_bytes()),
        e.ssl.map_or(&b""[..], |s| s.1.as_bytes()),
        result.as_bytes(),
        version.as_bytes(),
        b"",
        b"",
        c_port.as_bytes(),
        ttfb.as_bytes(),
        if e.note.failover {
            b"OriginFailover"
        } else {
            result.as_bytes()
        },
        e.note.content_type.as_deref().unwrap_or_default().as_bytes(),
        clen.as_bytes(),
        rs.as_bytes(),
        re.as_bytes(),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        if f.is_empty() {
            out.push(b'-');
        } else {
            encode(out, f);
        }
    }
    out.push(b'\n');
}

fn encode(out: &mut Vec<u8>, v: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in v {
        if b <= b' ' || b >= 0x7f || b == b'"' || b == b'\\' {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.push(b);
        }
    }
}

/// `YYYY-MM-DD` and `HH:MM:SS` (UTC) for seconds since the epoch.
fn utc(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

fn split(target: &[u8]) -> (&[u8], &[u8]) {
    match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &b""[..]),
    }
}

/// The process-wide access-log writer: a thread that appends the workers' blocks of whole
/// lines to the file, reopening it on request (SIGUSR1, for logrotate).
pub struct LogSink {
    tx: crossbeam::channel::Sender<(Vec<u8>, u64)>,
    reopen: Arc<std::sync::atomic::AtomicBool>,
    /// Lines lost to write errors (a full disk).
    pub dropped: Arc<AtomicU64>,
}

/// Blocks of lines waiting for the log thread; beyond this, new blocks are dropped (and
/// counted) rather than blocking a worker.
const SINK_QUEUE: usize = 1024;

impl LogSink {
    /// Opens (appending) or creates the log file and starts the writer thread.
    pub fn start(path: std::path::PathBuf) -> std::io::Result<Arc<LogSink>> {
        let dropped = Arc::new(AtomicU64::new(0));
        let lost = dropped.clone();
        let mut file = open_log(&path)?;
        let (tx, rx) = crossbeam::channel::bounded::<(Vec<u8>, u64)>(SINK_QUEUE);
        let reopen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = reopen.clone();
        std::thread::Builder::new()
            .name("slabfront-log".into())
            .spawn(move || {
                use std::io::Write;
                for (block, lines) in rx {
                    if flag.swap(false, std::sync::atomic::Ordering::AcqRel) {
                        match open_log(&path) {
                            Ok(f) => file = f,
                            Err(e) => tracing::error!(path = %path.display(), error = %e, "cannot reopen the access log"),
                        }
                    }
                    if let Err(e) = file.write_all(&block) {
                        lost.fetch_add(lines, Relaxed);
                        tracing::warn!(path = %path.display(), error = %e, lines, "access log write failed; lines dropped");
                    }
                }
                let _ = file.flush();
            })?;
        Ok(Arc::new(LogSink { tx, reopen, dropped }))
    }

    /// Reopens the file before the next write (after logrotate moved it).
    pub fn reopen(&self) {
        self.reopen.store(true, std::sync::atomic::Ordering::Release);
        // Wake the thread even when no traffic comes.
        let _ = self.tx.try_send((Vec::new(), 0));
    }
}

fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    if f.metadata()?.len() == 0 {
        // A full disk must not stop the server: the lines that cannot be written are
        // counted as dropped.
        if let Err(e) = f.write_all(log_header().as_bytes()) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the access log header");
        }
    }
    Ok(f)
}

/// One worker's access-log buffer: whole lines, handed to the sink in blocks.
pub struct LogBuffer {
    sink: Arc<LogSink>,
    buf: std::cell::RefCell<Vec<u8>>,
    lines: std::cell::Cell<u64>,
    pub include_cookies: bool,
}

/// A block is handed over once it reaches this size (or on the worker's next tick).
const BLOCK: usize = 64 * 1024;

impl LogBuffer {
    pub fn new(sink: Arc<LogSink>, include_cookies: bool) -> Self {
        LogBuffer {
            sink,
            buf: std::cell::RefCell::new(Vec::with_capacity(BLOCK)),
            lines: std::cell::Cell::new(0),
            include_cookies,
        }
    }

    pub fn push(&self, e: &LogEntry<'_>, m: &WorkerMetrics) {
        let full = {
            let mut b = self.buf.borrow_mut();
            log_line(&mut b, e);
            self.lines.set(self.lines.get() + 1);
            b.len() >= BLOCK
        };
        if full {
            self.flush(m);
        }
    }

    /// Hands the buffered lines to the log thread (never waits: a full queue drops them).
    pub fn flush(&self, m: &WorkerMetrics) {
        let lines = self.lines.replace(0);
        if lines == 0 {
            return;
        }
        let block = std::mem::replace(&mut *self.buf.borrow_mut(), Vec::with_capacity(BLOCK));
        match self.sink.tx.try_send((block, lines)) {
            Ok(()) => m.add(&m.log_lines, lines),
            Err(_) => m.add(&m.log_dropped, lines),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(utc(0), ("1970-01-01".into(), "00:00:00".into()));
        assert_eq!(utc(951_782_400), ("2000-02-29".into(), "00:00:00".into()));
        assert_eq!(utc(1_795_570_589), ("2026-11-25".into(), "01:36:29".into()));
    }

    #[test]
    fn notes_come_from_the_structured_head() {
        use crate::exchange::CacheResult;
        let mut h = ResponseHead::local(206).with_cache(CacheResult::RefreshHit);
        h.field("Content-Type", &b"text/html"[..]);
        h.field("Content-Range", &b"bytes 5-14/100"[..]);
        h.length = BodyLength::Known(10);
        let n = Note::of(&h, true);
        assert_eq!(n.status, 206);
        assert_eq!(n.result, "RefreshHit");
        assert_eq!(n.content_type.as_deref(), Some("text/html"));
        assert_eq!(n.content_len, Some(10));
        assert_eq!(n.range, Some((5, 14)));
        assert_eq!(n.edge_result(), "RefreshHit");
        let b = Note::of(&h, false);
        assert_eq!((b.status, b.result, b.content_len), (206, "RefreshHit", None));
        let mut l = ResponseHead::local(304);
        // A field an origin sent is not the cache result: only the structured one counts.
        l.field("X-Cache", &b"Hit from elsewhere"[..]);
        assert_eq!((Note::of(&l, true).status, Note::of(&l, true).result), (304, ""));
        let e = Note::of(&ResponseHead::local(404), true);
        assert_eq!(e.edge_result(), "Error");
        assert_eq!(e.content_len, None);
    }

    #[test]
    fn every_kind_of_origin_failure_has_its_counter() {
        use crate::proxy::upstream::UpstreamError as U;
        let io = || std::io::Error::other("x");
        for e in [
            U::Resolve("h".into()),
            U::Connect(io()),
            U::Tls("t".into()),
            U::Timeout,
            U::Closed,
            U::Io(io()),
            U::Invalid("i"),
            U::Credentials("SignatureDoesNotMatch".into()),
            U::Refused(403, "listing"),
            U::Down,
        ] {
            assert!(ORIGIN_ERRORS.contains(&e.kind()), "{e:?} has no counter");
        }
    }

    #[test]
    fn prometheus_text_sums_workers() {
        let a = Arc::new(WorkerMetrics::default());
        let b = Arc::new(WorkerMetrics::default());
        let hit = Note {
            status: 200,
            result: "Hit",
            ..Note::default()
        };
        a.request(Method::Get, &hit);
        b.request(Method::Get, &hit);
        b.origin_ok(Duration::from_millis(3));
        let text = prometheus(&[a, b], None, 0, false);
        assert!(
            text.contains("slabfront_requests_total{status_class=\"2xx\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("slabfront_requests_by_cache_result_total{result=\"Hit\"} 2\n"));
        assert!(text.contains("slabfront_origin_latency_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("slabfront_origin_latency_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("slabfront_cache_hit_ratio 1.000000\n"));
    }

    #[test]
    fn a_log_line_has_every_field_tab_separated() {
        let limits = crate::http::codec::Limits {
            max_header_bytes: 16384,
            max_headers: 100,
            max_uri_bytes: 8192,
        };
        let crate::http::Parsed::Complete(req, _) = crate::http::parse_request(
            b"GET /a%20b/c.html?x=1 HTTP/1.1\r\nHost: cdn.example\r\nUser-Agent: Mozilla/5.0 (X11)\r\n\r\n",
            &limits,
        )
        .unwrap() else {
            panic!()
        };
        let note = Note {
            status: 200,
            result: "Miss",
            content_type: Some("text/html".into()),
            content_len: Some(42),
            range: None,
            failover: false,
        };
        let mut out = Vec::new();
        log_line(
            &mut out,
            &LogEntry {
                req: &req,
                note: &note,
                edge: "edge1",
                peer: Some("10.0.0.1:5555".parse().unwrap()),
                tls: false,
                bytes_in: 80,
                bytes_out: 300,
                time_taken: Duration::from_millis(12),
                ttfb: Duration::from_millis(3),
                request_id: "abc",
                include_cookies: false,
                ssl: None,
            },
        );
        let line = String::from_utf8(out).unwrap();
        let f: Vec<&str> = line.trim_end().split('\t').collect();
        assert_eq!(f.len(), LOG_FIELDS.split(' ').count());
        assert_eq!(f[3], "300");
        assert_eq!(f[4], "10.0.0.1");
        assert_eq!(f[7], "/a%20b/c.html");
        assert_eq!(f[10], "Mozilla/5.0%20(X11)");
        assert_eq!(f[11], "x=1");
        assert_eq!(f[12], "-");
        assert_eq!(f[13], "Miss");
        assert_eq!(f[18], "0.012");
        assert_eq!(f[26], "5555");
        assert_eq!(f[30], "42");
    }
}
