//! The `svr-etl` binary: parses the command line, hands over to the library and maps
//! the outcome to an exit code: 0 done, 1 a run failed, 64 bad command line, 65 bad
//! data set, 78 bad configuration (systemd does not restart on it).

use std::process::ExitCode;

use clap::Parser;
use svr_etl::cli::Cli;
use svr_etl::commands;
use svr_etl::error::{error_chain, EX_USAGE};

fn main() -> ExitCode {
    return_large_buffers();
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

/// Has buffers of 1 MiB and more (a compacted day, a large fact object) mapped on their
/// own and unmapped when freed. glibc otherwise raises its mmap threshold to the
/// largest buffer freed so far and serves later ones from per-thread arenas that keep
/// them: the leaderboard over a compacted month peaked at 178 MiB instead of 62 MiB.
fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt changes allocator settings; called first thing in main, before
    // any other thread exists or any large allocation is made.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
