//! The `svr-etl` binary: parses the command line, hands over to the library and maps
//! the outcome to an exit code: 0 done, 1 a run failed, 64 bad command line, 65 bad
//! data set, 78 bad configuration (systemd does not restart on it).

use std::process::ExitCode;

use clap::Parser;
use svr_etl::cli::Cli;
use svr_etl::commands;
use svr_etl::error::{error_chain, EX_USAGE};

/// mimalloc rather than glibc's allocator. A trial's buffers are often freed on another
/// thread than the one that allocated them (a fit's results, the objects a trial
/// writes), and glibc then takes the allocating thread's arena lock, which sleeps at
/// once when taken: on two cores the daemon's threads slept on those locks in a fifth
/// of its context switches. 1,024 trials on 2 cores, alternating: 1.02-1.05 s and 1.95-1.97
/// CPU seconds (88.8-90.8 % of one core's rate, twice), against 1.10 s and 2.10 (83.3-85.0 %).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    set_purge_delay();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version end here too, successfully.
            return if e.use_stderr() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match commands::execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `svr-etl sql | head`: the reader closed the pipe; that is not our failure.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// mimalloc's `mi_option_purge_delay`, by its number in the pinned version's mimalloc.h.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed pages before giving them back to the system, in ms
/// (its default is a second). Returned at once, every fit that emptied a page paid a
/// `madvise` and, with the daemon's threads on two cores, a TLB shootdown on the other:
/// in alternating runs of 9 rounds, 1,024 trials on 2 cores were 88.8-93.1 % efficient
/// (median 92.1 %) against 87.2-89.6 % (88.4 %), at a peak of 38.1-40.1 MiB against
/// 33.1-33.9 (100 ms: 87.4-94.3 %, 41-42 MiB). Pages freed in a busy spell are reused
/// before the delay ends; those left free go back at the next allocation after it.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Sets how soon freed pages go back ([`PURGE_DELAY_MS`]); the arenas' memory is
/// committed as used (`.cargo/config.toml`). glibc's allocator peaked at 28.2-29.2 MiB
/// on the same 2-core runs.
fn set_purge_delay() {
    // SAFETY: sets an allocator option, first thing in main.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}
