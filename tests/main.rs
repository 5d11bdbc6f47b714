//! The integration tests, one binary so the heavy dependencies link once.
//! Each module covers one area; `helper` has what they share.

mod helper;

mod athena;
mod cli;
mod compaction;
mod config_corpus;
mod daemon;
mod daemon_loop;
mod datasets;
mod faults;
mod hyper_ids;
mod iam;
mod iam_enforced;
mod journal;
mod layers;
mod metrics;
mod once_overlap;
mod optuna;
mod report;
mod s3;
mod s3_answers;
mod schedule_dst;
mod search;
mod systemd;
