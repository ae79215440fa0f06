//! Waits that end at a deadline or at shutdown, without a timer each: one table per worker,
//! swept by the worker's ticker (every 100 ms). An idle keep-alive connection costs a table
//! entry instead of a 640-byte monoio timer; accept loops wait here for shutdown. Deadlines
//! are set and checked against the time of the last sweep (`Waits::now`), not the clock: a
//! keep-alive wait per request then reads no clock at all.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

pub struct Waits {
    next_id: Cell<u64>,
    all_fired: Cell<bool>,
    /// When the last sweep ran (or the table was made).
    now: Cell<Instant>,
    waiters: RefCell<ahash::AHashMap<u64, (Instant, Waker)>>,
}

impl Default for Waits {
    fn default() -> Self {
        Waits {
            next_id: Cell::new(0),
            all_fired: Cell::new(false),
            now: Cell::new(Instant::now()),
            waiters: RefCell::default(),
        }
    }
}

impl Waits {
    /// The time of the last sweep: at most a sweep interval behind the clock, for deadlines
    /// that may end a sweep early or late.
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Completes at `deadline` (give or take a sweep) or at shutdown.
    pub fn wait_until(self: &Rc<Self>, deadline: Instant) -> Wait {
        Wait {
            timers: self.clone(),
            id: None,
            deadline,
        }
    }

    /// Wakes every wait whose deadline has passed.
    pub fn sweep(&self, now: Instant) {
        self.now.set(now);
        let mut expired = Vec::new();
        self.waiters.borrow_mut().retain(|_, (d, w)| {
            if *d <= now {
                expired.push(w.clone());
                false
            } else {
                true
            }
        });
        for w in expired {
            w.wake();
        }
    }

    /// Completes only at shutdown.
    pub fn until_shutdown(self: &Rc<Self>) -> Wait {
        // Far enough never to be reached; Instant has no maximum.
        self.wait_until(Instant::now() + std::time::Duration::from_secs(100 * 365 * 86_400))
    }

    /// True once shutdown has begun.
    pub fn is_shut_down(&self) -> bool {
        self.all_fired.get()
    }

    /// Ends every wait, now and later (shutdown).
    pub fn shut_down(&self) {
        self.all_fired.set(true);
        let all = std::mem::take(&mut *self.waiters.borrow_mut());
        for (_, (_, w)) in all {
            w.wake();
        }
    }

    pub fn len(&self) -> usize {
        self.waiters.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Wait {
    timers: Rc<Waits>,
    id: Option<u64>,
    deadline: Instant,
}

impl Future for Wait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.timers.all_fired.get() || self.timers.now() >= self.deadline {
            return Poll::Ready(());
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = self.timers.next_id.get();
                self.timers.next_id.set(id + 1);
                self.id = Some(id);
                id
            }
        };
        let entry = (self.deadline, cx.waker().clone());
        self.timers.waiters.borrow_mut().insert(id, entry);
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.timers.waiters.borrow_mut().remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadlines_fire_on_sweep_and_all_on_shutdown() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let t = Rc::new(Waits::default());
            let soon = monoio::spawn(t.wait_until(Instant::now() + Duration::from_millis(20)));
            let late = {
                let t = t.clone();
                monoio::spawn(async move { t.wait_until(Instant::now() + Duration::from_secs(3600)).await })
            };
            monoio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(t.len(), 2);
            monoio::time::sleep(Duration::from_millis(30)).await;
            let made = t.now();
            t.sweep(Instant::now());
            assert!(
                t.now() >= made + Duration::from_millis(30),
                "a sweep moves the table's time"
            );
            soon.await;
            assert_eq!(t.len(), 1, "only the passed deadline is woken");
            t.shut_down();
            assert!(t.is_shut_down());
            t.until_shutdown().await;
            late.await;
            assert!(t.is_empty());
            // A wait dropped early leaves nothing behind.
            let t2 = Rc::new(Waits::default());
            let r = monoio::time::timeout(
                Duration::from_millis(5),
                t2.wait_until(Instant::now() + Duration::from_secs(60)),
            )
            .await;
            assert!(r.is_err());
            assert!(t2.is_empty());
        });
    }
}
