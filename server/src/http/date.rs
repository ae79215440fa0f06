//! The `Date` header value, formatted at most once per second per worker.

use std::cell::{Cell, RefCell};
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static SECOND: Cell<u64> = const { Cell::new(0) };
    static TEXT: RefCell<[u8; 29]> = const { RefCell::new([b' '; 29]) };
}

/// Re-formats the cached date if the second has changed. Called by each worker's ticker and
/// lazily by [`with_date`] before the first tick.
pub fn refresh() {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if SECOND.with(Cell::get) != secs {
        let s = httpdate::fmt_http_date(now);
        TEXT.with(|t| {
            let mut t = t.borrow_mut();
            if s.len() == 29 {
                t.copy_from_slice(s.as_bytes());
            }
        });
        SECOND.with(|c| c.set(secs));
    }
}

/// Calls `f` with the current IMF-fixdate (29 bytes).
pub fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    if SECOND.with(Cell::get) == 0 {
        refresh();
    }
    TEXT.with(|t| f(&t.borrow()[..]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_is_imf_fixdate() {
        super::refresh();
        let d = super::with_date(|d| String::from_utf8(d.to_vec()).unwrap());
        assert!(d.ends_with(" GMT"), "{d}");
        assert!(httpdate::parse_http_date(&d).is_ok(), "{d}");
    }
}
