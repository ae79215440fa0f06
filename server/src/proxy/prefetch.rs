//! Reading cold slab ranges off the event loop. A hit whose pages are not resident would turn
//! a send from the mapping into major page faults on the worker thread, stalling every
//! connection on that core; instead the worker hands the range to this thread, which reads it
//! from the slab file into a buffer, and waits for it asynchronously.

use cache_store::Store;
use crossbeam::channel::{bounded, unbounded, Receiver, Sender, TryRecvError};
use event_listener::Event;
use std::io;
use std::sync::Arc;

struct Job {
    offset: u64,
    len: u64,
    /// Where the bytes go; `done` is notified after they are sent.
    result: Sender<io::Result<Vec<u8>>>,
    done: Arc<Event>,
}

/// The process-wide prefetch thread.
pub struct Prefetcher {
    tx: Sender<Job>,
}

impl Prefetcher {
    pub fn start(store: Store) -> io::Result<Prefetcher> {
        let (tx, rx) = unbounded::<Job>();
        std::thread::Builder::new()
            .name("slabfront-prefetch".into())
            .spawn(move || {
                for job in rx {
                    let _ = job.result.send(store.read_range(job.offset, job.len));
                    job.done.notify(usize::MAX);
                }
            })?;
        Ok(Prefetcher { tx })
    }

    /// `len` bytes at `offset` of the slab file, read on the prefetch thread.
    pub async fn read(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let done = Arc::new(Event::new());
        let (result, rx): (_, Receiver<_>) = bounded(1);
        self.tx
            .send(Job {
                offset,
                len,
                result,
                done: done.clone(),
            })
            .map_err(|_| io::Error::other("the prefetch thread has stopped"))?;
        loop {
            // Listening before looking: a result sent after the look is also notified after it.
            let listener = done.listen();
            match rx.try_recv() {
                Ok(r) => return r,
                Err(TryRecvError::Disconnected) => {
                    return Err(io::Error::other("the prefetch thread dropped a read"))
                }
                Err(TryRecvError::Empty) => listener.await,
            }
        }
    }
}
