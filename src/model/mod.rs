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
