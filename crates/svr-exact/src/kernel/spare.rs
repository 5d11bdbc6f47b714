//! Kernel row storage a thread keeps between fits, so that the next fit on the thread
//! reuses its pages instead of faulting fresh ones in (and having the kernel zero them).

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Storage a thread always keeps, up to this size. Larger storage is kept only while the
/// thread holds [`KeepRows`].
const SPARE_BYTES: usize = 16 << 20;

thread_local! {
    static SPARE_ROWS: RefCell<Spare> = const { RefCell::new(Spare(Vec::new())) };
    /// How many [`KeepRows`] the thread holds.
    static KEEPING: Cell<usize> = const { Cell::new(0) };
}

/// Bytes of row storage kept between fits, every thread's together. It stays after the
/// fits end and grows with the largest fit a thread has run, so a count of the
/// process's live heap subtracts it to see what trials leave.
static SPARE_HELD: AtomicUsize = AtomicUsize::new(0);

/// One thread's kept storage, counted in [`SPARE_HELD`] while kept.
struct Spare(Vec<f32>);

impl Spare {
    fn take(&mut self) -> Vec<f32> {
        SPARE_HELD.fetch_sub(bytes(&self.0), Ordering::Relaxed);
        std::mem::take(&mut self.0)
    }

    fn keep(&mut self, storage: Vec<f32>) {
        SPARE_HELD.fetch_add(bytes(&storage), Ordering::Relaxed);
        drop(self.take());
        self.0 = storage;
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        SPARE_HELD.fetch_sub(bytes(&self.0), Ordering::Relaxed);
    }
}

/// What `storage` holds allocated, used or not.
fn bytes(storage: &Vec<f32>) -> usize {
    storage.capacity() * std::mem::size_of::<f32>()
}

/// The row storage threads keep between fits, in bytes, all threads together.
pub(crate) fn spare_row_bytes() -> usize {
    SPARE_HELD.load(Ordering::Relaxed)
}

/// Empty storage for a fit that keeps at most `usable` bytes of rows: the thread's kept
/// storage, unless it is large and more than twice that (kept from a larger fit, or
/// under a budget lowered since); the folds' fits keep nearly as much as the final
/// fit's.
pub(super) fn take(usable: usize) -> Vec<f32> {
    let mut storage = SPARE_ROWS.with(|spare| spare.borrow_mut().take());
    if bytes(&storage) > SPARE_BYTES.max(2 * usable) {
        storage = Vec::new();
    }
    storage.clear();
    storage
}

/// Keeps a finished fit's `storage` for the thread's next fit: up to 16 MiB, or any
/// size while the thread holds [`KeepRows`].
pub(super) fn keep(storage: Vec<f32>) {
    if bytes(&storage) <= SPARE_BYTES || KEEPING.with(|k| k.get() > 0) {
        SPARE_ROWS.with(|spare| spare.borrow_mut().keep(storage));
    }
}

/// While held, the thread keeps a fit's row storage for its next fit whatever its size
/// (at most the fit's budget), instead of only up to 16 MiB; when the last is dropped,
/// storage beyond that is let go. A thread that runs fit after fit holds one: a fit of
/// 10,000 rows under 256 MiB filled its storage from fresh pages, faulting in and
/// zeroing a quarter of a GiB each fit.
#[must_use = "storage is kept only while this is held"]
pub struct KeepRows {
    /// Not `Send`: what it keeps is the thread's.
    _thread: PhantomData<*const ()>,
}

impl KeepRows {
    pub fn new() -> KeepRows {
        KEEPING.with(|k| k.set(k.get() + 1));
        KeepRows {
            _thread: PhantomData,
        }
    }
}

impl Default for KeepRows {
    fn default() -> Self {
        KeepRows::new()
    }
}

impl Drop for KeepRows {
    fn drop(&mut self) {
        let left = KEEPING.with(|k| {
            k.set(k.get() - 1);
            k.get()
        });
        if left == 0 {
            SPARE_ROWS.with(|spare| {
                let mut spare = spare.borrow_mut();
                if bytes(&spare.0) > SPARE_BYTES {
                    drop(spare.take());
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes this thread keeps.
    fn kept() -> usize {
        SPARE_ROWS.with(|spare| bytes(&spare.borrow().0))
    }

    /// Storage of `bytes`, as a finished fit leaves it.
    fn finished_fit(bytes: usize) -> Vec<f32> {
        let mut storage = take(bytes);
        storage.resize(bytes / 4, 1.0);
        storage
    }

    #[test]
    fn large_storage_is_kept_only_while_the_thread_holds_keep_rows() {
        let (small, large) = (SPARE_BYTES / 2, 2 * SPARE_BYTES);
        keep(finished_fit(small));
        assert_eq!(kept(), small, "small storage is always kept");
        keep(finished_fit(large));
        assert_eq!(kept(), 0, "large storage let go without KeepRows");

        let outer = KeepRows::new();
        keep(finished_fit(large));
        assert!(kept() >= large);
        let again = take(large);
        assert!(
            bytes(&again) >= large && again.is_empty(),
            "the next fit reuses it"
        );
        keep(again);
        // Not for a fit that keeps far less: its budget was lowered.
        assert_eq!(bytes(&take(large / 4)), 0);
        keep(finished_fit(large));
        let inner = KeepRows::new();
        drop(inner);
        assert!(kept() >= large, "kept while any KeepRows is held");
        drop(outer);
        assert_eq!(kept(), 0, "let go with the last");
    }
}
