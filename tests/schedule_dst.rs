//! A schedule in a local zone keeps local time across daylight-saving changes: the real
//! daemon under libfaketime, its clock an hour a second, through both changes of
//! Europe/Berlin and of Australia/Adelaide (whose offset is not a whole hour). Each
//! expression names an ordinary time and one the change skips or repeats: a skipped
//! time runs right after the change, a repeated one once.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::helper::svr_etl_faked;

/// One daemon: its zone, the UTC time its clock starts at, and the UTC instants its
/// runs must start at, in order.
struct Case {
    zone: &'static str,
    start: &'static str,
    expected: &'static [&'static str],
}

/// 02:30 and 03:30 local time, every day.
const CRON: &str = "0 30 2,3 * * *";

const CASES: [Case; 4] = [
    // 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 is skipped and runs at 03:00.
    Case {
        zone: "Europe/Berlin",
        start: "2026-03-28 00:30:00",
        expected: &[
            "2026-03-28T01:30:00Z", // 02:30 CET
            "2026-03-28T02:30:00Z", // 03:30 CET
            "2026-03-29T01:00:00Z", // 03:00 CEST, for the skipped 02:30
            "2026-03-29T01:30:00Z", // 03:30 CEST
        ],
    },
    // 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 comes twice and runs once.
    Case {
        zone: "Europe/Berlin",
        start: "2026-10-23 23:30:00",
        expected: &[
            "2026-10-24T00:30:00Z", // 02:30 CEST
            "2026-10-24T01:30:00Z", // 03:30 CEST
            "2026-10-25T00:30:00Z", // 02:30 CEST, the first of two
            "2026-10-25T02:30:00Z", // 03:30 CET
        ],
    },
    // 2026-10-04 02:00 ACST (+9:30) -> 03:00 ACDT (+10:30).
    Case {
        zone: "Australia/Adelaide",
        start: "2026-10-02 16:00:00",
        expected: &[
            "2026-10-02T17:00:00Z", // 02:30 ACST
            "2026-10-02T18:00:00Z", // 03:30 ACST
            "2026-10-03T16:30:00Z", // 03:00 ACDT, for the skipped 02:30
            "2026-10-03T17:00:00Z", // 03:30 ACDT
        ],
    },
    // 2026-04-05 03:00 ACDT -> 02:00 ACST.
    Case {
        zone: "Australia/Adelaide",
        start: "2026-04-03 15:00:00",
        expected: &[
            "2026-04-03T16:00:00Z", // 02:30 ACDT
            "2026-04-03T17:00:00Z", // 03:30 ACDT
            "2026-04-04T16:00:00Z", // 02:30 ACDT, the first of two
            "2026-04-04T18:00:00Z", // 03:30 ACST
        ],
    },
];

/// How far a run's start may lag its tick, in the daemon's fast clock: a third of a
/// second of real time, far from the hour a wrong offset would put it off.
const LAG_SECS: i64 = 20 * 60;

/// Starts the daemon of `case` under faketime; it is read until it has run as many runs
/// as expected, then stopped. The start time of each run, and the stop line.
fn run_case(case: &Case, dir: &std::path::Path) -> (Vec<DateTime<Utc>>, String) {
    let config = format!(
        // Deadlines of a day: at an hour a second the default ones are milliseconds.
        "[schedule]\ncron = \"{CRON}\"\ntimezone = \"{}\"\n[compaction]\nenabled = false\n\
         [sink]\nupload_timeout_secs = 86400\n[solver]\nmax_fit_secs = 86400\n",
        case.zone
    );
    std::fs::write(dir.join("c.toml"), config).unwrap();
    let mut child = svr_etl_faked(dir, &["-f", &format!("@{} x3600", case.start)])
        .args(["run", "--config", "c.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faketime (apt-get install faketime)");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut runs, mut finished) = (Vec::new(), 0);
    for line in lines.by_ref().map_while(Result::ok) {
        assert!(!line.contains("tick skipped"), "{}: {line}", case.zone);
        if line.contains("run started") {
            let stamp = line.split_whitespace().next().unwrap();
            runs.push(stamp.parse::<DateTime<Utc>>().unwrap());
        }
        // A run is done before the stop: at an hour a second the grace period for a
        // run in flight is a few milliseconds.
        finished += usize::from(line.contains("run finished"));
        if finished == case.expected.len() {
            break;
        }
    }
    // The signal goes to the daemon, faketime's child.
    let daemon = Command::new("pgrep")
        .args(["-P", &child.id().to_string()])
        .output()
        .unwrap();
    let daemon: i32 = String::from_utf8_lossy(&daemon.stdout)
        .trim()
        .parse()
        .unwrap();
    kill(Pid::from_raw(daemon), Signal::SIGTERM).unwrap();
    let stopped = lines
        .map_while(Result::ok)
        .find(|l| l.contains("stopped:"))
        .unwrap_or_default();
    assert!(child.wait().unwrap().success());
    (runs, stopped)
}

#[test]
fn ticks_keep_local_time_across_both_changes_in_two_zones() {
    let dirs: Vec<tempfile::TempDir> = CASES.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    // Side by side: each spans a day and a half of its clock, about half a minute.
    let results: Vec<(Vec<DateTime<Utc>>, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = CASES
            .iter()
            .zip(&dirs)
            .map(|(case, dir)| scope.spawn(move || run_case(case, dir.path())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (case, (runs, stopped)) in CASES.iter().zip(results) {
        println!(
            "{} from {}: runs started at {runs:?}",
            case.zone, case.start
        );
        assert_eq!(runs.len(), case.expected.len(), "{}: {runs:?}", case.zone);
        for (run, expected) in runs.iter().zip(case.expected) {
            let expected: DateTime<Utc> = expected.parse().unwrap();
            let lag = (*run - expected).num_seconds();
            assert!(
                (0..LAG_SECS).contains(&lag),
                "{} from {}: a run started at {run}, expected at {expected}; all: {runs:?}",
                case.zone,
                case.start
            );
        }
        // The status counts every run once: none skipped, none failed.
        let counts = format!("{} ok, 0 failed, 0 ticks skipped", case.expected.len());
        assert!(stopped.contains(&counts), "{}: {stopped}", case.zone);
    }
}
