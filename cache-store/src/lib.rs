//! cache-store: slabfront's persistent cache, one preallocated file mapped into memory and
//! shared by every worker thread.
//!
//! It knows nothing of HTTP, TOML or async runtimes: keys are bytes; values are metadata
//! bytes (small, replaceable in place) and body bytes (immutable, read without copying).
//! Objects are written log-structured: each [`Writer`] (one per worker) appends to a segment
//! run it owns, so writers never contend; whole segments are reclaimed at once, with objects
//! that were read given another lap per read, up to three (segment-level CLOCK with
//! counters). A crash at any
//! moment loses at most the objects being written; reopening rebuilds the index from the
//! entry headers and verifies every checksum.
//!
//! A body can also leave by `sendfile` from the slab file ([`ReadGuard::lend_body`],
//! [`Store::file`]): the kernel keeps referencing those pages after the call, so segments
//! whose pages were lent get fresh ones before they are written again (see `pages`).
//!
//! Disk faults are errors and misses, never a dead process. The file's blocks are all
//! allocated when it is opened (`fallocate`; on a file system without it a new slab is written
//! through with zeros once), so a disk that fills up later cannot fail writes into it, and a
//! slab the disk cannot hold fails [`Store::open`] with [`Error::NoSpace`] naming the path, the
//! bytes missing and the space free. A write the file still does not take makes the object
//! not admitted. A page of the mapping the kernel cannot supply (a read error, or the file
//! truncated under the process) would be SIGBUS: a process-wide handler maps zeros over the
//! page instead, for slab mappings only, and from then on every hit is verified against its
//! checksum before it is handed out, no body is lent to `sendfile`, and a file found shorter
//! than its mapping disables the slab until restart. Bodies read from the file
//! ([`Store::read_range`], `sendfile`) meet a truncated file as short reads, which are errors.
//! A body already handed out can still turn to zeros under its reader;
//! [`ReadGuard::intact`] says whether it did. Every such error is counted
//! ([`Stats::io_errors`]) and logged with `tracing`, at most once a minute per kind.
//!
//! ```
//! # fn main() -> Result<(), cache_store::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let store = cache_store::Store::open(&cache_store::StoreOptions::new(dir.path().join("slab"), 64 << 20))?;
//! let mut w = store.writer();
//! w.insert(b"/index.html", b"content-type: text/html", b"<h1>hi</h1>", u64::MAX)?;
//! let hit = store.get(b"/index.html").expect("just written");
//! assert_eq!(hit.body(), b"<h1>hi</h1>");
//! assert_eq!(hit.meta(), b"content-type: text/html");
//! # Ok(()) }
//! ```

mod error;
mod fault;
mod format;
mod map;
mod options;
mod pages;
mod recover;
mod slab;
mod store;

pub use error::{Error, Result};
pub use options::StoreOptions;
pub use pages::page_cached;
pub use store::{ReadGuard, Stats, Store, WriteHandle, Writer};
