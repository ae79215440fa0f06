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
    all_fired: Cell<bool>,
    /// When the last sweep ran (or the table was made).
    now: Cell<Instant>,
    table: RefCell<Table>,
}

/// Waits in slots reused through a free list: registering and leaving a wait (once per
/// keep-alive request) is an index, not a hash. A slot's generation tells a wait whether the
/// slot is still its own (a sweep may have fired it and given it to another wait).
#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

#[derive(Default)]
struct Slot {
    generation: u64,
    wait: Option<(Instant, Waker)>,
}

impl Table {
    fn insert(&mut self, deadline: Instant, waker: Waker) -> (usize, u64) {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[i];
        slot.wait = Some((deadline, waker));
        (i, slot.generation)
    }

    /// Empties slot `i`, giving back its waker.
    fn release(&mut self, i: usize) -> Option<Waker> {
        let slot = &mut self.slots[i];
        let (_, waker) = slot.wait.take()?;
        slot.generation += 1;
        self.free.push(i);
        Some(waker)
    }

    /// The slot `i` as the wait of generation `generation` left it, if it is still its own.
    fn own(&mut self, i: usize, generation: u64) -> Option<&mut (Instant, Waker)> {
        let slot = self.slots.get_mut(i)?;
        if slot.generation != generation {
            return None;
        }
        slot.wait.as_mut()
    }
}

impl Default for Waits {
    fn default() -> Self {
        Waits {
            all_fired: Cell::new(false),
            now: Cell::new(Instant::now()),
            table: RefCell::default(),
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
            slot: None,
            deadline,
        }
    }

    /// Wakes every wait whose deadline has passed.
    pub fn sweep(&self, now: Instant) {
        self.now.set(now);
        let mut expired = Vec::new();
        {
            let mut t = self.table.borrow_mut();
            for i in 0..t.slots.len() {
                if matches!(&t.slots[i].wait, Some((d, _)) if *d <= now) {
                    expired.extend(t.release(i));
                }
            }
        }
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
        let mut all = Vec::new();
        {
            let mut t = self.table.borrow_mut();
            for i in 0..t.slots.len() {
                all.extend(t.release(i));
            }
        }
        for w in all {
            w.wake();
        }
    }

    pub fn len(&self) -> usize {
        let t = self.table.borrow();
        // Every slot is either waiting or on the free list.
        t.slots.len() - t.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Wait {
    timers: Rc<Waits>,
    /// The slot and its generation, once registered.
    slot: Option<(usize, u64)>,
    deadline: Instant,
}

impl Future for Wait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.timers.all_fired.get() || self.timers.now() >= self.deadline {
            return Poll::Ready(());
        }
        let mut t = self.timers.table.borrow_mut();
        if let Some((i, g)) = self.slot {
            if let Some(entry) = t.own(i, g) {
                if !entry.1.will_wake(cx.waker()) {
                    entry.1 = cx.waker().clone();
                }
                return Poll::Pending;
            }
        }
        let slot = t.insert(self.deadline, cx.waker().clone());
        drop(t);
        self.slot = Some(slot);
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some((i, g)) = self.slot {
            let mut t = self.timers.table.borrow_mut();
            if t.own(i, g).is_some() {
                t.release(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn futures_noop_waker() -> Waker {
        Waker::noop().clone()
    }

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
            // A wait fired by a sweep, then dropped, must not free the slot that another
            // wait has taken since.
            let t3 = Rc::new(Waits::default());
            let mut fired = Box::pin(t3.wait_until(Instant::now() + Duration::from_millis(1)));
            let waker = futures_noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(fired.as_mut().poll(&mut cx).is_pending());
            std::thread::sleep(Duration::from_millis(3));
            t3.sweep(Instant::now());
            assert!(t3.is_empty());
            let mut other = Box::pin(t3.wait_until(Instant::now() + Duration::from_secs(60)));
            assert!(other.as_mut().poll(&mut cx).is_pending());
            assert_eq!(t3.len(), 1);
            assert!(fired.as_mut().poll(&mut cx).is_ready());
            drop(fired);
            assert_eq!(t3.len(), 1, "the other wait keeps its slot");
            drop(other);
            assert!(t3.is_empty());
        });
    }
}
