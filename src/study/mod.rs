//! The study: what the sink holds, read back and described.
//!
//! Records are read back through [`crate::store`];
//! [`leaderboard`] ranks trials as the Athena query does; [`athena`] prints the SQL
//! for the configured location.

pub mod athena;
pub mod leaderboard;
pub mod report;
