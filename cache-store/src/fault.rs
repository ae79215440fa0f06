//! SIGBUS from the slab's mapping, turned into zeros and a count instead of a dead process.
//!
//! A memory access to a mapped file page the kernel cannot supply is SIGBUS, not an error
//! code: the file was truncated under the mapping, the device failed to read the page, or a
//! write fault needed a block the file system could not find. By default that kills the
//! whole server. So, process-wide and once, a SIGBUS handler is installed that:
//!
//! - for a fault address inside a registered slab mapping, maps an anonymous zero page over
//!   the faulting page (`mmap(MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS)`, a plain system call),
//!   counts it on that mapping, and returns: the access is retried and sees zeros (a write
//!   lands in memory only). Zeros fail every checksum of the slab's format, so a reader
//!   that verifies sees a damaged entry (a miss); the store watches the count and verifies
//!   (see `slab`);
//! - for any other address, or a signal not raised by a fault, hands over to the handler that
//!   was there before (Rust's stack-overflow handler, or another library's), or restores the
//!   default action so that the fault, retried, kills the process as it would have.
//!
//! Contract:
//! - A mapping is registered ([`register`]) only after it exists and unregistered (by
//!   dropping the [`Registration`]) before it is unmapped, while nothing accesses it.
//! - The handler only reads the registry's atomics, makes `mmap`/`sigaction` system calls and
//!   touches atomics: all async-signal-safe. It saves and restores `errno`.
//! - A page replaced this way no longer shows the file: what is written there after is not
//!   persisted, and what the file holds there is not seen. The store treats a mapping that
//!   has faulted as no longer trustworthy without verification.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// How many mappings can be registered at once (slabs open in one process).
const SLOTS: usize = 64;

struct Slot {
    /// Start address; 0 when the slot is free.
    start: AtomicUsize,
    len: AtomicUsize,
    /// The registration's fault counter (an `Arc` leaked into the slot while it is taken).
    faults: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faults: AtomicUsize::new(0),
};
static SLOTS_TABLE: [Slot; SLOTS] = [FREE; SLOTS];

/// The page size, read before the handler can run (`sysconf` is not async-signal-safe).
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// The action that was installed before ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A registered mapping: its faults are counted until this is dropped.
pub(crate) struct Registration {
    slot: usize,
    faults: Arc<AtomicU64>,
}

impl Registration {
    /// Faults handled in this mapping so far.
    pub(crate) fn faults(&self) -> u64 {
        self.faults.load(Ordering::Acquire)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let s = &SLOTS_TABLE[self.slot];
        s.len.store(0, Ordering::SeqCst);
        let counter = s.faults.swap(0, Ordering::SeqCst) as *const AtomicU64;
        s.start.store(0, Ordering::SeqCst);
        if !counter.is_null() {
            // SAFETY: the pointer came from `Arc::into_raw` in `register` and was taken out of
            // the slot above, so it is released exactly once. A handler running right now for
            // this mapping would have to be serving an access to it, which the contract rules
            // out while it is being unregistered.
            drop(unsafe { Arc::from_raw(counter) });
        }
    }
}

/// Installs the handler (once per process) and registers `len` bytes mapped at `start`.
/// `None` when every slot is taken (faults there then keep their default effect).
pub(crate) fn register(start: *const u8, len: usize) -> Option<Registration> {
    install();
    let faults = Arc::new(AtomicU64::new(0));
    for (i, s) in SLOTS_TABLE.iter().enumerate() {
        if s.start
            .compare_exchange(0, start as usize, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            s.faults
                .store(Arc::into_raw(faults.clone()) as usize, Ordering::SeqCst);
            s.len.store(len, Ordering::SeqCst);
            return Some(Registration { slot: i, faults });
        }
    }
    None
}

fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sysconf has no memory arguments.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE.store(page as usize, Ordering::SeqCst);
        }
        // SAFETY: a zeroed sigaction is a valid value (no handler, empty mask, no flags); the
        // kernel writes the current action into it.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one into `old`, a live local.
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) } != 0 {
            return;
        }
        let _ = PREVIOUS.set(old);
        // SAFETY: as above, a zeroed sigaction is valid; the fields are set below.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
        // SA_ONSTACK: a chained stack-overflow handler needs the alternate stack.
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `new.sa_mask` is a live sigset_t.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        // SAFETY: `new` is a complete action whose handler has the SA_SIGINFO signature.
        unsafe { libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) };
    });
}

/// The SIGBUS handler. Only async-signal-safe operations (see the module's contract).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; its location is valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t for the duration of the call.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // si_code > 0: raised by the kernel for a fault, so si_addr is the faulting address.
    if code > 0 && replace_page(addr) {
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
        return;
    }
    chain(sig, info, ctx);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Maps a zero page over `addr` if it lies in a registered mapping, and counts it.
fn replace_page(addr: usize) -> bool {
    let page = PAGE.load(Ordering::Relaxed);
    for s in &SLOTS_TABLE {
        let start = s.start.load(Ordering::Acquire);
        if start == 0 || addr < start {
            continue;
        }
        let len = s.len.load(Ordering::Acquire);
        if addr - start >= len {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: `at..at + page` lies inside a live slab mapping (registered, not yet
        // unregistered, and the mapping is page-aligned); MAP_FIXED replaces just that page
        // with private zeroed memory, which every user of the mapping may read and write:
        // the slab treats its bytes as plain data verified by checksums.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return false;
        }
        let counter = s.faults.load(Ordering::Acquire) as *const AtomicU64;
        if !counter.is_null() {
            // SAFETY: the slot holds a leaked `Arc` while the mapping is registered, and
            // the registration is not dropped while its mapping is accessed (contract).
            unsafe { (*counter).fetch_add(1, Ordering::AcqRel) };
        }
        return true;
    }
    false
}

/// Hands the signal to the previous action, or restores the default one.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(prev) = PREVIOUS.get() else {
        restore_default();
        return;
    };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Returning retries the faulting access, which then takes the default action: the
        // process dies of SIGBUS as it would have without this handler.
        restore_default();
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous action was installed with SA_SIGINFO, so its handler has this
        // signature; the arguments are the kernel's, passed on unchanged.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes the signal number only.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

fn restore_default() {
    // SAFETY: a zeroed sigaction is SIG_DFL with an empty mask; sigaction is async-signal-safe.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD_ENV: &str = "CACHE_STORE_FAULT_CHILD";

    /// A mapped file of two pages, then truncated to nothing: its pages fault.
    fn truncated_mapping(dir: &std::path::Path, name: &str) -> memmap2::MmapRaw {
        let path = dir.join(name);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.set_len(8192).unwrap();
        let m = memmap2::MmapRaw::map_raw(&f).unwrap();
        f.set_len(0).unwrap();
        m
    }

    fn read(m: &memmap2::MmapRaw, at: usize) -> u8 {
        // SAFETY: in bounds of the live mapping; a volatile read so the access happens.
        unsafe { std::ptr::read_volatile(m.as_ptr().add(at)) }
    }

    /// Not a test on its own: the scenario of the next test, run in a child process.
    #[test]
    fn fault_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let slab = truncated_mapping(dir.path(), "slab");
        let reg = register(slab.as_ptr(), slab.len()).unwrap();
        assert_eq!(read(&slab, 5000), 0, "a registered mapping reads zeros");
        assert_eq!(reg.faults(), 1);
        assert_eq!(read(&slab, 5001), 0, "the page is replaced once");
        assert_eq!(reg.faults(), 1);
        drop(reg);
        println!("the slab's faults were zeros");
        // Outside every registered mapping the fault is not swallowed: this kills the child.
        let other = truncated_mapping(dir.path(), "other");
        let _ = read(&other, 0);
        println!("survived a fault outside the slab");
    }

    #[test]
    fn faults_in_slab_mappings_are_zeros_and_others_still_kill() {
        use std::os::unix::process::ExitStatusExt;
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "fault::tests::fault_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{log}");
        assert!(log.contains("the slab's faults were zeros"), "{log}");
        assert!(!log.contains("survived"), "{log}");
        assert!(!log.contains("panicked"), "{log}");
    }
}
