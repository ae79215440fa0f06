//! The directory origin: files under a root served like a bucket, with validators,
//! conditionals, ranges and precompressed siblings.
//!
//! Each worker has its own [`StaticOrigin`] (nothing shared, nothing locked). Hot files up to
//! `file_cache_max_file` are read into memory once and sent from there with `writev` (no copy
//! per request); each is checked against the disk at most once per `file_cache_revalidate`.
//! Files from `SENDFILE_MIN` on are also kept open: plain-TCP viewers get their bodies by
//! `sendfile` when the range is in the page cache (checked with `cachestat`), else from memory
//! or read from disk in chunks, with the pages asked for in the background.

use crate::exchange::body::FileBody;
use crate::exchange::{text, BodyLength, BodySource, ResponseHead};
use crate::http::codec::trim;
use crate::http::conditional::{evaluate, if_range_allows, parse_range, secs, Precondition, RangeSpec};
use crate::http::uri::CleanPath;
use crate::http::{Method, Request};
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// Options taken from the configuration.
#[derive(Debug, Clone)]
pub struct StaticOptions {
    pub root: PathBuf,
    pub default_root_object: String,
    pub cache_bytes: u64,
    pub max_cached_file: u64,
    pub revalidate: Duration,
}

/// A file's identity on disk: when any part changes, the cached copy is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ident {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Ident {
    fn of(m: &std::fs::Metadata) -> Ident {
        Ident {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        }
    }
}

/// A regular file, ready to serve.
#[derive(Debug)]
pub struct FileEntry {
    pub path: PathBuf,
    pub len: u64,
    pub etag: Box<str>,
    pub last_modified: SystemTime,
    /// `Last-Modified`, `ETag` and `Accept-Ranges`, formatted once.
    fixed: Box<[(&'static str, Bytes)]>,
    pub content_type: &'static str,
    /// The whole body when it is small enough to keep in memory.
    pub body: Option<Bytes>,
    /// The file, kept open when it is large enough to be sent with `sendfile`.
    file: Option<Rc<KeptFile>>,
    has_gz: bool,
    has_br: bool,
    ident: Ident,
}

#[derive(Debug, Clone)]
enum Resolved {
    File(Rc<FileEntry>),
    Dir,
    Missing,
}

struct Slot {
    resolved: Resolved,
    ident: Option<Ident>,
    checked: Cell<Instant>,
}

/// One worker's view of a directory origin.
pub struct StaticOrigin {
    opts: StaticOptions,
    canonical_root: PathBuf,
    slots: RefCell<ahash::AHashMap<String, Rc<Slot>>>,
    cached_bytes: Cell<u64>,
    /// Files kept open for sendfile, now.
    kept_open: Rc<Cell<usize>>,
}

/// A large file kept open for sendfile; counted against `MAX_KEPT_OPEN` while it lives.
#[derive(Debug)]
pub struct KeptFile {
    file: std::fs::File,
    count: Rc<Cell<usize>>,
}

impl std::ops::Deref for KeptFile {
    type Target = std::fs::File;
    fn deref(&self) -> &std::fs::File {
        &self.file
    }
}

impl Drop for KeptFile {
    fn drop(&mut self) {
        self.count.set(self.count.get() - 1);
    }
}

/// Most files a worker keeps open per directory origin (beyond them, large bodies are sent
/// from memory or read from disk).
const MAX_KEPT_OPEN: usize = 4096;

/// Most entries (found or not) remembered per worker.
const MAX_SLOTS: usize = 100_000;

impl StaticOrigin {
    pub fn new(opts: StaticOptions) -> io::Result<Self> {
        let canonical_root = std::fs::canonicalize(&opts.root)?;
        Ok(StaticOrigin {
            opts,
            canonical_root,
            slots: RefCell::new(ahash::AHashMap::new()),
            cached_bytes: Cell::new(0),
            kept_open: Rc::new(Cell::new(0)),
        })
    }

    /// Answers a GET or HEAD for `path`: the head, and the body as a source.
    pub fn serve(
        &self,
        req: &Request,
        path: &CleanPath,
        query: &[u8],
        now: Instant,
    ) -> (ResponseHead<'static>, BodySource) {
        match self.resolve(path, query, now) {
            Ok((entry, entry_path)) => self.answer(req, &entry, &entry_path, now),
            Err(answer) => *answer,
        }
    }

    /// The file a path names (a directory's index for a path with a trailing slash), or the
    /// answer when there is none: a redirect to the slashed path, or 404.
    fn resolve(
        &self,
        path: &CleanPath,
        query: &[u8],
        now: Instant,
    ) -> Result<(Rc<FileEntry>, String), Box<Answer>> {
        let index_path = match self.lookup(&path.path, now) {
            Resolved::File(e) if !path.trailing_slash => return Ok((e, path.path.clone())),
            Resolved::Dir if !self.opts.default_root_object.is_empty() => {
                let index = &self.opts.default_root_object;
                if path.path == "/" {
                    format!("/{index}")
                } else {
                    format!("{}/{index}", path.path)
                }
            }
            _ => return Err(Box::new(not_found())),
        };
        match self.lookup(&index_path, now) {
            Resolved::File(e) if path.trailing_slash => Ok((e, index_path)),
            Resolved::File(_) => {
                // "/docs" names a directory with an index: send the client to "/docs/".
                let mut loc = Vec::with_capacity(path.path.len() + query.len() + 2);
                loc.extend_from_slice(
                    percent_encoding::utf8_percent_encode(&path.path, PATH_SET)
                        .to_string()
                        .as_bytes(),
                );
                loc.push(b'/');
                if !query.is_empty() {
                    loc.push(b'?');
                    loc.extend_from_slice(query);
                }
                let (mut head, body) = text(301, "moved permanently");
                head.fields.insert(0, ("Location".into(), loc.into()));
                Err(Box::new((head, BodySource::Bytes(body))))
            }
            _ => Err(Box::new(not_found())),
        }
    }

    /// The answer for a file: its precompressed sibling when the viewer accepts one,
    /// preconditions (RFC 9110 §13.2.2), a single range (GET only), the body.
    fn answer(&self, req: &Request, entry: &Rc<FileEntry>, entry_path: &str, now: Instant) -> Answer {
        let head_only = req.method == Method::Head;
        let (chosen, encoding) = self.negotiate(req, entry, entry_path, now);
        let vary = entry.has_gz || entry.has_br;
        let e = &*chosen;
        let extra = |head: &mut ResponseHead<'static>| {
            for (n, v) in e.fixed.iter() {
                head.field(*n, v.clone());
            }
            if let Some(enc) = encoding {
                head.field("Content-Encoding", enc);
            }
            if vary {
                head.field("Vary", "Accept-Encoding");
            }
        };

        // Preconditions (RFC 9110 §13.2.2).
        match evaluate(req, Some(e.etag.as_bytes()), Some(secs(e.last_modified))) {
            Precondition::Failed => {
                let (head, body) = text(412, "precondition failed");
                return (head, BodySource::Bytes(body));
            }
            Precondition::NotModified => {
                let mut head = ResponseHead::local(304);
                extra(&mut head);
                return (head, BodySource::Empty);
            }
            Precondition::Proceed => {}
        }

        // Range (GET only).
        let mut range = None;
        if req.method == Method::Get {
            if let Some(r) = req.header("range") {
                if if_range_allows(req, Some(e.etag.as_bytes()), Some(secs(e.last_modified))) {
                    match parse_range(r, e.len) {
                        RangeSpec::Ignore => {}
                        RangeSpec::Satisfiable(a, b) => range = Some((a, b)),
                        RangeSpec::Unsatisfiable => {
                            let mut head = ResponseHead::local(416);
                            extra(&mut head);
                            head.field("Content-Range", format!("bytes */{}", e.len));
                            head.field("Content-Type", "text/plain; charset=utf-8");
                            head.length = BodyLength::Known(23);
                            let body = Bytes::from_static(b"range not satisfiable\r\n");
                            return (head, BodySource::Bytes(body));
                        }
                    }
                }
            }
        }

        let (status, offset, len) = match range {
            Some((a, b)) => (206, a, b - a + 1),
            None => (200, 0, e.len),
        };
        let mut head = ResponseHead::local(status);
        head.field("Content-Type", entry.content_type);
        extra(&mut head);
        if range.is_some() {
            head.field(
                "Content-Range",
                format!("bytes {}-{}/{}", offset, offset + len - 1, e.len),
            );
        }
        head.length = BodyLength::Known(len);
        if head_only || len == 0 {
            return (head, BodySource::Empty);
        }
        if len >= SENDFILE_MIN && e.file.is_some() {
            let mem = e
                .body
                .as_ref()
                .map(|b| b.slice(offset as usize..(offset + len) as usize));
            return (
                head,
                BodySource::File(FileBody::new(e.path.clone(), offset, len, e.file.clone(), mem)),
            );
        }
        let body = match &e.body {
            Some(b) => BodySource::Bytes(b.slice(offset as usize..(offset + len) as usize)),
            None => BodySource::File(FileBody::new(e.path.clone(), offset, len, None, None)),
        };
        (head, body)
    }

    /// Content negotiation: a precompressed sibling when the viewer accepts it, and the
    /// `Content-Encoding` it is sent with.
    fn negotiate(
        &self,
        req: &Request,
        entry: &Rc<FileEntry>,
        entry_path: &str,
        now: Instant,
    ) -> (Rc<FileEntry>, Option<&'static str>) {
        let vary = entry.has_gz || entry.has_br;
        let mut chosen = entry.clone();
        let mut encoding: Option<&'static str> = None;
        if vary {
            let (br, gz) = accepted_encodings(req);
            let candidates = [
                (entry.has_br && br > 0.0, "br", br),
                (entry.has_gz && gz > 0.0, "gzip", gz),
            ];
            let mut best: Option<(&'static str, f32)> = None;
            for (ok, name, q) in candidates {
                if ok && best.is_none_or(|(_, bq)| q > bq) {
                    best = Some((name, q));
                }
            }
            if let Some((name, _)) = best {
                let ext = if name == "br" { "br" } else { "gz" };
                if let Resolved::File(s) = self.lookup(&format!("{entry_path}.{ext}"), now) {
                    chosen = s;
                    encoding = Some(name);
                }
            }
        }
        (chosen, encoding)
    }

    /// A file's whole body and content type, if it is kept in memory (error pages).
    pub fn read_small(&self, path: &str) -> Option<(Bytes, String)> {
        let clean = crate::http::uri::clean_path(path.as_bytes()).ok()?;
        match self.lookup(&clean.path, Instant::now()) {
            Resolved::File(f) => f.body.clone().map(|b| (b, f.content_type.to_string())),
            _ => None,
        }
    }

    /// Finds what a clean request path names, from memory when fresh enough.
    /// `now` may lag the clock a little (the worker's sweep time): a file is then checked
    /// that much later, and the hot path reads no clock.
    fn lookup(&self, path: &str, now: Instant) -> Resolved {
        let existing = self.slots.borrow().get(path).cloned();
        if let Some(slot) = &existing {
            if now.duration_since(slot.checked.get()) < self.opts.revalidate {
                return slot.resolved.clone();
            }
            // Revalidate: unchanged on disk means only the check time moves.
            let fs_path = self.fs_path(path);
            let ident = std::fs::metadata(&fs_path).ok().map(|m| Ident::of(&m));
            if ident == slot.ident
                && !matches!(slot.resolved, Resolved::File(ref f) if self.siblings_changed(f))
            {
                slot.checked.set(now);
                return slot.resolved.clone();
            }
        }
        let slot = Rc::new(self.load(path, now));
        let mut slots = self.slots.borrow_mut();
        if let Some(old) = slots.remove(path) {
            self.forget(&old);
        }
        if slots.len() >= MAX_SLOTS {
            slots.clear();
            self.cached_bytes.set(0);
        }
        if let Resolved::File(f) = &slot.resolved {
            if let Some(b) = &f.body {
                self.cached_bytes.set(self.cached_bytes.get() + b.len() as u64);
            }
        }
        let resolved = slot.resolved.clone();
        slots.insert(path.to_string(), slot);
        resolved
    }

    fn forget(&self, slot: &Slot) {
        if let Resolved::File(f) = &slot.resolved {
            if let Some(b) = &f.body {
                self.cached_bytes
                    .set(self.cached_bytes.get().saturating_sub(b.len() as u64));
            }
        }
    }

    fn siblings_changed(&self, f: &FileEntry) -> bool {
        let gz = sibling(&f.path, "gz").is_file();
        let br = sibling(&f.path, "br").is_file();
        gz != f.has_gz || br != f.has_br
    }

    fn fs_path(&self, path: &str) -> PathBuf {
        self.opts.root.join(path.trim_start_matches('/'))
    }

    fn load(&self, path: &str, now: Instant) -> Slot {
        let missing = |ident| Slot {
            resolved: Resolved::Missing,
            ident,
            checked: Cell::new(now),
        };
        let fs_path = self.fs_path(path);
        let Ok(meta) = std::fs::metadata(&fs_path) else {
            return missing(None);
        };
        let ident = Ident::of(&meta);
        // Symlinks may point anywhere: only what resolves inside the root is served.
        match std::fs::canonicalize(&fs_path) {
            Ok(real) if real.starts_with(&self.canonical_root) => {}
            _ => return missing(Some(ident)),
        }
        if meta.is_dir() {
            return Slot {
                resolved: Resolved::Dir,
                ident: Some(ident),
                checked: Cell::new(now),
            };
        }
        if !meta.is_file() {
            return missing(Some(ident));
        }
        match self.load_file(&fs_path, &meta) {
            Ok(entry) => Slot {
                ident: Some(entry.ident),
                resolved: Resolved::File(Rc::new(entry)),
                checked: Cell::new(now),
            },
            Err(e) => {
                tracing::warn!(path = %fs_path.display(), error = %e, "cannot read file");
                missing(Some(ident))
            }
        }
    }

    fn load_file(&self, fs_path: &Path, meta: &std::fs::Metadata) -> io::Result<FileEntry> {
        let mut ident = Ident::of(meta);
        let fits = ident.size <= self.opts.max_cached_file
            && self.cached_bytes.get() + ident.size <= self.opts.cache_bytes;
        let body = if fits {
            let data = std::fs::read(fs_path)?;
            let after = Ident::of(&std::fs::metadata(fs_path)?);
            if after != ident || data.len() as u64 != after.size {
                // Changed while read: serve from disk this time, cache on a later check.
                ident = after;
                None
            } else {
                Some(Bytes::from(data))
            }
        } else {
            None
        };
        // Large files stay open for sendfile, as long as the open one is the one described.
        let file = if ident.size >= SENDFILE_MIN && self.kept_open.get() < MAX_KEPT_OPEN {
            std::fs::File::open(fs_path)
                .ok()
                .filter(|f| f.metadata().is_ok_and(|m| Ident::of(&m) == ident))
                .map(|file| {
                    self.kept_open.set(self.kept_open.get() + 1);
                    Rc::new(KeptFile {
                        file,
                        count: self.kept_open.clone(),
                    })
                })
        } else {
            None
        };
        let last_modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let etag = format!("\"{:x}-{:x}-{:x}\"", ident.mtime_ns as u64, ident.size, ident.ino);
        let fixed: Box<[(&'static str, Bytes)]> = Box::new([
            (
                "Last-Modified",
                Bytes::from(httpdate::fmt_http_date(last_modified)),
            ),
            ("ETag", Bytes::copy_from_slice(etag.as_bytes())),
            ("Accept-Ranges", Bytes::from_static(b"bytes")),
        ]);
        Ok(FileEntry {
            path: fs_path.to_path_buf(),
            len: ident.size,
            etag: etag.into(),
            last_modified,
            fixed,
            content_type: content_type(fs_path),
            body,
            file,
            has_gz: sibling(fs_path, "gz").is_file(),
            has_br: sibling(fs_path, "br").is_file(),
            ident,
        })
    }
}

/// Bodies from this size on are sent with `sendfile` to plain-TCP viewers: the page cache's
/// pages go to the socket without a copy through user space (measured here against writing
/// from memory: 1.2-1.3x more bytes per CPU-second with a client that reads the bodies).
pub const SENDFILE_MIN: u64 = 64 * 1024;

const PATH_SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

fn sibling(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// A head and its body.
type Answer = (ResponseHead<'static>, BodySource);

fn not_found() -> Answer {
    let (head, body) = text(404, "not found");
    (head, BodySource::Bytes(body))
}

fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        _ => mime_guess::from_ext(ext)
            .first_raw()
            .unwrap_or("application/octet-stream"),
    }
}

/// The q-values the client gives to `br` and `gzip` (0 = not acceptable).
fn accepted_encodings(req: &Request) -> (f32, f32) {
    let (mut br, mut gz, mut star) = (None, None, None);
    for item in req.header_list("accept-encoding") {
        let mut parts = item.split(|&b| b == b';');
        let coding = trim(parts.next().unwrap_or_default());
        let mut q = 1.0f32;
        for p in parts {
            let p = trim(p);
            if p.len() > 2 && p[..2].eq_ignore_ascii_case(b"q=") {
                q = std::str::from_utf8(&p[2..])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0.0);
            }
        }
        if coding.eq_ignore_ascii_case(b"br") {
            br = Some(q);
        } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
            gz = Some(q);
        } else if coding == b"*" {
            star = Some(q);
        }
    }
    (br.or(star).unwrap_or(0.0), gz.or(star).unwrap_or(0.0))
}
