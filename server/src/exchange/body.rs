//! Where a response body comes from, and the one window iterator every codec sends it
//! through.
//!
//! A body source says what the bytes are (memory, a file range, a stored object's range, an
//! origin's body as it arrives); [`BodySource::next_window`] cuts it into windows, and the
//! codec's sink decides only how each window leaves: a [`Window::File`] by `sendfile` to a
//! plain viewer, a [`Window::Mapped`] written from the slab's mapping (and checked), a
//! [`Window::Bytes`] as it is. Residency is checked here, window by window, right before the
//! window is handed out, so no window meets pages reclaimed since its check and the worker
//! never takes a major fault: cold windows are read by the prefetch thread into buffers.

use super::relay::Relay;
use super::End;
use crate::context::Worker;
use crate::static_files::KeptFile;
use bytes::Bytes;
use cache_store::ReadGuard;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

/// Resident stored bodies up to this size leave in one window, by sendfile from the slab file
/// or from the mapping (while memory is not short): sent window by window from the mapping,
/// the 1.3 MB page measured 15–25% fewer bytes per CPU-second (the socket drains while each
/// window's write completes). Larger bodies go window by window, so that a send waiting on
/// the viewer cannot meet pages reclaimed since its check.
const HOT_SEND_MAX: usize = 4 << 20;
/// Cold (or large) stored bodies are read and sent in windows of this size.
const COLD_WINDOW: usize = 1 << 20;
/// Stored bodies from this size on are read into buffers off the event loop, not sent from
/// the mapping, while memory is short (`ProxyWorker::memory_short`).
pub const SHORT_MIN: usize = 64 * 1024;
/// Files and stored bodies from this size on go by sendfile to plain viewers.
pub use crate::static_files::SENDFILE_MIN;
/// Chunk size for streaming large files from disk.
const FILE_CHUNK: usize = 256 * 1024;

/// A response body.
pub enum BodySource {
    /// Nothing follows the head.
    Empty,
    /// From memory.
    Bytes(Bytes),
    /// A file range: by sendfile from `open` when the viewer takes file windows and the range
    /// is in the page cache, else from `mem` (the same bytes, kept in memory), else read from
    /// disk in chunks.
    File(FileBody),
    /// A stored object's body range, its read guard held until the last window is out.
    Slab(SlabBody),
    /// An origin's body as it arrives, stored on the way.
    Relay(Box<Relay>),
    /// A compressed variant as it is produced, stored at its end.
    Compressing(Box<super::compress::Compressing>),
}

/// A file range of a directory origin.
pub struct FileBody {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
    pub open: Option<Rc<KeptFile>>,
    pub mem: Option<Bytes>,
    /// Where the file is read next when it streams from disk.
    read: Option<(monoio::fs::File, u64)>,
    done: bool,
}

impl FileBody {
    pub fn new(path: PathBuf, offset: u64, len: u64, open: Option<Rc<KeptFile>>, mem: Option<Bytes>) -> Self {
        FileBody {
            path,
            offset,
            len,
            open,
            mem,
            read: None,
            done: false,
        }
    }
}

/// Bytes `a..b` of a stored object's body.
pub struct SlabBody {
    w: Rc<Worker>,
    guard: Option<ReadGuard>,
    mapped: Option<Mapped>,
    a: usize,
    b: usize,
    /// The whole entry was found in memory at the lookup.
    resident: bool,
    /// Where the next window starts, once the body goes window by window.
    at: Option<Windowed>,
}

#[derive(Clone, Copy)]
struct Windowed {
    at: usize,
    /// Every window is read into a buffer (part of the body was cold, or memory is short).
    through_buffers: bool,
    /// Resident windows may go by sendfile (the guard has lent its body).
    lent: bool,
}

impl SlabBody {
    pub fn new(w: Rc<Worker>, guard: ReadGuard, a: usize, b: usize, resident: bool) -> Self {
        SlabBody {
            w,
            guard: Some(guard),
            mapped: None,
            a,
            b,
            resident,
            at: None,
        }
    }
}

/// One piece of a body, ready to leave.
pub enum Window {
    /// Bytes in memory.
    Bytes(Bytes),
    /// `len` bytes of a file at `off`, in the page cache just now: by sendfile, or (for a
    /// sink that cannot) read by the codec. `what` names the file for logs.
    File { file: FileRef, off: u64, len: u64 },
    /// Bytes `a..b` of a stored body, sent from the mapping; `last`: the body's last window
    /// (its last byte leaves only after the guard is found intact).
    Mapped {
        guard: Mapped,
        a: usize,
        b: usize,
        last: bool,
    },
}

/// A file a window may be sent from, kept open while the window is out.
pub enum FileRef {
    Static(Rc<KeptFile>, PathBuf),
    /// The slab file (the guard that lent the body is held by the source).
    Slab(Rc<Worker>),
}

impl FileRef {
    pub fn file(&self) -> Option<&std::fs::File> {
        match self {
            FileRef::Static(f, _) => Some(f),
            FileRef::Slab(w) => w.proxy.as_ref().map(|px| px.shared.store.file()),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        match self {
            FileRef::Static(_, p) => p,
            FileRef::Slab(_) => std::path::Path::new("(slab file)"),
        }
    }
}

/// A read guard shared by the windows sent from it, so it can still be asked whether the
/// mapping faulted once the bytes are out.
#[derive(Clone)]
pub struct Mapped(pub std::sync::Arc<ReadGuard>);

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        self.0.body()
    }
}

impl BodySource {
    /// The body's length, when known before it is sent.
    pub fn len(&self) -> Option<u64> {
        match self {
            BodySource::Empty => Some(0),
            BodySource::Bytes(b) => Some(b.len() as u64),
            BodySource::File(f) => Some(f.len),
            BodySource::Slab(s) => Some((s.b - s.a) as u64),
            BodySource::Relay(_) | BodySource::Compressing(_) => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The next window, `None` once the body is out. `file_windows`: the sink can send file
    /// windows without a copy (a plain-TCP viewer); otherwise only bytes and mapped windows
    /// are handed out.
    pub async fn next_window(&mut self, file_windows: bool) -> Result<Option<Window>, End> {
        match self {
            BodySource::Empty => Ok(None),
            BodySource::Bytes(b) => {
                let b = std::mem::take(b);
                *self = BodySource::Empty;
                Ok((!b.is_empty()).then_some(Window::Bytes(b)))
            }
            BodySource::File(f) => f.next_window(file_windows).await,
            BodySource::Slab(s) => s.next_window(file_windows).await,
            BodySource::Relay(r) => Ok(r.next_piece().await?.map(Window::Bytes)),
            BodySource::Compressing(z) => Ok(z.next_piece().await?.map(Window::Bytes)),
        }
    }

    /// The viewer is gone (or takes no body: HEAD): whatever must still happen without
    /// sending happens (an origin body being stored is read to its end).
    ///
    /// `all`: read an origin's body to its end even when nothing is stored (HEAD, and bodies
    /// not allowed, so the origin connection is reused).
    pub async fn finish_unsent(self, all: bool) {
        match self {
            BodySource::Relay(r) => r.finish_unsent(all).await,
            BodySource::Compressing(z) => z.finish_unsent().await,
            _ => {}
        }
    }
}

impl FileBody {
    async fn next_window(&mut self, file_windows: bool) -> Result<Option<Window>, End> {
        if self.done || self.len == 0 {
            return Ok(None);
        }
        if self.read.is_none() {
            if let (true, Some(file)) = (file_windows, &self.open) {
                // Only from the page cache: a read from disk inside sendfile would stall
                // every connection of this worker.
                match cache_store::page_cached(file, self.offset, self.len) {
                    Some(true) => {
                        self.done = true;
                        return Ok(Some(Window::File {
                            file: FileRef::Static(file.clone(), self.path.clone()),
                            off: self.offset,
                            len: self.len,
                        }));
                    }
                    // Served another way this time; the next request finds the pages.
                    Some(false) => crate::runtime::io::will_need(file, self.offset, self.len),
                    None => {}
                }
            }
            if let Some(b) = self.mem.take() {
                self.done = true;
                return Ok(Some(Window::Bytes(b)));
            }
            // The head may be out already: a failure from here on can only close.
            let file = monoio::fs::File::open(&self.path).await.map_err(|e| {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot open file");
                End::Gone
            })?;
            self.read = Some((file, self.offset));
        }
        let end = self.offset + self.len;
        let Some((file, at)) = self.read.as_mut() else {
            return Ok(None);
        };
        if *at >= end {
            self.done = true;
            if let Some((file, _)) = self.read.take() {
                let _ = file.close().await;
            }
            return Ok(None);
        }
        let want = ((end - *at) as usize).min(FILE_CHUNK);
        let (res, buf) = file.read_at(Vec::with_capacity(want), *at).await;
        match res {
            Ok(n) if n > 0 => {
                *at += n as u64;
                Ok(Some(Window::Bytes(Bytes::from(buf))))
            }
            _ => {
                tracing::warn!(path = %self.path.display(), "file shrank while being sent");
                Err(End::Gone)
            }
        }
    }
}

impl SlabBody {
    /// The first window: the whole body at once when it is hot and not too large (`Ok`), or
    /// the state for sending it window by window (`Err`).
    fn first_window(
        &mut self,
        px: &crate::proxy::ProxyWorker,
        file_windows: bool,
    ) -> Result<Option<Window>, Windowed> {
        let (a, b) = (self.a, self.b);
        // The first window: the whole body at once when it is hot and not too large.
        let Some(guard) = self.guard.take() else {
            return Ok(None);
        };
        let now = Instant::now();
        let resident = self.resident || guard.resident(a as u64, (b - a) as u64);
        if !resident {
            px.saw_cold(now);
        }
        let short = b - a >= SHORT_MIN && px.memory_short(now);
        let off = guard.body_offset();
        if resident && !short && b - a <= HOT_SEND_MAX {
            let lent = file_windows && (b - a) as u64 >= SENDFILE_MIN && guard.lend_body().is_some();
            self.at = Some(Windowed {
                at: b,
                through_buffers: false,
                lent,
            });
            if lent {
                // Hot and large, to a plain viewer: sendfile from the slab file, no copy.
                // The kernel keeps referencing the pages after the call returns, so their
                // segments get fresh pages before they are written again
                // (`ReadGuard::lend_body`): the bytes sent never change.
                self.guard = Some(guard);
                return Ok(Some(Window::File {
                    file: FileRef::Slab(self.w.clone()),
                    off: off + a as u64,
                    len: (b - a) as u64,
                }));
            }
            // Hot: one send straight from the mapping.
            let m = Mapped(std::sync::Arc::new(guard));
            return Ok(Some(Window::Mapped {
                guard: m,
                a,
                b,
                last: true,
            }));
        }
        // Larger or colder bodies go window by window, residency checked before each.
        let through_buffers = short || !resident;
        let st = Windowed {
            at: a,
            through_buffers,
            lent: !through_buffers && file_windows && guard.lend_body().is_some(),
        };
        self.mapped = Some(Mapped(std::sync::Arc::new(guard)));
        Err(st)
    }

    async fn next_window(&mut self, file_windows: bool) -> Result<Option<Window>, End> {
        let w = self.w.clone();
        let Some(px) = w.proxy.as_ref() else {
            return Err(End::Gone);
        };
        let (a, b) = (self.a, self.b);
        if b <= a {
            return Ok(None);
        }
        let mut st = match self.at {
            Some(st) => st,
            None => match self.first_window(px, file_windows) {
                Ok(whole) => return Ok(whole),
                Err(st) => st,
            },
        };
        if st.at >= b {
            return Ok(None);
        }
        let Some(guard) = self.mapped.clone() else {
            return Ok(None);
        };
        let store = &px.shared.store;
        let base = guard.0.body_offset();
        let end = (st.at + COLD_WINDOW).min(b);
        let (off, len) = (base + st.at as u64, (end - st.at) as u64);
        let from = st.at;
        st.at = end;
        self.at = Some(st);
        let resident = !st.through_buffers && store.resident(off, len);
        if resident && st.lent {
            return Ok(Some(Window::File {
                file: FileRef::Slab(self.w.clone()),
                off,
                len,
            }));
        }
        if resident {
            return Ok(Some(Window::Mapped {
                guard,
                a: from,
                b: end,
                last: end == b,
            }));
        }
        let data = px.shared.prefetch.read(off, len).await.map_err(|e| {
            tracing::warn!(error = %e, offset = off, "slab read failed; closing the connection");
            End::Gone
        })?;
        Ok(Some(Window::Bytes(Bytes::from(data))))
    }
}
