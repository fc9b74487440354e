//! Events: a 64-bit signal word and the processes waiting on it.
//!
//! Signalling never touches the scheduler directly (it may happen deep
//! inside other kernel work, even in a `Drop`): it sets bits and queues the
//! waiting process ids on a wake list, which the scheduler drains before it
//! picks the next process to run.

use crate::process::Pid;
use alloc::vec::Vec;
use spin::Mutex;

struct State {
    bits: u64,
    waiters: Vec<Pid>,
}

/// A signal word.
pub struct Event {
    state: Mutex<State>,
}

static WAKE_LIST: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

impl Event {
    /// A new event with no bits set.
    pub fn new() -> Event {
        Event { state: Mutex::new(State { bits: 0, waiters: Vec::new() }) }
    }

    /// OR `bits` in and queue the waiters for a wake-up.
    pub fn signal(&self, bits: u64) {
        if bits == 0 {
            return;
        }
        let mut s = self.state.lock();
        s.bits |= bits;
        if !s.waiters.is_empty() {
            let mut wake = WAKE_LIST.lock();
            wake.append(&mut s.waiters);
        }
    }

    /// Read and clear the word.
    pub fn take(&self) -> u64 {
        core::mem::take(&mut self.state.lock().bits)
    }

    /// The word, unless its lock is held (for the stall report, which must
    /// not wait).
    pub fn peek_bits(&self) -> Option<u64> {
        self.state.try_lock().map(|s| s.bits)
    }

    /// Whether any bit is set.
    pub fn is_set(&self) -> bool {
        self.state.lock().bits != 0
    }

    /// Register `pid` as waiting.
    pub fn add_waiter(&self, pid: Pid) {
        let mut s = self.state.lock();
        if !s.waiters.contains(&pid) {
            s.waiters.push(pid);
        }
    }

    /// Forget `pid` as a waiter.
    pub fn remove_waiter(&self, pid: Pid) {
        self.state.lock().waiters.retain(|p| *p != pid);
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

/// Give the wake list room for `n` wake-ups, at boot. With the scheduler's
/// scratch list (which it swaps with) reserved alike, neither grows while
/// no more than `n` wake-ups are queued at once, so the kernel heap in use
/// moves only with the objects programs hold (what the syscall fuzzer's
/// leak check reads).
pub fn reserve_wake_list(n: usize) {
    WAKE_LIST.lock().reserve(n);
}

/// Whether any wake-up is queued.
pub fn wakeups_pending() -> bool {
    !WAKE_LIST.lock().is_empty()
}

/// Move the queued wake-ups into `into` (which must be empty): the two
/// vectors swap, so their capacity is reused and waking allocates nothing.
pub fn take_wakeups(into: &mut Vec<Pid>) {
    core::mem::swap(&mut *WAKE_LIST.lock(), into);
}
