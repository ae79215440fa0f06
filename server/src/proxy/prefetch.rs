//! Bringing cold slab pages in off the event loop. A hit whose pages are not resident would
//! turn the send into major page faults on the worker thread, stalling every connection on
//! that core; instead the worker hands the range to this thread (which reads it through the
//! file, into the page cache) and waits for it asynchronously.

use cache_store::Store;
use crossbeam::channel::{unbounded, Sender};
use event_listener::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Job {
    offset: u64,
    len: u64,
    done: Arc<Done>,
}

#[derive(Default)]
struct Done {
    flag: AtomicBool,
    event: Event,
}

/// The process-wide prefetch thread.
pub struct Prefetcher {
    tx: Sender<Job>,
}

impl Prefetcher {
    pub fn start(store: Store) -> std::io::Result<Prefetcher> {
        let (tx, rx) = unbounded::<Job>();
        std::thread::Builder::new()
            .name("slabfront-prefetch".into())
            .spawn(move || {
                for job in rx {
                    if let Err(e) = store.warm(job.offset, job.len) {
                        tracing::warn!(error = %e, offset = job.offset, "slab read failed");
                    }
                    job.done.flag.store(true, Ordering::Release);
                    job.done.event.notify(usize::MAX);
                }
            })?;
        Ok(Prefetcher { tx })
    }

    /// Reads `len` bytes at `offset` of the slab file into memory; resolves when done (or
    /// after `limit`, when the caller goes ahead anyway).
    pub async fn warm(&self, offset: u64, len: u64, limit: Duration) {
        let done = Arc::new(Done::default());
        if self
            .tx
            .send(Job {
                offset,
                len,
                done: done.clone(),
            })
            .is_err()
        {
            return;
        }
        loop {
            let listener = done.event.listen();
            if done.flag.load(Ordering::Acquire) {
                return;
            }
            if monoio::time::timeout(limit, listener).await.is_err() {
                return;
            }
        }
    }
}
