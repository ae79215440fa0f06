//! The compression threads: a stored body compressed off the event loops, its output handed
//! back to the worker piece by piece as it is produced (so the first viewer is sent the
//! compressed bytes while the rest is still being compressed).
//!
//! The thread reads the identity body straight from the slab's mapping through the read
//! guard it is given (a page not in memory faults on this thread, never on a worker), and
//! checks the guard is intact after the last read: a body that faulted is a failure, never
//! wrong bytes.

use super::Coding;
use bytes::Bytes;
use cache_store::ReadGuard;
use crossbeam::channel::{unbounded, Receiver, Sender, TryRecvError};
use event_listener::Event;
use std::io::{self, Write};
use std::sync::{Arc, OnceLock};

/// Output is handed to the worker in pieces of at least this size.
pub(super) const PIECE: usize = 64 * 1024;
/// The identity body is fed to the encoder in slices of this size.
const SLICE: usize = 256 * 1024;

/// What the thread sends back for a job.
pub enum Msg {
    /// The next piece of compressed output.
    Piece(Bytes),
    /// The output is complete.
    End,
    /// The body could not be read (a fault under the mapping) or the encoder failed.
    Failed,
}

struct Job {
    coding: Coding,
    level: i32,
    body: ReadGuard,
    out: Sender<Msg>,
    done: Arc<Event>,
}

/// The process-wide compression threads (started on first use).
struct Pool {
    tx: Sender<Job>,
    threads: usize,
}

/// Jobs queued per thread beyond which no compression is started (the viewer is sent the
/// identity body rather than wait behind the queue; a later request makes the variant).
const QUEUED_PER_THREAD: usize = 2;

static POOL: OnceLock<Option<Pool>> = OnceLock::new();

fn pool() -> Option<&'static Pool> {
    POOL.get_or_init(|| {
        let (tx, rx) = unbounded::<Job>();
        // One thread per core: a compression runs once per object and coding, and each
        // job is one object, so several objects compress at once on a multi-core box.
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut started = 0;
        for i in 0..n {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("slabfront-compress-{i}"))
                .spawn(move || {
                    for job in rx {
                        run(job);
                    }
                });
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then_some(Pool { tx, threads: started })
    })
    .as_ref()
}

/// A compression in progress, as the worker sees it.
pub struct Pending {
    rx: Receiver<Msg>,
    done: Arc<Event>,
}

/// Starts compressing `body` with `coding` at `level` on a compression thread; `None` when
/// the threads are busy.
pub fn start(coding: Coding, level: i32, body: ReadGuard) -> Option<Pending> {
    let pool = pool()?;
    if pool.tx.len() >= pool.threads * QUEUED_PER_THREAD {
        return None;
    }
    let (out, rx) = unbounded();
    let done = Arc::new(Event::new());
    let job = Job {
        coding,
        level,
        body,
        out,
        done: done.clone(),
    };
    pool.tx.send(job).ok()?;
    Some(Pending { rx, done })
}

impl Pending {
    /// The next message from the thread.
    pub async fn next(&self) -> Msg {
        loop {
            // Listening before looking: a message sent after the look is notified after it.
            let listener = self.done.listen();
            match self.rx.try_recv() {
                Ok(m) => return m,
                Err(TryRecvError::Disconnected) => return Msg::Failed,
                Err(TryRecvError::Empty) => listener.await,
            }
        }
    }
}

/// Hands output to the worker in pieces.
struct PieceWriter<'a> {
    buf: Vec<u8>,
    job: &'a Job,
}

impl PieceWriter<'_> {
    fn send(&mut self, m: Msg) {
        // The worker may be gone (its viewer left and nothing is stored): nothing to do.
        let _ = self.job.out.send(m);
        self.job.done.notify(usize::MAX);
    }

    fn flush_piece(&mut self) {
        if !self.buf.is_empty() {
            let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE * 2));
            self.send(Msg::Piece(Bytes::from(piece)));
        }
    }
}

impl Write for PieceWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.flush_piece();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn run(job: Job) {
    let mut w = PieceWriter {
        buf: Vec::with_capacity(PIECE * 2),
        job: &job,
    };
    let ok = encode(job.coding, job.level, job.body.body(), &mut w).is_ok() && job.body.intact();
    if ok {
        w.flush_piece();
        w.send(Msg::End);
    } else {
        w.send(Msg::Failed);
    }
}

/// Compresses `input` into `out` (a streaming encoder, fed slice by slice).
pub fn encode(coding: Coding, level: i32, input: &[u8], out: &mut impl Write) -> io::Result<()> {
    match coding {
        Coding::Gzip => {
            let level = flate2::Compression::new(level.clamp(1, 9) as u32);
            let mut e = flate2::write::GzEncoder::new(out, level);
            for s in input.chunks(SLICE) {
                e.write_all(s)?;
            }
            e.finish()?;
        }
        Coding::Br => {
            // lgwin 22: a 4 MiB window, Brotli's default and what browsers decode.
            let mut e = brotli::CompressorWriter::new(out, 64 * 1024, level.clamp(0, 11) as u32, 22);
            for s in input.chunks(SLICE) {
                e.write_all(s)?;
            }
            // Finishes the stream (the writer never fails).
            e.into_inner();
        }
        Coding::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(out, level.clamp(1, 19))?;
            // The viewer's decoder is told the size, and checks the content.
            e.set_pledged_src_size(Some(input.len() as u64))?;
            e.include_checksum(true)?;
            for s in input.chunks(SLICE) {
                e.write_all(s)?;
            }
            e.finish()?;
        }
    }
    Ok(())
}
