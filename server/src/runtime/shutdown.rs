//! A per-worker shutdown signal that many tasks can wait on without polling.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Inner {
    fired: Cell<bool>,
    next_id: Cell<u64>,
    waiters: RefCell<ahash::AHashMap<u64, Waker>>,
}

/// Cloneable handle; `fire()` wakes every `wait()`, current and future.
#[derive(Clone, Default)]
pub struct Shutdown(Rc<Inner>);

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every waiter; later waits complete at once.
    pub fn fire(&self) {
        self.0.fired.set(true);
        let waiters = std::mem::take(&mut *self.0.waiters.borrow_mut());
        for (_, w) in waiters {
            w.wake();
        }
    }

    pub fn is_fired(&self) -> bool {
        self.0.fired.get()
    }

    /// Completes once `fire()` has been called.
    pub fn wait(&self) -> Wait {
        Wait {
            inner: self.0.clone(),
            id: None,
        }
    }
}

/// The future of [`Shutdown::wait`]; deregisters itself when dropped.
pub struct Wait {
    inner: Rc<Inner>,
    id: Option<u64>,
}

impl Future for Wait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.fired.get() {
            return Poll::Ready(());
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = self.inner.next_id.get();
                self.inner.next_id.set(id + 1);
                self.id = Some(id);
                id
            }
        };
        self.inner.waiters.borrow_mut().insert(id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.inner.waiters.borrow_mut().remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fire_wakes_waiters_and_drop_deregisters() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = Shutdown::new();
            {
                // A wait that is polled once and dropped leaves nothing behind.
                let w = s.wait();
                let r = monoio::time::timeout(std::time::Duration::from_millis(5), w).await;
                assert!(r.is_err());
            }
            assert!(s.0.waiters.borrow().is_empty());
            let s2 = s.clone();
            let h = monoio::spawn(async move {
                s2.wait().await;
                7
            });
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            s.fire();
            assert_eq!(h.await, 7);
            s.wait().await;
        });
    }
}
