//! The study: what the sink holds, read back and described.
//!
//! [`publish`] puts the data set in the sink once; [`history`] reads records back;
//! [`leaderboard`] ranks trials as the Athena query does; [`athena`] prints the SQL
//! for the configured location.

pub mod athena;
pub mod history;
pub mod leaderboard;
pub mod publish;
pub mod report;
