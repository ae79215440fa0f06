//! Geo restriction: viewers' countries from a MaxMind-format country database (`[geo]
//! database`), and a distribution's `geo_restriction` applied to them.
//!
//! The database is the process's: opened once (memory-mapped), re-read on SIGHUP
//! ([`prepare`] with `reread`) and when the file changes (a control thread compares its
//! modification time, size and inode once a second). Workers hold an `Arc` of the
//! [`Database`] and load its current reader through an `ArcSwap`: no lock on the request path,
//! and a reader being replaced stays mapped until the last lookup using it is done.
//!
//! Replace the file by renaming a new one over it (as MaxMind's `geoipupdate` does): the old
//! mapping keeps the old inode's pages. Truncating or rewriting the mapped file in place is
//! what the mapping cannot survive (SIGBUS), as for every memory-mapped database.
#![allow(unsafe_code)]

use arc_swap::ArcSwap;
use maxminddb::{MaxMindDbError, Reader};
use memmap2::Mmap;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// How often the control thread looks at the file.
pub const POLL: Duration = Duration::from_secs(1);

/// A country database, current reader swapped in as the file changes.
pub struct Database {
    pub path: PathBuf,
    reader: ArcSwap<Reader<Mmap>>,
    stamp: Mutex<Stamp>,
    /// Times the file was read (the first open included).
    pub loads: AtomicU64,
}

/// What tells that the file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stamp {
    mtime_ns: i128,
    len: u64,
    ino: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        len: m.len(),
        ino: m.ino(),
    })
}

fn open(path: &Path) -> Result<Reader<Mmap>, String> {
    // SAFETY: the mapping is read-only and the file is replaced by renaming a new one over
    // it (documented in docs/edge-security.md), so the mapped inode is never modified or
    // truncated while a reader lives; maxminddb bounds-checks every read of the mapping.
    let r = unsafe { Reader::open_mmap(path) };
    let r = r.map_err(|e: MaxMindDbError| format!("{}: {e}", path.display()))?;
    // A database without countries would refuse every viewer of a whitelist: say so now.
    let kind = r.metadata().database_type.to_ascii_lowercase();
    if !kind.contains("country") && !kind.contains("city") {
        tracing::warn!(
            path = %path.display(),
            database_type = %r.metadata().database_type,
            "the geo database is not a country or city database; country.iso_code is looked up anyway"
        );
    }
    Ok(r)
}

impl Database {
    /// The viewer's country (ISO 3166-1 alpha-2), `None` when the address is not in the
    /// database.
    pub fn country(&self, ip: IpAddr) -> Option<[u8; 2]> {
        let reader = self.reader.load();
        let found = reader.lookup(ip).ok()?;
        let code: Option<&str> = found
            .decode_path(&maxminddb::path!["country", "iso_code"])
            .ok()
            .flatten()
            .or_else(|| {
                found
                    .decode_path(&maxminddb::path!["registered_country", "iso_code"])
                    .ok()
                    .flatten()
            });
        match code?.as_bytes() {
            &[a, b] => Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
            _ => None,
        }
    }

    /// Reads the file again when it changed (or always, with `force`); a file that cannot
    /// be read leaves the current reader in place.
    pub fn refresh(&self, force: bool) -> Result<bool, String> {
        let now = stamp(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let mut old = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if !force && *old == now {
            return Ok(false);
        }
        let r = open(&self.path)?;
        self.reader.store(Arc::new(r));
        *old = now;
        self.loads.fetch_add(1, Relaxed);
        Ok(true)
    }
}

/// Every database opened by this process (a reload naming the same file shares it).
static OPEN: LazyLock<Mutex<Vec<Arc<Database>>>> = LazyLock::new(Mutex::default);

/// The opened database of this path.
pub fn database(path: &str) -> Option<Arc<Database>> {
    let open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    open.iter().find(|d| d.path == Path::new(path)).cloned()
}

/// Opens the database the configuration needs (at start; `reread` on SIGHUP reads an open one
/// again), with its control thread. Not needed: nothing is opened.
pub fn prepare(cfg: &config::Config, reread: bool) -> Result<(), String> {
    let needed = cfg
        .distributions
        .iter()
        .any(|d| config::geo::needs_database(&cfg.with_distribution(d)))
        || config::geo::needs_database(cfg);
    let Some(path) = cfg.geo.database.as_deref().filter(|_| needed) else {
        return Ok(());
    };
    if let Some(db) = database(path) {
        if reread {
            match db.refresh(true) {
                Ok(_) => tracing::info!(path, "geo database read again"),
                Err(e) => return Err(format!("geo database {e}; the one read before stays")),
            }
        }
        return Ok(());
    }
    let s = stamp(Path::new(path)).map_err(|e| format!("geo database {path:?}: {e}"))?;
    let r = open(Path::new(path)).map_err(|e| format!("geo database {e}"))?;
    let db = Arc::new(Database {
        path: path.into(),
        reader: ArcSwap::from_pointee(r),
        stamp: Mutex::new(s),
        loads: AtomicU64::new(1),
    });
    OPEN.lock().unwrap_or_else(|e| e.into_inner()).push(db.clone());
    let watched = Arc::downgrade(&db);
    std::thread::Builder::new()
        .name("slabfront-geo".into())
        .spawn(move || watch(watched))
        .map_err(|e| format!("geo database watcher: {e}"))?;
    tracing::info!(path, "geo database open");
    Ok(())
}

/// The control thread: reads the file again once it changed, for as long as the process
/// keeps the database.
fn watch(db: std::sync::Weak<Database>) {
    loop {
        std::thread::sleep(POLL);
        let Some(db) = db.upgrade() else { return };
        match db.refresh(false) {
            Ok(true) => tracing::info!(path = %db.path.display(), "geo database changed: read again"),
            Ok(false) => {}
            Err(e) => tracing::warn!("geo database {e}; the one read before stays"),
        }
    }
}

/// A distribution's geo restriction, per worker.
pub struct GeoRt {
    pub restriction: config::geo::GeoRestriction,
    /// Viewers refused, shared by every worker (`/metrics`).
    pub blocked: Arc<AtomicU64>,
}

impl GeoRt {
    /// Whether a viewer from `country` is refused.
    pub fn refuses(&self, country: Option<[u8; 2]>) -> bool {
        let c = country.as_ref().and_then(|c| std::str::from_utf8(c).ok());
        self.restriction.refuses(c)
    }
}
