//! The vocabulary every stage shares, below all of them: trial ids, hyperparameters and
//! the search space, the records a trial writes (the contract with Athena), checked
//! config values, cron expressions. Nothing here imports another module of the crate.

pub mod cron;
pub mod id;
pub mod params;
pub mod records;
pub mod values;

/// The message a panic carried.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}

/// Runs `f`, a panic in it coming back as its message: for work whose panic must
/// become an error (a fit, a body writer) rather than unwind through its caller.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|payload| panic_message(payload.as_ref()))
}
